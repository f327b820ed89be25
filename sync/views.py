"""Create (or correct) tasveer's data-manager tabs in a project: see lsproto.views for what they show.
The auto-accept tabs are made once the auto-accept user exists (the backend creates it when a
project turns auto-accept on, and makes the tabs itself then)."""

from __future__ import annotations

from lsclient import LabelStudioError
from lsproto.views import views


class ViewError(RuntimeError):
    pass


def ensure_views(client, project_id: int) -> dict[str, int]:
    """Each of tasveer's views exists once with the right filters and ordering, the auto-accept tabs
    only when the auto-accept user exists (never created here); returns title -> view id. The
    rules (renamed tabs, views a person made) are lsclient's `ensure_views`, the backend's too."""
    try:
        return client.ensure_views(project_id, views(client.auto_user(create=False)))
    except LabelStudioError as exc:
        raise ViewError(f"cannot set up the project's views: {exc}") from None
