"""Routes for applications and the production version (thin: parse the request, one call, shape the
answer):

POST /projects/{id}/classify[?top_k=3&version=v]  label images with the production version (raw image,
                                                  multipart upload or JSON {"urls": [...]}); the login,
                                                  the project's API key, or loopback (api/keyguard.py)
GET  /projects/{id}/production                    the production version, its history, the key's hint
POST /projects/{id}/production {"version": vid}   deploy that version to production (`tasveer deploy`)
POST /projects/{id}/production/rollback           production back to the version before the last deploy
POST /projects/{id}/api-key                       a new API key for /classify (shown once; replaces the old)
GET  /projects/{id}/versions/{vid}/export         the version as a zip: model.onnx, labels.json, MODEL_CARD.md

The model page's "deploy to production" button posts to ui/routes.py. POST bodies are JSON with
`Content-Type: application/json` (httpio.json_object), which no cross-site form can send.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from backend.api.classify_io import REQUEST_BODY, ClassifyAnswer, read_images
from backend.api.httpio import backend_of, json_object, project_param
from backend.api.keyguard import check_classify, check_key_maker, deployer
from backend.api.schema import body
from backend.errors import NotFound, RequestError

router = APIRouter()

CLASSIFY_DOC = {
    **REQUEST_BODY,
    "parameters": [
        {
            "name": "top_k",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "default": 3},
            "description": "how many of the most likely labels to list per image",
        },
        {
            "name": "version",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "answer with this model version (e.g. v0003) instead of the production one",
        },
    ],
}
NO_BODY = {"requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}}


def _top_k(raw: str | None) -> int:
    if raw is None:
        return 3
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 1000:
        raise RequestError(f"top_k must be a whole number from 1 to 1000; got {raw[:40]!r}", status=422)
    return int(raw)


def _known(backend, pid: str) -> str:
    if backend.projects.state(pid) is None and not backend.serving.versions(pid):
        raise NotFound(f"project {pid} is not set up (no /setup yet) and has no model versions")
    return pid


@router.post(
    "/projects/{project}/classify",
    response_model=ClassifyAnswer,
    openapi_extra=CLASSIFY_DOC,
    summary="label images with the project's production version",
)
async def classify(project: str, request: Request):
    pid, backend = project_param(project), backend_of(request)
    check_classify(request, backend.api_keys, pid)
    top_k, version = _top_k(request.query_params.get("top_k")), request.query_params.get("version") or None
    uploads, urls = await read_images(request)
    return await run_in_threadpool(
        backend.classifier.classify, pid, uploads=uploads, urls=urls, top_k=top_k, version=version
    )


@router.get("/projects/{project}/production")
def production(project: str, request: Request):
    pid, backend = project_param(project), backend_of(request)
    return {
        "project": pid,
        "production": backend.production.version(pid),
        "serving": backend.serving.serving_version(pid),
        "history": backend.production.history(pid),
        "api_key": backend.api_keys.info(pid),
    }


@router.post("/projects/{project}/production", openapi_extra=body("rollback"))
async def deploy(project: str, request: Request):
    pid = project_param(project)
    vid = (await json_object(request)).get("version")
    if not isinstance(vid, str) or not vid:
        raise RequestError('body must be {"version": "<model version>"}')
    by, via = deployer(request)
    entry = await run_in_threadpool(backend_of(request).production.deploy, pid, vid, by=by, via=via)
    return {"project": pid, "production": entry["version"], "entry": entry}


@router.post("/projects/{project}/production/rollback", openapi_extra=NO_BODY)
async def rollback_production(project: str, request: Request):
    pid = project_param(project)
    await json_object(request, optional=True)  # JSON only: no cross-site form
    by, via = deployer(request)
    entry = await run_in_threadpool(backend_of(request).production.rollback, pid, by=by, via=via)
    return {"project": pid, "production": entry["version"], "entry": entry}


@router.post("/projects/{project}/api-key", openapi_extra=NO_BODY)
async def new_api_key(project: str, request: Request):
    pid, backend = project_param(project), backend_of(request)
    await json_object(request, optional=True)
    check_key_maker(request)
    made = await run_in_threadpool(lambda: backend.api_keys.create(_known(backend, pid)))
    return {"project": pid, **made, "use": "Authorization: Bearer <key>  (or X-API-Key: <key>)"}


@router.get("/projects/{project}/versions/{vid}/export")
def export(project: str, vid: str, request: Request):
    pid = project_param(project)
    path = backend_of(request).exports.zip_path(pid, vid)
    return FileResponse(path, media_type="application/zip", filename=f"tasveer-project{pid}-{vid}.zip")
