"""Routes of the model page and its data endpoints (thin: each calls one function).

GET  /projects/{id}/page[?version=v]     the page (HTML)
GET  /projects/{id}/page.json            versions (with metrics), serving, selected version
GET  /projects/{id}/batch                the latest batch with predictions (JSON)
GET  /projects/{id}/tasks/{task}/image   a task's image as a JPEG thumbnail (fetched by the backend)
GET  /projects/{id}/training             idle / queued / running, progress, last error (JSON)
POST /projects/{id}/train                "train now" (JSON body, Content-Type application/json;
                                         {"preset": "accurate"}: the accurate preset, recipe.py)
POST /projects/{id}/deploy               "deploy to production" {"version": v} or "roll back"
                                         {"rollback": true} (JSON body; recorded as via "model page")
GET  /projects/{id}/map.json             the embedding map's points, in columns (collection/points.py)
POST /projects/{id}/map/selection        {"task_ids": [...], "title"?: str}: a Label Studio tab of exactly
                                         those tasks; answers its URL (collection/selection.py)
GET  /static/page.js                     the pages' script (static/page.js; behind the login like the
                                         page itself, which the browser's script request carries)
GET  /static/similar.js                  the similar-photos panel's script (static/similar.js, page.py)
GET  /static/map.js, /static/vendor/F    the embedding map's script and its plotting library (mapsection.py)
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from backend.api.httpio import json_object
from backend.api.keyguard import deployer
from backend.collection.points import map_json
from backend.collection.selection import open_selection
from backend.errors import NotFound, RequestError, quoted
from backend.jobs.recipe import ACCURATE, TAG, accurate_reason
from backend.projects.registry import project_id
from backend.ui import gallery, training
from backend.ui.html import SCRIPT_URL
from backend.ui.mapsection import LIBRARY, MAP_SCRIPT_URL, VENDOR_URL
from backend.ui.page import SIMILAR_SCRIPT_URL, PageContext, project_page

router = APIRouter()
STATIC = Path(__file__).with_name("static")  # package data (pyproject)
SCRIPT_FILE = STATIC / "page.js"
VENDOR_FILES = {LIBRARY: "text/javascript; charset=utf-8"}  # what /static/vendor/ serves, nothing else


def _pid(value) -> str:
    return project_id(value, status=400)[0]


def _service(request: Request):
    return request.app.state.backend


def _known(service, pid: str) -> str:
    if service.projects.state(pid) is None and not service.serving.versions(pid):
        raise NotFound(f"project {pid} is not set up (no /setup yet)")
    return pid


@router.get("/projects/{project}/page", response_class=HTMLResponse)
async def page(project: str, request: Request):
    s = _service(request)
    pid = _known(s, _pid(project))
    return HTMLResponse(await run_in_threadpool(project_page, s, pid, request.query_params.get("version")))


@router.get("/projects/{project}/page.json")
async def page_data(project: str, request: Request):
    s = _service(request)
    pid = _known(s, _pid(project))
    ctx = await run_in_threadpool(PageContext.load, s, pid, request.query_params.get("version"))
    selected = next((m for m in ctx.manifests if m.get("version") == ctx.selected), None)
    return {
        "project": pid,
        "serving": ctx.serving,
        "production": ctx.production,
        "versions": ctx.rows,
        "selected": ctx.selected,
        "selected_metrics": (selected or {}).get("metrics"),
        "selected_note": (selected or {}).get("metrics_note"),
    }


@router.get("/projects/{project}/batch")
async def batch(project: str, request: Request):
    s = _service(request)
    return await run_in_threadpool(gallery.latest_batch, s, _pid(project))


@router.get("/projects/{project}/tasks/{task}/image")
async def task_image(project: str, task: str, request: Request):
    if not task.isdigit():
        raise RequestError(f"task id must be a number; got {quoted(task)}", status=400)
    data = await run_in_threadpool(gallery.task_image, _service(request), _pid(project), int(task))
    return Response(
        data,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/projects/{project}/training")
async def training_status(project: str, request: Request):
    s = _service(request)
    return await run_in_threadpool(training.training_status, s, _known(s, _pid(project)))


@router.post("/projects/{project}/train")
async def train_now(project: str, request: Request):
    body = await json_object(request, optional=True)
    given = body.get("reason")
    reason = (given if isinstance(given, str) else "train now")[:100]
    preset = body.get("preset")
    if preset not in (None, "project", ACCURATE):
        raise RequestError(
            f"preset must be {ACCURATE!r} (or absent: the project's parameters); got {quoted(preset)}", status=422
        )
    reason = accurate_reason(reason) if preset == ACCURATE else reason.removesuffix(TAG)
    job = await run_in_threadpool(_service(request).train, _pid(project), reason)
    return {"job": job.id, "status": job.state, "project": job.project}


@router.post("/projects/{project}/deploy")
async def deploy_button(project: str, request: Request):
    body, pid = await json_object(request), _pid(project)
    by, via = deployer(request, via="model page")
    production = _service(request).production
    if body.get("rollback") is True:
        entry = await run_in_threadpool(production.rollback, pid, by=by, via=via)
    elif isinstance(body.get("version"), str) and body["version"]:
        entry = await run_in_threadpool(production.deploy, pid, body["version"], by=by, via=via)
    else:
        raise RequestError('body must be {"version": "<model version>"} or {"rollback": true}')
    return {"project": pid, "production": entry["version"], "entry": entry}


@router.get(SCRIPT_URL)
def page_script():
    """The one script of the backend's pages, read from the package (no inline script: api/guards.py's policy)."""
    return Response(
        SCRIPT_FILE.read_bytes(), media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


@router.get("/projects/{project}/map.json")
async def map_points(project: str, request: Request):
    s = _service(request)
    data = await run_in_threadpool(map_json, s, _known(s, _pid(project)))
    return Response(data, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.post("/projects/{project}/map/selection")
async def map_selection(project: str, request: Request):
    body, pid = await json_object(request), _pid(project)
    return await run_in_threadpool(open_selection, _service(request), pid, body)


@router.get(MAP_SCRIPT_URL)
def map_script():
    return _script("map.js")


@router.get(SIMILAR_SCRIPT_URL)
def similar_script():
    return _script("similar.js")


def _script(name: str) -> Response:
    """One of the package's scripts (static/), revalidated on each load like page.js."""
    return Response(
        (STATIC / name).read_bytes(), media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


@router.get(VENDOR_URL + "{name}")
def vendor_file(name: str):
    """A vendored library (static/vendor/): named files only, so no path reaches outside it."""
    if name not in VENDOR_FILES:
        raise NotFound(f"no static file {quoted(name)}")
    return Response(
        (STATIC / "vendor" / name).read_bytes(),
        media_type=VENDOR_FILES[name],
        headers={"Cache-Control": "public, max-age=86400"},
    )
