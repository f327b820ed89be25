"""The project-level calls of `LabelStudioClient`: the model version the data
manager scores by, the extra params of tasveer's ML backend connection, and a data-manager action
run on chosen tasks. Each reads or changes one project's settings, not its tasks' content."""

from __future__ import annotations

from collections.abc import Sequence

from label_studio_sdk import LabelStudio

from lsproto.project import BACKEND_TITLE

from .sdkcall import sdk_call
from .transport import SEND_ONCE


class ProjectCalls(LabelStudio):
    """Project settings and actions.

    Mixed into `LabelStudioClient` (client.py); it subclasses the SDK's `LabelStudio` only so that
    its SDK calls type-check, and is never built on its own.
    """

    def tasveer_backends(self, project_id: int) -> list:
        """The project's tasveer ML backend connections (SDK MlBackend objects)."""
        with sdk_call(f"GET /api/ml/?project={project_id}"):
            return [ml for ml in self.ml.list(project=project_id) if ml.title == BACKEND_TITLE]

    def set_extra_params(self, project_id: int, params: dict) -> int:
        """Write `params` into the extra params of the project's tasveer ML backend connection(s),
        so Label Studio's settings page shows what the backend uses and its next /setup sends the
        same. Returns how many connections were updated."""
        mine = self.tasveer_backends(project_id)
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

    def model_version(self, project_id: int) -> str:
        """The version whose predictions the project shows and samples by ("" for every version)."""
        with sdk_call(f"GET /api/projects/{project_id}/"):
            return str(self.projects.get(id=project_id).model_version or "")

    def backend_versions(self, project_id: int) -> list[str]:
        """The model_version each of the project's tasveer ML backend connections last reported
        to Label Studio (its /setup answer)."""
        return [str(ml.model_version) for ml in self.tasveer_backends(project_id) if ml.model_version]

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
