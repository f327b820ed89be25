"""The data-manager view (tab) calls of `LabelStudioClient`: tasveer's own tabs kept as
lsproto/views.py declares them, and the one-off tab of a selection made on the embedding map."""

from __future__ import annotations

from collections.abc import Sequence

from label_studio_sdk import LabelStudio
from label_studio_sdk.types import View

from lsproto.views import RENAMED

from .errors import LabelStudioError
from .sdkcall import sdk_call


class ViewCalls(LabelStudio):
    """Data-manager views.

    Mixed into `LabelStudioClient` (client.py); it subclasses the SDK's `LabelStudio` only so that
    its SDK calls type-check, and is never built on its own.
    """

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

    def create_ids_view(self, project_id: int, title: str, task_ids: Sequence[int]) -> int:
        """A new data-manager tab `title` holding exactly the tasks `task_ids` (the embedding map's
        lasso): one `id in_list` filter, which Label Studio 1.23.2 applies as one SQL `IN (...)`
        (data_manager/managers.py apply_filters), so it stays one query for thousands of ids. SQLite
        allows 32,766 parameters per query: callers keep a selection below that. Returns the view id."""
        ids = sorted({int(t) for t in task_ids})
        data = {
            "title": title,
            "filters": {
                "conjunction": "and",
                "items": [{"filter": "filter:tasks:id", "operator": "in_list", "type": "Number", "value": ids}],
            },
            "ordering": ["tasks:id"],
        }
        with sdk_call("POST /api/dm/views/"):
            created = self.views.create(project=project_id, data=data)
        if created.id is None:
            raise LabelStudioError(f"POST /api/dm/views/: no id for the view {title!r}")
        return created.id
