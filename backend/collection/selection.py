"""A lasso selection on the embedding map becomes a Label Studio data-manager tab of exactly those
tasks (lsclient's `create_ids_view`: one `id in_list` filter), and the page gets the tab's URL to
open. Each selection is a new tab: a person may keep several side by side and delete them in Label
Studio like any other tab."""

from __future__ import annotations

from backend.errors import NotFound, RequestError, quoted

MAX_SELECTION = 30_000  # below SQLite's 32,766 query parameters (Label Studio filters with one IN (...))
TITLE_CHARS = 100


def selection_request(body: dict) -> tuple[list[int], str]:
    """(sorted unique task ids, tab title) of a POST body {task_ids: [int], title?: str}; RequestError
    (422) naming what is wrong otherwise."""
    ids = body.get("task_ids")
    if not isinstance(ids, list) or not ids:
        raise RequestError(f"task_ids must be a non-empty list of task ids; got {quoted(ids)}")
    if not all(isinstance(t, int) and not isinstance(t, bool) and t > 0 for t in ids):
        bad = next(t for t in ids if not (isinstance(t, int) and not isinstance(t, bool) and t > 0))
        raise RequestError(f"task_ids must hold positive whole numbers; got {quoted(bad)}")
    unique = sorted(set(ids))
    if len(unique) > MAX_SELECTION:
        raise RequestError(
            f"a tab holds at most {MAX_SELECTION} tasks (Label Studio's database limit); got {len(unique)}: "
            "select fewer points",
            status=413,
        )
    title = body.get("title")
    if title is None or (isinstance(title, str) and not title.strip()):
        title = f"Map selection ({len(unique)} tasks)"
    if not isinstance(title, str):
        raise RequestError(f"title must be a string; got {quoted(title)}")
    return unique, title.strip()[:TITLE_CHARS]


def open_selection(service, pid: str, body: dict) -> dict:
    """Create the tab of a selection in project `pid`'s Label Studio: {project, view, title, count, url}."""
    ids, title = selection_request(body)
    state = service.projects.state(pid)
    if state is None or not state.label_config:
        raise NotFound(f"project {pid} is not set up (no /setup yet)")
    api = service.projects.api(state)
    view = api.create_ids_view(int(pid), title, ids)
    public = (state.hostname or api.base_url).rstrip("/")
    return {
        "project": pid,
        "view": view,
        "title": title,
        "count": len(ids),
        "url": f"{public}/projects/{pid}/data?tab={view}",
    }
