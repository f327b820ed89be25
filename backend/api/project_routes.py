"""Our routes beside the protocol (thin: parse the request, one call, shape the answer):

GET     /projects/{id}/jobs                         training state, recent jobs, background write-backs
GET|PUT /projects/{id}/params                       the training parameters (written to Label Studio's
                                                    extra params too)
GET     /projects/{id}/auto-accept                  threshold, coverage and spot checks per version
                                                    (ui/acceptsection.py)
POST    /projects/{id}/rollback {"version": vid}    serve that version (also promotes a candidate)
GET     /projects/{id}/versions/{vid}/confusion.png
GET     /versions/{vid}/confusion.png[?project=id]
GET     /metrics[?project=id]                       every version's metrics (HTML)

The model page and its data are ui/routes.py's. Routes without a body are plain `def`: FastAPI runs
them in its thread pool, so their disk and Redis reads never hold up the event loop.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse

from backend.api import answers
from backend.api.httpio import backend_of, json_object, project_param
from backend.api.schema import body, query
from backend.errors import RequestError

router = APIRouter()


@router.get("/projects/{project}/jobs")
def project_jobs(project: str, request: Request):
    return answers.project_jobs(backend_of(request), project_param(project))


@router.get("/projects/{project}/params")
def get_params(project: str, request: Request):
    return answers.project_params(backend_of(request), project_param(project))


@router.put("/projects/{project}/params", openapi_extra=body("params", required=False))
async def put_params(project: str, request: Request):
    pid, data = project_param(project), await json_object(request, optional=True)
    explicit = await run_in_threadpool(backend_of(request).set_params, pid, data)
    return answers.params_answer(pid, explicit)


@router.get("/projects/{project}/auto-accept")
def auto_accept(project: str, request: Request):
    return answers.auto_accept(backend_of(request), project_param(project))


@router.post("/projects/{project}/rollback", openapi_extra=body("rollback"))
async def rollback(project: str, request: Request):
    pid = project_param(project)
    vid = (await json_object(request)).get("version")
    if not isinstance(vid, str) or not vid:
        raise RequestError('body must be {"version": "<model version>"}')
    await run_in_threadpool(backend_of(request).rollback, pid, vid)
    return {"project": pid, "model_version": vid}


@router.get("/projects/{project}/versions/{vid}/confusion.png")
def project_confusion(project: str, vid: str, request: Request):
    path = answers.confusion_png(backend_of(request), project_param(project), vid)
    return FileResponse(path, media_type="image/png")


@router.get("/versions/{vid}/confusion.png", openapi_extra=query("project", "the project id"))
def confusion(vid: str, request: Request):
    project = request.query_params.get("project")
    pid = project_param(project) if project is not None else None
    return FileResponse(answers.confusion_png(backend_of(request), pid, vid), media_type="image/png")


@router.get("/metrics", response_class=HTMLResponse, openapi_extra=query("project", "only this project"))
def metrics(request: Request):
    only = request.query_params.get("project")
    return HTMLResponse(answers.metrics_html(backend_of(request), project_param(only) if only else None))
