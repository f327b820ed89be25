"""The people calls of `LabelStudioClient`: who the token is, the organization's members, the
auto-accept user (lsproto/autoaccept.py) and annotations made in someone's name. Kept together
because they all speak Label Studio's user ids, which backend/ and sync/ pass on as `completed_by`."""

from __future__ import annotations

from label_studio_sdk import LabelStudio

from lsproto.autoaccept import AUTO_EMAIL, AUTO_USER

from .errors import LabelStudioError
from .sdkcall import sdk_call


class PeopleCalls(LabelStudio):
    """Users and annotations.

    Mixed into `LabelStudioClient` (client.py); it subclasses the SDK's `LabelStudio` only so that
    its SDK calls type-check, and is never built on its own.
    """

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

    def members(self) -> list[dict]:
        """The people of the token's organization: [{"id", "email", "name"}] (Label Studio's
        /api/users/ lists the active organization's users), the auto-accept user left out (its
        annotations are never training labels)."""
        with sdk_call("GET /api/users/"):
            users = self.users.list()
        people = []
        for u in users:
            if u.id is None or u.email == AUTO_EMAIL:
                continue
            name = " ".join(p for p in (u.first_name, u.last_name) if p) or (u.username or "")
            people.append({"id": int(u.id), "email": u.email or "", "name": name})
        return people

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
