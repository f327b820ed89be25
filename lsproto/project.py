"""Project references as Label Studio sends them to an ML backend.

`/setup` and `/predict` carry `"<id>.<created timestamp>"`; webhooks carry the project object
(`{"id": 12, ...}`); some calls a bare id. The timestamp tells a recreated project (same id, e.g.
after Label Studio's database was reset) from the old one.
"""

from __future__ import annotations

import re

BACKEND_TITLE = "tasveer"  # the title of tasveer's ML backend connection in a Label Studio project
# the header carrying the shared secret of `/webhook` (TASVEER_WEBHOOK_SECRET); sync puts it in the
# webhook it makes Label Studio send
WEBHOOK_SECRET_HEADER = "X-Tasveer-Webhook-Secret"
# the webhook actions the backend acts on (backend/api/webhooks.py; START_TRAINING comes from the
# train API, not a webhook). Label Studio 1.23.2 creates the backend's webhook for every action, and
# then each change of the project's model_version (a new version's head) serialises the project
# twice for a PROJECT_UPDATED payload and posts it to the backend before its PATCH returns (without
# LS's RQ workers: webhooks/utils.py): that PATCH took 0.26 s against 0.17 s without (medians of
# 12, a project of 10,000 tasks on PostgreSQL, 2026-12-06). sync makes it send only these
WEBHOOK_ACTIONS = (
    "TASKS_CREATED",
    "TASKS_DELETED",
    "ANNOTATION_CREATED",
    "ANNOTATIONS_CREATED",
    "ANNOTATION_UPDATED",
    "ANNOTATIONS_DELETED",
)

_UID = re.compile(r"^\s*(\d+)(?:\.(\d+))?\s*$")


class ProjectIdError(ValueError):
    """A project reference that is not "<id>" or "<id>.<timestamp>"."""


def parse_project(value) -> tuple[str, str | None]:
    """ "12.1795492545" -> ("12", "1795492545"); 12 -> ("12", None); {"id": 12} -> ("12", None)."""
    if isinstance(value, bool):
        raise ProjectIdError(f'project must be an id like "12.1795492545"; got {value!r}')
    if isinstance(value, int):
        if value < 0:
            raise ProjectIdError(f"project id must not be negative; got {value}")
        return str(value), None
    if isinstance(value, dict) and isinstance(value.get("id"), (int, str)):
        return parse_project(value["id"])
    m = _UID.match(value) if isinstance(value, str) else None
    if not m:
        raise ProjectIdError(f'project must be an id like "12.1795492545"; got {value!r}')
    return str(int(m.group(1))), m.group(2)
