"""The collection's routes (thin: parse, one read of the stored result, shape the answer):

GET /projects/{id}/duplicates         duplicate groups (task ids, exact or near, labels) and the
                                      leaky-evaluation report (groups with two labeled members or more)
GET /projects/{id}/unusual[?limit=N]  the most unusual photos, strongest first, with the score's parts

Both read what the background update job (backend/collection/curator.py) stored; login required
like every route but the protocol's (api/login.py's gate runs before any route)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from backend.api.httpio import backend_of, project_param
from backend.api.schema import query
from backend.collection import report

router = APIRouter()


@router.get("/projects/{project}/duplicates")
def duplicates(project: str, request: Request):
    pid = project_param(project)
    return report.duplicates(report.latest(backend_of(request), pid), pid)


@router.get("/projects/{project}/unusual", openapi_extra=query("limit", "how many, 1 to 1000 (default 50)"))
def unusual(project: str, request: Request):
    pid = project_param(project)
    return report.unusual(report.latest(backend_of(request), pid), pid, request.query_params.get("limit"))
