"""The few Label Studio REST calls the backend makes (plain `requests`, checked against LS 1.23.2).

* `GET /api/tasks?project=<id>&fields=all&page=<n>&page_size=<k>[&query=<data manager filter>]`
  -> `{"total": N, "tasks": [...]}` with each task's `annotations` (deleted tasks and annotations
  are simply absent). Training asks only for tasks with annotations (the Data Manager filter
  `filter:tasks:total_annotations > 0`): listing every task costs ~1 s per few hundred tasks.
* `POST /api/projects/<id>/import/predictions` with a JSON list of
  `{"task", "result", "score", "model_version"}` -> `201 {"created": n}` (it drops `cluster`:
  `PATCH /api/predictions/<id>` `{"cluster": k}` sets it).
* `PATCH /api/projects/<id>` `{"model_version": v}`: which predictions the score column, its sorting
  and uncertainty sampling count.
* `GET /api/projects/<id>/model-versions/` -> `{version: prediction count}`;
  `DELETE` the same with `{"model_version": v}` deletes that version's predictions.
* auto-accept (lsproto/autoaccept.py): `GET|POST /api/users/` finds or creates the organization's
  auto-accept user; `POST /api/tasks/<id>/annotations/` with `completed_by` writes an annotation in
  its name; `DELETE /api/annotations/<id>/`; `GET|POST|PUT /api/dm/views/` for the tabs.
"""
from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from lsproto.autoaccept import AUTO_EMAIL, AUTO_USER, is_auto
from lsproto.config import LabelConfig
from lsproto.project import BACKEND_TITLE
from lsproto.results import newest_label
from lsproto.views import RENAMED
from lsproto.tokens import LSAuth, TokenError

log = logging.getLogger(__name__)

RETRY_WAITS = (0.5, 1.0, 2.0, 4.0)  # seconds between tries of a failed Label Studio call


class LabelStudioError(RuntimeError):
    """A Label Studio API call failed; the message names the call."""


@dataclass(frozen=True)
class Example:
    task_id: int
    annotation_id: int
    image: str  # the task's image URL as stored in Label Studio
    label: str


class LabelStudioAPI:
    def __init__(self, auth: LSAuth, timeout: float = 30.0):
        self.auth = auth
        self.base_url = auth.base_url
        self.timeout = timeout
        self.session = requests.Session()

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        """One call, retried with backoff while Label Studio is unreachable or answers 5xx (its
        SQLite says "database is locked" under concurrent writes), and once after a 401 with a
        renewed access token."""
        url = f"{self.base_url}{path}"
        refreshed = False
        for wait in (*RETRY_WAITS, None):
            try:
                headers = self.auth.headers()
            except TokenError as exc:
                raise LabelStudioError(str(exc)) from None
            try:
                resp = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                if wait is None:
                    raise LabelStudioError(f"{method} {url}: {type(exc).__name__}: {exc}") from None
                time.sleep(wait)
                continue
            if resp.status_code == 401 and not refreshed and self.auth.refresh():
                refreshed = True
                continue
            if resp.status_code >= 500 and wait is not None:
                log.warning("%s %s: HTTP %s, retrying in %.1f s", method, path, resp.status_code, wait)
                time.sleep(wait)
                continue
            return resp

    def iter_tasks(self, project_id: int, page_size: int = 100, annotated_only: bool = False,
                   unlabeled_only: bool = False, annotator: int | None = None):
        """Every task of the project (or only those with / without annotations, or with one by
        the user `annotator`) with its annotations, page by page."""
        page, seen = 1, 0
        params = {"project": project_id, "fields": "all", "page_size": page_size}
        if annotated_only or unlabeled_only:
            params["query"] = json.dumps({"filters": {"conjunction": "and", "items": [{
                "filter": "filter:tasks:total_annotations", "operator": "greater" if annotated_only else "equal",
                "type": "Number", "value": 0}]}})
        elif annotator is not None:
            params["query"] = json.dumps({"filters": {"conjunction": "and", "items": [{
                "filter": "filter:tasks:annotators", "operator": "contains", "type": "List", "value": annotator}]}})
        while True:
            resp = self._request("GET", "/api/tasks", params={**params, "page": page})
            if resp.status_code == 404 and page > 1:  # past the last page
                return
            if resp.status_code != 200:
                raise LabelStudioError(
                    f"GET /api/tasks?project={project_id}&page={page}: HTTP {resp.status_code} {resp.text[:200]}"
                )
            body = resp.json()
            tasks = body.get("tasks", []) if isinstance(body, dict) else body
            yield from tasks
            seen += len(tasks)
            total = body.get("total") if isinstance(body, dict) else None
            if not tasks or len(tasks) < page_size or (total is not None and seen >= total):
                return
            page += 1

    def latest_tasks(self, project_id: int, n: int) -> list[dict]:
        """The `n` most recently imported tasks (highest ids first), with annotations and predictions."""
        query = json.dumps({"ordering": ["-tasks:id"]})
        resp = self._checked("GET", "/api/tasks", (200,), params={
            "project": project_id, "fields": "all", "page": 1, "page_size": n, "query": query})
        body = resp.json()
        tasks = body.get("tasks", []) if isinstance(body, dict) else body
        return sorted(tasks, key=lambda t: -int(t.get("id", 0)))[:n]

    def project_task(self, project_id: int, task_id: int) -> dict | None:
        """One task of the project (None if the project has no such task). Asked through the task
        list: GET /api/tasks/<id> would make Label Studio ask the backend for a prediction."""
        query = json.dumps({"selectedItems": {"all": False, "included": [int(task_id)]}})
        resp = self._checked("GET", "/api/tasks", (200,), params={
            "project": project_id, "fields": "all", "page": 1, "page_size": 1, "query": query})
        body = resp.json()
        tasks = body.get("tasks", []) if isinstance(body, dict) else body
        return next((t for t in tasks if t.get("id") == int(task_id)), None)

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

    def import_predictions(self, project_id: int, predictions: list[dict], chunk: int = 500) -> int:
        created = 0
        for start in range(0, len(predictions), chunk):
            part = predictions[start:start + chunk]
            resp = self._checked("POST", f"/api/projects/{project_id}/import/predictions", (200, 201), json=part)
            try:
                created += int(resp.json().get("created", len(part)))
            except (ValueError, AttributeError, TypeError):
                created += len(part)
        return created

    def set_clusters(self, project_id: int, version: str, clusters: dict[int, int], workers: int = 4) -> int:
        """Give the predictions of `version` their task's cluster. `import/predictions` drops the
        `cluster` field, so each prediction is patched (`PATCH /api/predictions/<id>`)."""
        resp = self._checked("GET", "/api/predictions/", (200,), params={"project": project_id})
        body = resp.json()
        rows = body.get("results", body) if isinstance(body, dict) else body
        todo = [(p["id"], clusters[p["task"]]) for p in rows
                if p.get("model_version") == version and p.get("task") in clusters and p.get("cluster") != clusters[p["task"]]]

        def patch(item):
            self._checked("PATCH", f"/api/predictions/{item[0]}/", (200,), json={"cluster": int(item[1])})

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clusters") as pool:
            list(pool.map(patch, todo))
        return len(todo)

    def set_extra_params(self, project_id: int, params: dict) -> int:
        """Write `params` into the extra params of the project's tasveer ML backend connection(s)
        (`PATCH /api/ml/<id>`), so Label Studio's settings page shows what the backend uses and its
        next /setup sends the same. Returns how many connections were updated."""
        resp = self._checked("GET", "/api/ml/", (200,), params={"project": project_id})
        mine = [ml for ml in resp.json() if ml.get("title") == BACKEND_TITLE]
        for ml in mine:
            # LS 1.23.2 health-checks and sets up on every PATCH and fails (500) without url and project
            self._checked("PATCH", f"/api/ml/{ml['id']}", (200,), json={"url": ml["url"], "project": project_id, "extra_params": params})
        return len(mine)

    def set_model_version(self, project_id: int, version: str) -> None:
        self._checked("PATCH", f"/api/projects/{project_id}", (200,), json={"model_version": version})

    def model_versions(self, project_id: int) -> dict[str, int]:
        resp = self._checked("GET", f"/api/projects/{project_id}/model-versions/", (200,))
        body = resp.json()
        return body if isinstance(body, dict) else {}

    def delete_model_version(self, project_id: int, version: str) -> None:
        self._checked("DELETE", f"/api/projects/{project_id}/model-versions/", (200, 204),
                      json={"model_version": version})

    def auto_user(self, create: bool = True) -> int | None:
        """The id of the organization's auto-accept user (created on first use when `create`)."""
        resp = self._checked("GET", "/api/users/", (200,))
        found = next((u["id"] for u in resp.json() if u.get("email") == AUTO_EMAIL), None)
        if found is not None or not create:
            return found
        return self._checked("POST", "/api/users/", (200, 201), json=AUTO_USER).json()["id"]

    def create_annotation(self, project_id: int, task_id: int, result: list, completed_by: int) -> int:
        resp = self._checked("POST", f"/api/tasks/{task_id}/annotations/", (200, 201),
                             json={"result": result, "completed_by": completed_by, "project": project_id})
        return resp.json()["id"]

    def delete_annotation(self, annotation_id: int) -> None:
        self._checked("DELETE", f"/api/annotations/{annotation_id}/", (200, 204, 404))

    def ensure_views(self, project_id: int, views: dict[str, dict]) -> dict[str, int]:
        """Each view of `views` (title -> data) exists once as given; returns title -> view id."""
        existing = {}
        for v in self._checked("GET", "/api/dm/views/", (200,), params={"project": project_id}).json():
            title = (v.get("data") or {}).get("title")
            existing.setdefault(RENAMED.get(title, title), v)
        ids = {}
        for title, data in views.items():
            body = {"project": project_id, "data": dict(data)}
            old = existing.get(title)
            if old is None:
                ids[title] = self._checked("POST", "/api/dm/views/", (200, 201), json=body).json()["id"]
            else:
                if old.get("data") != data:
                    self._checked("PUT", f"/api/dm/views/{old['id']}/", (200,), json=body)
                ids[title] = old["id"]
        return ids

    def _checked(self, method: str, path: str, ok: tuple, **kwargs) -> requests.Response:
        resp = self._request(method, path, **kwargs)
        if resp.status_code not in ok:
            raise LabelStudioError(f"{method} {path}: HTTP {resp.status_code} {resp.text[:300]}")
        return resp
