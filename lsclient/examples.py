"""The training examples of a project, as `LabelStudioClient.annotated_examples` reads them: the
one place that decides which annotation of a task is its training label (a person's newest usable
one, never the auto-accept user's)."""

from __future__ import annotations

from dataclasses import dataclass

from lsproto.autoaccept import is_auto
from lsproto.config import LabelConfig
from lsproto.results import newest_label

from .people import PeopleCalls
from .raw import RawCalls


@dataclass(frozen=True)
class Example:
    task_id: int
    annotation_id: int
    image: str  # the task's image URL as stored in Label Studio
    label: str


class ExampleCalls(RawCalls, PeopleCalls):
    """Training examples (raw.py's task pages, people.py's auto-accept user).

    Mixed into `LabelStudioClient` (client.py) and never built on its own.
    """

    def annotated_examples(self, project_id: int, config: LabelConfig) -> tuple[list[Example], list[str]]:
        """One example per task: its newest usable annotation by a person (auto-accepted labels are
        never training labels). Returns (examples, notes on skipped ones)."""
        examples, notes = [], []
        auto_user = self.auto_user(create=False)
        for task in self.iter_tasks(project_id, annotated_only=True):
            found = newest_label(task, config, skip=lambda ann: is_auto(ann, auto_user))
            if found is None:
                continue
            ann_id, label = found
            if label not in config.labels:
                notes.append(f"task {task.get('id')}: label {label!r} is not in the labeling config")
                continue
            image = (task.get("data") or {}).get(config.data_key)
            if not isinstance(image, str):
                notes.append(f"task {task.get('id')}: no {config.data_key!r} in task data")
                continue
            examples.append(Example(task_id=task["id"], annotation_id=ann_id, image=image, label=label))
        return examples, notes
