"""Create choice annotations on tasks (used by `tasveer import --labels-from-folders`)."""

from __future__ import annotations

from collections.abc import Sequence

from lsclient import LabelStudioError
from lsproto.config import LabelConfig, LabelConfigError, parse_label_config
from lsproto.results import choice_result


class AnnotateError(RuntimeError):
    pass


def project_config(project) -> LabelConfig:
    """The project's labeling config as tasveer reads it (the same rule as the backend's)."""
    try:
        return parse_label_config(project.label_config)
    except LabelConfigError as exc:
        raise AnnotateError(f"project {project.id} cannot take labels: {exc}") from None


def annotate_tasks(client, project, pairs: Sequence[tuple[int, str]], *, progress: bool = True) -> list[int]:
    """Submit one annotation `label` per (task_id, label), as the client's user, exactly like a
    submit in the labeling UI (LS sends ANNOTATION_CREATED and, with training on submission on,
    starts a training). Returns the annotation ids."""
    from tqdm import tqdm

    cfg = project_config(project)
    unknown = sorted({label for _, label in pairs} - set(cfg.labels))
    if unknown:
        raise AnnotateError(
            f"folder names {unknown} are not labels of the project (labels: {list(cfg.labels)}); "
            f"create the project with these labels (tasveer up --labels ...)"
        )
    ids = []
    for task_id, label in tqdm(pairs, desc="annotate", unit="task", disable=not progress):
        try:
            ids.append(client.create_annotation(project.id, task_id, choice_result(cfg.from_name, cfg.to_name, label)))
        except LabelStudioError as exc:
            raise AnnotateError(f"annotating task {task_id} failed: {exc}") from None
    return ids
