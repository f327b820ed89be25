"""Create (or correct) tasveer's data-manager tabs in a project: see lsproto.views for what they show."""
from __future__ import annotations

import requests

from lsproto.views import VIEWS
from sync.connection import auth_headers, base_url


class ViewError(RuntimeError):
    pass


def ensure_views(client, project_id: int) -> dict[str, int]:
    """Each of tasveer's views exists once with the right filters and ordering; returns title -> view id.
    Views a person made are left alone."""
    url, headers = base_url(client), auth_headers(client)
    resp = requests.get(f"{url}/api/dm/views/", params={"project": project_id}, headers=headers, timeout=30)
    if resp.status_code != 200:
        raise ViewError(f"cannot list the project's views: HTTP {resp.status_code} {resp.text[:200]}")
    existing = {v.get("data", {}).get("title"): v for v in resp.json()}
    ids = {}
    for title, data in VIEWS.items():
        body = {"project": project_id, "data": {k: v for k, v in data.items()}}
        view = existing.get(title)
        if view is None:
            resp = requests.post(f"{url}/api/dm/views/", json=body, headers=headers, timeout=30)
        else:
            resp = requests.put(f"{url}/api/dm/views/{view['id']}/", json=body, headers=headers, timeout=30)
        if resp.status_code not in (200, 201):
            raise ViewError(f"cannot save the view {title!r}: HTTP {resp.status_code} {resp.text[:200]}")
        ids[title] = resp.json()["id"]
    return ids
