"""The prediction calls of `LabelStudioClient`: import in chunks, delete per task, and the note
items of lsproto/notes.py (patched onto predictions where the import flag is off, copied into task
data fields by the `cache_labels` action). Kept together because a write-back
(backend/writeback/lswrite.py) uses them as one sequence: delete, import, notes, cache."""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context

from label_studio_sdk import LabelStudio

from lsproto.notes import NOTE, QUEUE, cache_request, without_notes

from .errors import LabelStudioError
from .raw import RawCalls
from .sdkcall import sdk_call

MISSING_TASK = re.compile(r"task ID (\d+) not found")  # LS's 400 for a deleted task


class PredictionCalls(RawCalls, LabelStudio):
    """Predictions and their notes (`patch_notes` lists predictions with raw.py's call).

    Mixed into `LabelStudioClient` (client.py); it subclasses the SDK's `LabelStudio` only so that
    its SDK calls type-check, and is never built on its own.
    """

    def import_predictions(self, project_id: int, predictions: list[dict], chunk: int = 500) -> int:
        """Write predictions (`{"task", "result", "score", "model_version"}`, lsproto/results.py)
        in chunks; returns how many Label Studio created. LS drops `cluster` here. With the flag
        `fflag_fix_back_4620_..._short` (on in every Label Studio tasveer starts, docs/labelstudio.md)
        LS checks and recounts only the chunk's tasks and keeps a result as given (the note items of
        lsproto/notes.py included); a task deleted meanwhile makes it refuse the chunk (400 naming
        the task), so that task is left out and the chunk sent again."""
        created = 0
        for start in range(0, len(predictions), chunk):
            created += self._import_chunk(project_id, predictions[start : start + chunk])
        return created

    def _import_chunk(self, project_id: int, part: list[dict]) -> int:
        what = f"POST /api/projects/{project_id}/import/predictions"
        while part:
            try:
                with sdk_call(what):
                    # the SDK sends plain dicts as given (JSON); its annotation names only its pydantic model
                    answer = self.projects.import_predictions(id=project_id, request=part)  # type: ignore[arg-type]
            except LabelStudioError as exc:
                gone = {int(t) for t in MISSING_TASK.findall(str(exc))}
                kept = [p for p in part if p.get("task") not in gone]
                if exc.status != 400 or not gone or len(kept) == len(part):
                    raise
                part = kept  # tasks deleted since they were listed: the rest still go in
                continue
            return answer.created if isinstance(answer.created, int) else len(part)
        return 0

    def delete_task_predictions(self, project_id: int, task_ids: Sequence[int], *, timeout: float = 600.0) -> None:
        """Delete every prediction of `task_ids` (Label Studio's data-manager action
        `delete_tasks_predictions`: one request, counters recounted for those tasks only)."""
        if not task_ids:
            return
        with sdk_call(f"POST /api/dm/actions?id=delete_tasks_predictions&project={project_id}"):
            self.actions.create(
                id="delete_tasks_predictions",
                project=project_id,
                selected_items={"all": False, "included": [int(t) for t in task_ids]},
                request_options={"timeout_in_seconds": timeout},
            )

    def patch_notes(self, project_id: int, version: str, notes: dict[int, list], workers: int = 4) -> int:
        """The fallback for a Label Studio without the import flag, which drops a prediction whose
        result has an item its config lacks: put the note items (`notes` = {task: items}) onto
        the predictions of `version`, one PATCH each (a PATCH does not check the result). Lists
        the project's predictions. Returns how many were patched."""
        todo: list[tuple[int, list]] = []
        for pred in self.project_predictions(project_id):
            items = notes.get(int(pred.get("task") or 0)) if pred.get("model_version") == version else None
            if items is None:
                continue
            result = without_notes(pred.get("result")) + list(items)
            if result != (pred.get("result") or []):
                todo.append((pred["id"], result))

        def patch(item):
            with sdk_call(f"PATCH /api/predictions/{item[0]}/"):
                self.predictions.update(id=item[0], result=item[1])

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notes") as pool:
            # each in a copy of this thread's context: its requests count in the caller's tally.py scopes
            for done in [pool.submit(copy_context().run, patch, item) for item in todo]:
                done.result()
        return len(todo)

    def cache_notes(
        self,
        project_id: int,
        task_ids: Sequence[int] | None = None,
        *,
        timeout: float = 600.0,
        tags: Sequence[str] = (NOTE, QUEUE),
    ) -> None:
        """Copy the note items of the tasks' predictions into their data fields (lsproto/notes.py),
        of `task_ids` or of every task (None): Label Studio's data-manager action `cache_labels`,
        one request per field, whatever the number of tasks. Nothing to do without tasks (the action
        fails on an empty selection). `tags`: the items copied (the collection marks: GROUP, UNUSUAL)."""
        if task_ids is not None and not task_ids:
            return
        selected = (
            {"all": True, "excluded": []}
            if task_ids is None
            else {"all": False, "included": [int(t) for t in task_ids]}
        )
        for tag in tags:
            with sdk_call(f"POST /api/dm/actions?id=cache_labels&project={project_id}"):
                self.actions.create(
                    id="cache_labels",
                    project=project_id,
                    selected_items=selected,
                    request_options={"timeout_in_seconds": timeout, "additional_body_parameters": cache_request(tag)},
                )
