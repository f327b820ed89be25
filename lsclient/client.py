"""`LabelStudioClient`: the label-studio-sdk client (every SDK call stays available: `.projects`,
`.ml`, `.webhooks`, ...) plus the operations tasveer does, each written once for backend/ and sync/.

* The SDK's own token handling (it exchanges a personal access token but never renews it after a
  401) is bypassed: it gets `SDK_KEY`, a placeholder, and transport.TokenAuth sets the real header
  on every request. Its retries are off (`max_retries=0`): transport.RetryingTransport retries
  every call, SDK or raw, the same way.
* Every operation below raises `LabelStudioError` (naming the call) for an HTTP error; an SDK call
  made directly on the client raises the SDK's `ApiError` for one, as the SDK does.
* Raw HTTP, for what the SDK lacks or does slower, is in raw.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError
from label_studio_sdk.types import View

from lsproto.autoaccept import AUTO_EMAIL, AUTO_USER, is_auto
from lsproto.config import LabelConfig
from lsproto.notes import NOTE, QUEUE, cache_request, without_notes
from lsproto.project import BACKEND_TITLE
from lsproto.results import newest_label
from lsproto.tokens import LSAuth
from lsproto.views import RENAMED

from .errors import LabelStudioError
from .raw import RawCalls
from .transport import SEND_ONCE, RetryingTransport, http_client

MISSING_TASK = re.compile(r"task ID (\d+) not found")  # LS's 400 for a deleted task
SDK_KEY = "tasveer-token-auth"  # what the SDK is given as api_key: never sent (TokenAuth replaces it)


@contextmanager
def sdk_call(what: str):
    """An SDK call whose HTTP error becomes a LabelStudioError naming `what` (method and path)."""
    try:
        yield
    except ApiError as exc:
        body = exc.body if isinstance(exc.body, str) else json.dumps(exc.body, default=str)
        raise LabelStudioError(f"{what}: HTTP {exc.status_code} {body[:300]}", status=exc.status_code) from None


@dataclass(frozen=True)
class Example:
    task_id: int
    annotation_id: int
    image: str  # the task's image URL as stored in Label Studio
    label: str


class LabelStudioClient(RawCalls, LabelStudio):
    """One Label Studio and one token (`auth`); thread-safe, one connection pool."""

    def __init__(self, auth: LSAuth, *, timeout: float = 30.0):
        self.auth = auth
        self.base_url = auth.base_url
        self.timeout = timeout
        self.transport = RetryingTransport(httpx.HTTPTransport())
        self.http = http_client(auth, timeout, self.transport)
        super().__init__(
            base_url=auth.base_url, api_key=SDK_KEY, httpx_client=self.http, timeout=timeout, max_retries=0
        )

    @property
    def requests_sent(self) -> int:
        """How many requests this client has sent to Label Studio (retries included)."""
        return self.transport.sent

    def whoami(self):
        """The token's user (`.id`, `.email`, ...)."""
        with sdk_call("GET /api/current-user/whoami"):
            return self.users.whoami()

    def auto_user(self, create: bool = True) -> int | None:
        """The id of the organization's auto-accept user (lsproto/autoaccept.py), created on first
        use when `create`. A token that may not list users is an error, not "no such user"."""
        with sdk_call("GET /api/users/"):
            users = self.users.list()
        found = next((u.id for u in users if u.email == AUTO_EMAIL), None)
        if found is not None or not create:
            return found
        with sdk_call("POST /api/users/"):
            created = self.users.create(**AUTO_USER)
        if created.id is None:
            raise LabelStudioError("POST /api/users/: Label Studio answered without a user id")
        return created.id

    def create_annotation(self, project_id: int, task_id: int, result: list, completed_by: int | None = None) -> int:
        """A submitted annotation of `task_id`, in the name of `completed_by` (else of the token's
        user, exactly like a submit in the labeling UI); its id. Label Studio must answer 201 with
        the annotation as asked for."""
        what = f"POST /api/tasks/{task_id}/annotations/"
        fields = {"result": result, "project": project_id}
        if completed_by is not None:
            fields["completed_by"] = completed_by
        with sdk_call(what):
            resp = self.annotations.with_raw_response.create(id=task_id, **fields)
        ann = resp.data
        if resp.status_code != 201 or ann.id is None:
            raise LabelStudioError(f"{what}: HTTP {resp.status_code}, annotation id {ann.id}", status=resp.status_code)
        if completed_by is not None and ann.completed_by != completed_by:
            raise LabelStudioError(
                f"{what}: annotation {ann.id} was stored as user {ann.completed_by}, not {completed_by}",
                status=resp.status_code,
            )
        return ann.id

    def delete_annotation(self, annotation_id: int) -> None:
        """Gone afterwards (already gone is fine)."""
        try:
            with sdk_call(f"DELETE /api/annotations/{annotation_id}/"):
                self.annotations.delete(id=annotation_id)
        except LabelStudioError as exc:
            if exc.status != 404:
                raise

    def ensure_views(self, project_id: int, views: dict[str, dict]) -> dict[str, int]:
        """Each view of `views` (title -> data, lsproto/views.py) exists once as given; a tab under
        an older title (lsproto.views.RENAMED) is corrected in place, one that differs is updated,
        views a person made are left alone. Returns title -> view id."""
        with sdk_call(f"GET /api/dm/views/?project={project_id}"):
            listed = self.views.list(project=project_id)
        existing: dict[str | None, View] = {}
        for view in listed:
            title = view.data.get("title") if isinstance(view.data, dict) else None
            existing.setdefault(RENAMED.get(title, title) if title is not None else None, view)
        ids = {}
        for title, data in views.items():
            old = existing.get(title)
            if old is None:
                with sdk_call("POST /api/dm/views/"):
                    created = self.views.create(project=project_id, data=dict(data))
                if created.id is None:
                    raise LabelStudioError(f"POST /api/dm/views/: no id for the view {title!r}")
                ids[title] = created.id
                continue
            if old.data != data:
                with sdk_call(f"PATCH /api/dm/views/{old.id}/"):
                    self.views.update(id=old.id, project=project_id, data=dict(data))
            ids[title] = old.id
        return ids

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
            list(pool.map(patch, todo))
        return len(todo)

    def task_count(self, project_id: int) -> int:
        """How many tasks the project has (Label Studio's `task_number`)."""
        with sdk_call(f"GET /api/projects/{project_id}/"):
            return int(self.projects.get(id=project_id).task_number or 0)

    def cache_notes(self, project_id: int, task_ids: Sequence[int] | None = None, *, timeout: float = 600.0) -> None:
        """Copy the note items of the tasks' predictions into their data fields (lsproto/notes.py),
        of `task_ids` or of every task (None): Label Studio's data-manager action `cache_labels`,
        one request per field, whatever the number of tasks. Nothing to do without tasks (the action
        fails on an empty selection)."""
        if task_ids is not None and not task_ids:
            return
        selected = (
            {"all": True, "excluded": []}
            if task_ids is None
            else {"all": False, "included": [int(t) for t in task_ids]}
        )
        for tag in (NOTE, QUEUE):
            with sdk_call(f"POST /api/dm/actions?id=cache_labels&project={project_id}"):
                self.actions.create(
                    id="cache_labels",
                    project=project_id,
                    selected_items=selected,
                    request_options={"timeout_in_seconds": timeout, "additional_body_parameters": cache_request(tag)},
                )

    def set_extra_params(self, project_id: int, params: dict) -> int:
        """Write `params` into the extra params of the project's tasveer ML backend connection(s),
        so Label Studio's settings page shows what the backend uses and its next /setup sends the
        same. Returns how many connections were updated."""
        with sdk_call(f"GET /api/ml/?project={project_id}"):
            mine = [ml for ml in self.ml.list(project=project_id) if ml.title == BACKEND_TITLE]
        for ml in mine:
            # LS 1.23.2 health-checks and sets up on every PATCH and fails (500) without url and project,
            # and with only the fields sent: a backend behind a login needs its basic auth named (a blank
            # password keeps the stored one)
            auth = (
                {"auth_method": "BASIC_AUTH", "basic_auth_user": ml.basic_auth_user, "basic_auth_pass": ""}
                if str(getattr(ml.auth_method, "value", ml.auth_method)) == "BASIC_AUTH"
                else {}
            )
            with sdk_call(f"PATCH /api/ml/{ml.id}"):
                self.ml.update(id=ml.id, url=ml.url, project=project_id, extra_params=params, **auth)
        return len(mine)

    def set_model_version(self, project_id: int, version: str) -> None:
        """Which predictions the score column, its sorting and uncertainty sampling count."""
        with sdk_call(f"PATCH /api/projects/{project_id}/"):
            self.projects.update(id=project_id, model_version=version)

    def task_action(self, project_id: int, action: str, task_ids: Sequence[int], *, timeout: float) -> None:
        """Run a Data Manager action (e.g. "retrieve_tasks_predictions") on `task_ids`, once
        (the caller keeps its own deadline and asks again)."""
        with sdk_call(f"POST /api/dm/actions?id={action}&project={project_id}"):
            self.actions.create(
                id=action,
                project=project_id,
                selected_items={"all": False, "included": [int(t) for t in task_ids]},
                request_options={"timeout_in_seconds": timeout, "additional_headers": {SEND_ONCE: "1"}},
            )

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
