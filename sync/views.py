"""Create (or correct) tasveer's data-manager tabs in a project: see lsproto.views for what they show.
The auto-accept tabs are made once the auto-accept user exists (the backend creates it when a
project turns auto-accept on, and makes the tabs itself then)."""
from __future__ import annotations

import requests

from lsproto.autoaccept import AUTO_EMAIL
from lsproto.views import RENAMED, views
from sync.connection import auth_headers, base_url


class ViewError(RuntimeError):
    pass


def auto_user_id(url: str, headers: dict) -> int | None:
    """The id of the auto-accept user of the organization, or None while there is none."""
    resp = requests.get(f"{url}/api/users/", headers=headers, timeout=30)
    if resp.status_code != 200:
        return None  # a token that may not list users: the auto-accept tabs come from the backend
    return next((u["id"] for u in resp.json() if u.get("email") == AUTO_EMAIL), None)


def ensure_views(client, project_id: int) -> dict[str, int]:
    """Each of tasveer's views exists once with the right filters and ordering; returns title -> view id.
    A tab under an older title (lsproto.views.RENAMED) is corrected in place; views a person made
    are left alone."""
    url, headers = base_url(client), auth_headers(client)
    resp = requests.get(f"{url}/api/dm/views/", params={"project": project_id}, headers=headers, timeout=30)
    if resp.status_code != 200:
        raise ViewError(f"cannot list the project's views: HTTP {resp.status_code} {resp.text[:200]}")
    existing = {}
    for v in resp.json():
        title = v.get("data", {}).get("title")
        existing.setdefault(RENAMED.get(title, title), v)
    ids = {}
    for title, data in views(auto_user_id(url, headers)).items():
        body = {"project": project_id, "data": dict(data)}
        view = existing.get(title)
        if view is None:
            resp = requests.post(f"{url}/api/dm/views/", json=body, headers=headers, timeout=30)
        else:
            resp = requests.put(f"{url}/api/dm/views/{view['id']}/", json=body, headers=headers, timeout=30)
        if resp.status_code not in (200, 201):
            raise ViewError(f"cannot save the view {title!r}: HTTP {resp.status_code} {resp.text[:200]}")
        ids[title] = resp.json()["id"]
    return ids
