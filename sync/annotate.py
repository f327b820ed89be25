"""Create choice annotations on tasks (used by `tasveer import --labels-from-folders`)."""
from __future__ import annotations

from typing import Sequence

import requests

from lsproto.config import LabelConfig, LabelConfigError, parse_label_config
from lsproto.results import choice_result
from sync.connection import auth_headers, base_url


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
        raise AnnotateError(f"folder names {unknown} are not labels of the project (labels: {list(cfg.labels)}); "
                            f"create the project with these labels (tasveer up --labels ...)")
    url = base_url(client)
    ids = []
    for task_id, label in tqdm(pairs, desc="annotate", unit="task", disable=not progress):
        resp = requests.post(f"{url}/api/tasks/{task_id}/annotations/", headers=auth_headers(client),
                             json={"result": choice_result(cfg.from_name, cfg.to_name, label), "project": project.id},
                             timeout=120)
        if resp.status_code != 201:
            raise AnnotateError(f"annotating task {task_id} failed: HTTP {resp.status_code} {resp.text[:200]}")
        ids.append(resp.json()["id"])
    return ids
