"""Every raw HTTP call tasveer makes to Label Studio (checked against LS 1.23.2), each where the SDK
has no call for it or where its call would be slower or behave differently (said at each one).
They travel through the client's `httpx.Client` (transport.py): same token, renewal and retries as
the SDK's calls.

* `GET /api/tasks?project=<id>&fields=all&page=<n>&page_size=<k>[&query=<data manager query>]`
  -> `{"total": N, "tasks": [...]}` with each task's `annotations` (deleted tasks and annotations
  are simply absent); LS answers 404 past the last page.
* `GET /api/predictions/?project=<id>` -> every prediction of the project (a plain list).
* `GET /api/tasks?project=<id>&query={"filters": total_predictions > 0, "selectedItems": {"all":
  false, "included": [ids]}, "ordering": ["-tasks:id"]}` -> those of the ids that have a
  prediction, highest id first, and their count (`predicted_among`).
* `GET /api/projects/<id>/model-versions/` -> `{version: prediction count}`; `DELETE` the same with
  `{"model_version": v}` deletes that version's predictions.
* `POST /api/projects/<id>/import?return_task_ids=true` with image files (multipart) -> 201
  `{"task_ids": [...]}`, the tasks in the order of the files.
* `GET /api/projects/counts/?ids=<id>&include=task_number` -> `{"results": [{"task_number": N}]}`.
* `GET /health`.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Container, Iterator, Sequence
from pathlib import Path

import httpx

from .errors import LabelStudioError
from .transport import SEND_ONCE


def _tasks_of(body) -> list[dict]:
    return body.get("tasks", []) if isinstance(body, dict) else body


class RawCalls:
    """Mixed into `LabelStudioClient`: needs `self.http` (its httpx.Client) and `self.base_url`."""

    http: httpx.Client
    base_url: str

    def raw(self, method: str, path: str, ok: Container[int] = (200,), **kwargs) -> httpx.Response:
        """One request to `<base_url><path>`; a status outside `ok` is a LabelStudioError."""
        resp = self.http.request(method, f"{self.base_url}{path}", **kwargs)
        if resp.status_code not in ok:
            raise LabelStudioError(
                f"{method} {path}: HTTP {resp.status_code} {resp.text[:300]}", status=resp.status_code
            )
        return resp

    def health(self, timeout: float = 10.0) -> int:
        """The status of `GET /health` (any answer: Label Studio is reachable), tried once and
        without the token. The SDK has no health call."""
        return self.raw(
            "GET", "/health", ok=range(100, 600), auth=None, timeout=timeout, headers={SEND_ONCE: "1"}
        ).status_code

    def task_count(self, project_id: int) -> int:
        """How many tasks the project has (Label Studio's `task_number`), from the projects' counts
        endpoint asked for that count alone: the project's own GET computes a dozen counts over its
        tasks and predictions (0.27 s against 0.10 s at 50,000 tasks on PostgreSQL, with load), and
        every correction's training and refresh ask."""
        params = {"ids": project_id, "include": "task_number"}
        found = self.raw("GET", "/api/projects/counts/", params=params).json().get("results") or []
        if not found:
            raise LabelStudioError(f"GET /api/projects/counts/: no project {project_id}", status=404)
        return int(found[0].get("task_number") or 0)

    # The task list stays raw: the SDK's `tasks.list` pager parses every task, with its
    # annotations and predictions, into pydantic models (training and every refresh list all of a
    # project's tasks) and pages by its own rules, where LS answers 404 past the last page.
    def iter_tasks(
        self,
        project_id: int,
        page_size: int = 100,
        annotated_only: bool = False,
        unlabeled_only: bool = False,
        annotator: int | None = None,
    ) -> Iterator[dict]:
        """Every task of the project (or only those with / without annotations, or with one by
        the user `annotator`) with its annotations, page by page."""
        params = {"project": project_id, "fields": "all", "page_size": page_size}
        if annotated_only or unlabeled_only:
            params["query"] = json.dumps(
                {
                    "filters": {
                        "conjunction": "and",
                        "items": [
                            {
                                "filter": "filter:tasks:total_annotations",
                                "operator": "greater" if annotated_only else "equal",
                                "type": "Number",
                                "value": 0,
                            }
                        ],
                    }
                }
            )
        elif annotator is not None:
            params["query"] = json.dumps(
                {
                    "filters": {
                        "conjunction": "and",
                        "items": [
                            {
                                "filter": "filter:tasks:annotators",
                                "operator": "contains",
                                "type": "List",
                                "value": annotator,
                            }
                        ],
                    }
                }
            )
        return self._pages(project_id, params)

    def tasks_after(self, project_id: int, task_id: int, page_size: int = 500) -> Iterator[dict]:
        """The project's tasks with an id above `task_id` (Label Studio's ids only grow: the tasks
        created since), without their annotations, page by page."""
        query = {
            "filters": {
                "conjunction": "and",
                "items": [{"filter": "filter:tasks:id", "operator": "greater", "type": "Number", "value": task_id}],
            },
            "ordering": ["tasks:id"],
        }
        params = {"project": project_id, "fields": "task_only", "page_size": page_size, "query": json.dumps(query)}
        return self._pages(project_id, params)

    def _pages(self, project_id: int, params: dict) -> Iterator[dict]:
        page, seen, page_size = 1, 0, int(params["page_size"])
        while True:
            resp = self.raw("GET", "/api/tasks", ok=(200, 404), params={**params, "page": page})
            if resp.status_code == 404:
                if page > 1:  # past the last page
                    return
                raise LabelStudioError(
                    f"GET /api/tasks?project={project_id}&page={page}: HTTP 404 {resp.text[:200]}", status=404
                )
            body = resp.json()
            tasks = _tasks_of(body)
            yield from tasks
            seen += len(tasks)
            total = body.get("total") if isinstance(body, dict) else None
            if not tasks or len(tasks) < page_size or (total is not None and seen >= total):
                return
            page += 1

    def latest_tasks(self, project_id: int, n: int) -> list[dict]:
        """The `n` most recently imported tasks (highest ids first), with annotations and predictions."""
        query = json.dumps({"ordering": ["-tasks:id"]})
        resp = self.raw(
            "GET",
            "/api/tasks",
            params={"project": project_id, "fields": "all", "page": 1, "page_size": n, "query": query},
        )
        return sorted(_tasks_of(resp.json()), key=lambda t: -int(t.get("id", 0)))[:n]

    def project_task(self, project_id: int, task_id: int) -> dict | None:
        """One task of the project (None if the project has no such task). Asked through the task
        list: GET /api/tasks/<id> (the SDK's `tasks.get`) makes Label Studio ask the backend for a
        prediction."""
        query = json.dumps({"selectedItems": {"all": False, "included": [int(task_id)]}})
        resp = self.raw(
            "GET",
            "/api/tasks",
            params={"project": project_id, "fields": "all", "page": 1, "page_size": 1, "query": query},
        )
        return next((t for t in _tasks_of(resp.json()) if t.get("id") == int(task_id)), None)

    def project_predictions(self, project_id: int) -> list[dict]:
        """Every prediction of the project. Raw: the SDK's `predictions.list` parses each one into
        a pydantic model, ~0.8 s for 5000 against a few ms here, and `tasveer import` polls this
        every second."""
        body = self.raw("GET", "/api/predictions/", params={"project": project_id}).json()
        return body.get("results", body) if isinstance(body, dict) else body

    # Project model versions: the SDK has no call for them (its `ml.list_model_versions` is an ML
    # backend's versions, not the project's predictions by version).
    def model_versions(self, project_id: int) -> dict[str, int]:
        body = self.raw("GET", f"/api/projects/{project_id}/model-versions/").json()
        return body if isinstance(body, dict) else {}

    def delete_model_version(self, project_id: int, version: str) -> None:
        self.raw(
            "DELETE", f"/api/projects/{project_id}/model-versions/", ok=(200, 204), json={"model_version": version}
        )

    def import_files(self, project_id: int, files: Sequence[Path], timeout: float = 300.0) -> list[int]:
        """Upload image files as tasks in one multipart request, like LS's import dialog, and return
        the new task ids in the order of `files`. Raw: the SDK's `projects.import_tasks` sends JSON
        task data only, not files. Sent once: LS may have created the tasks when an answer is lost."""
        handles = [open(p, "rb") for p in files]
        try:
            parts = [
                (f"file{i}", (p.name, fh, mimetypes.guess_type(p.name)[0] or "application/octet-stream"))
                for i, (p, fh) in enumerate(zip(files, handles))
            ]
            resp = self.raw(
                "POST",
                f"/api/projects/{project_id}/import",
                ok=(201,),
                params={"return_task_ids": "true"},
                files=parts,
                timeout=timeout,
                headers={SEND_ONCE: "1"},
            )
        finally:
            for fh in handles:
                fh.close()
        task_ids = resp.json().get("task_ids") or []
        if len(task_ids) != len(files):
            raise LabelStudioError(
                f"POST /api/projects/{project_id}/import: {len(files)} files "
                f"but Label Studio created {len(task_ids)} tasks"
            )
        return list(task_ids)

    # Raw, like the task list above: which of some tasks have predictions, asked of those tasks
    # only. The SDK's `predictions.list` lists a whole project (or one task per request), so a
    # poll over it grows with the project; this asks the data manager for `task_ids` filtered on
    # LS's stored `total_predictions` counter (the ids go in the URL, ~6 characters each: callers
    # chunk them). It never makes LS ask the ML backend (the project's
    # `evaluate_predictions_automatically` is off, sync/project.py).
    def predicted_among(self, project_id: int, task_ids: Sequence[int]) -> set[int]:
        """The ids of `task_ids` (tasks of the project) that have at least one prediction.

        LS serializes every task it returns (~5 ms each), so the first request returns one: the
        highest predicted id and the count. When the count is that of the ids up to it (the
        predicted ones are the oldest, as the backend writes them in upload order) that is the
        answer; otherwise a second request lists the predicted ones."""
        ids = sorted({int(t) for t in task_ids})
        if not ids:  # an empty `included` list would select every task of the project
            return set()
        body = self._predicted_page(project_id, ids, 1)
        total, tasks = int(body.get("total") or 0), _tasks_of(body)
        if not total or not tasks:
            return set()
        below = [t for t in ids if t <= int(tasks[0]["id"])]
        if total == len(below):
            return set(below)
        wanted = set(ids)
        return {t["id"] for t in _tasks_of(self._predicted_page(project_id, ids, len(ids))) if t.get("id") in wanted}

    def _predicted_page(self, project_id: int, ids: list[int], page_size: int) -> dict:
        item = {"filter": "filter:tasks:total_predictions", "operator": "greater", "type": "Number", "value": 0}
        query = {
            "filters": {"conjunction": "and", "items": [item]},
            "selectedItems": {"all": False, "included": ids},
            "ordering": ["-tasks:id"],
        }
        params = {
            "project": project_id,
            "page": 1,
            "page_size": page_size,
            "resolve_uri": "false",
            "query": json.dumps(query, separators=(",", ":")),
        }
        resp = self.raw("GET", "/api/tasks", ok=(200, 404), params=params)
        return resp.json() if resp.status_code == 200 else {}  # 404: LS's answer for no page
