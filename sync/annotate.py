"""Create choice annotations on tasks (used by `tasveer import --labels-from-folders`)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Sequence

import requests

from sync.connection import auth_headers, base_url


class AnnotateError(RuntimeError):
    pass


def choices_control(label_config: str) -> tuple[str, str, list[str]]:
    """(from_name, to_name, labels) of the first <Choices> tag of a label config."""
    root = ET.fromstring(label_config)
    for tag in root.iter("Choices"):
        return tag.get("name"), tag.get("toName"), [c.get("value") for c in tag.iter("Choice")]
    raise AnnotateError("the project's label config has no <Choices> tag")


def choice_result(from_name: str, to_name: str, label: str) -> list[dict]:
    return [{"from_name": from_name, "to_name": to_name, "type": "choices", "value": {"choices": [label]}}]


def annotate_tasks(client, project, pairs: Sequence[tuple[int, str]], *, progress: bool = True) -> list[int]:
    """Submit one annotation `label` per (task_id, label), as the client's user, exactly like a
    submit in the labeling UI (LS sends ANNOTATION_CREATED and, with training on submission on,
    starts a training). Returns the annotation ids."""
    from tqdm import tqdm

    from_name, to_name, labels = choices_control(project.label_config)
    unknown = sorted({label for _, label in pairs} - set(labels))
    if unknown:
        raise AnnotateError(f"folder names {unknown} are not labels of the project (labels: {labels}); "
                            f"create the project with these labels (tasveer up --labels ...)")
    url = base_url(client)
    ids = []
    for task_id, label in tqdm(pairs, desc="annotate", unit="task", disable=not progress):
        resp = requests.post(f"{url}/api/tasks/{task_id}/annotations/", headers=auth_headers(client),
                             json={"result": choice_result(from_name, to_name, label), "project": project.id},
                             timeout=120)
        if resp.status_code != 201:
            raise AnnotateError(f"annotating task {task_id} failed: HTTP {resp.status_code} {resp.text[:200]}")
        ids.append(resp.json()["id"])
    return ids
