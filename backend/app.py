"""HTTP routes of the Label Studio ML backend. Thin: parse, call `TasveerModel`, answer JSON.

Label Studio 1.23.2's side (label_studio/ml/api_connector.py, ml/models.py):
  GET  /health    any 200 JSON answer means "connected" (1 s timeout)
  POST /setup     {project: "<id>.<ts>", schema, hostname, access_token, extra_params}
                  -> {"model_version": ...} (3 s timeout; an HTTP error puts the backend in Error)
  POST /predict   {tasks: [task...], project, label_config, params: {login, password, context}}
                  -> {"results": [{result, score, model_version}, ...]} one per task, in order
  POST /webhook   {action, project: {...}, annotation|tasks|...} (1 s timeout, answer ignored)
  POST /train     older training trigger {annotations, project, label_config, params} -> {"job": id}
  POST /job_status {job} -> {"job_status": queued|started|finished|failed}; 410 for unknown jobs
  GET  /versions  (JSON body {project}) -> {"versions": [vid, ...]}
Ours: GET /metrics (HTML), GET /versions/{vid}/confusion.png, GET /projects/{id}/jobs,
POST /projects/{id}/rollback {"version": vid}.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from .jobs import DONE, FAILED, QUEUED, RUNNING, SKIPPED
from .model import NotFound, RequestError, TasveerModel
from .page import metrics_page, version_summary
from .settings import Settings
from .state import ProjectIdError, parse_project

log = logging.getLogger(__name__)

# our job states -> the words Label Studio's MLBackendTrainJob understands
_LS_JOB_STATUS = {QUEUED: "queued", RUNNING: "started", DONE: "finished", SKIPPED: "finished", FAILED: "failed"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_object(request: Request, *, optional: bool = False) -> dict:
    raw = await request.body()
    if not raw.strip():
        if optional:
            return {}
        raise RequestError("request body is empty; expected a JSON object", status=400)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"request body is not valid JSON ({exc})", status=400) from None
    if not isinstance(body, dict):
        raise RequestError(f"request body must be a JSON object, got {type(body).__name__}", status=400)
    return body


def _pid(value) -> str:
    try:
        return parse_project(value)[0]
    except ProjectIdError as exc:
        raise RequestError(str(exc), status=400) from None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        app.state.model.close()

    app = FastAPI(title="tasveer ML backend", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.model = TasveerModel(settings)

    def model(request: Request) -> TasveerModel:
        return request.app.state.model

    # -- errors and auth ------------------------------------------------------------------------------
    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError):
        return _error(exc.status, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    if settings.basic_auth:
        user, password = settings.basic_auth

        @app.middleware("http")
        async def basic_auth(request: Request, call_next):
            header = request.headers.get("authorization", "")
            ok = False
            if header.lower().startswith("basic "):
                try:
                    given = base64.b64decode(header[6:].strip(), validate=True).decode()
                    u, _, p = given.partition(":")
                    ok = secrets.compare_digest(u.encode(), user.encode()) & secrets.compare_digest(
                        p.encode(), password.encode()
                    )
                except (binascii.Error, UnicodeDecodeError):
                    ok = False
            if not ok:
                return JSONResponse(
                    {"error": "authentication required"}, status_code=401,
                    headers={"WWW-Authenticate": 'Basic realm="tasveer"'},
                )
            return await call_next(request)

    # -- Label Studio protocol -----------------------------------------------------------------------
    @app.get("/health")
    @app.get("/")
    async def health(request: Request):
        return {"status": "UP", "model_class": "TasveerModel"}

    @app.post("/setup")
    async def setup(request: Request):
        body = await _json_object(request)
        if "project" not in body or "schema" not in body:
            raise RequestError("setup needs 'project' and 'schema' (the labeling config)", status=400)
        vid = await run_in_threadpool(
            model(request).setup, body["project"], body["schema"], body.get("hostname"),
            body.get("access_token"), body.get("extra_params"),
        )
        return {"model_version": vid}

    @app.post("/predict")
    async def predict(request: Request):
        body = await _json_object(request)
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            raise RequestError("predict needs 'tasks': a list of task objects", status=400)
        params = body.get("params") if isinstance(body.get("params"), dict) else {}
        results = await run_in_threadpool(
            model(request).predict, tasks, params.get("context"),
            project=body.get("project"), label_config=body.get("label_config"),
        )
        return {"results": results}

    @app.post("/webhook")
    async def webhook(request: Request):
        body = await _json_object(request)
        action = body.get("action")
        if not isinstance(action, str) or not action:
            raise RequestError("webhook needs an 'action'", status=400)
        return await run_in_threadpool(model(request).fit, action, body)

    @app.post("/train")
    async def train(request: Request):
        body = await _json_object(request)
        pid = _pid(body.get("project"))
        data = {"project": {"id": int(pid), "label_config": body.get("label_config")}}
        answer = await run_in_threadpool(model(request).fit, "START_TRAINING", data)
        if answer.get("status") != "scheduled":
            raise RequestError(answer.get("reason", "training not scheduled"), status=409)
        return {"job": answer["job"], "status": answer["job_state"]}

    @app.post("/job_status")
    async def job_status(request: Request):
        body = await _json_object(request)
        job_id = body.get("job")
        for job in model(request).jobs.jobs():
            if job.id == job_id:
                return {"job_status": _LS_JOB_STATUS.get(job.state, job.state), "error": job.error}
        return _error(410, f"no training job {job_id!r}")

    @app.get("/versions")
    async def versions(request: Request):
        body = await _json_object(request, optional=True)
        project = body.get("project") or request.query_params.get("project")
        m = model(request)
        if project is None:
            known = m.project_ids()
            if len(known) != 1:
                raise RequestError(
                    "say which project: JSON body {\"project\": ...} or ?project=<id>", status=400
                )
            project = known[0]
        pid = _pid(project)
        manifests = await run_in_threadpool(m.versions, pid)
        return {
            "versions": [mf["version"] for mf in manifests],
            "model_version": await run_in_threadpool(m.model_version, pid),
            "project": pid,
            "details": [version_summary(mf) for mf in manifests],
            "jobs": m.jobs.status(pid),
        }

    # -- ours -------------------------------------------------------------------------------------------
    @app.get("/projects/{project}/jobs")
    async def project_jobs(project: str, request: Request):
        pid = _pid(project)
        m = model(request)
        return {
            "project": pid,
            **m.jobs.status(pid),
            "jobs": [j.to_dict() for j in m.jobs.jobs(pid)],
            "background": [dict(r) for r in m.background if r.get("project") == pid],
            "model_version": await run_in_threadpool(m.model_version, pid),
        }

    @app.post("/projects/{project}/rollback")
    async def rollback(project: str, request: Request):
        body = await _json_object(request)
        vid = await run_in_threadpool(model(request).rollback, project, body.get("version"))
        return {"project": _pid(project), "model_version": vid}

    @app.get("/projects/{project}/versions/{vid}/confusion.png")
    async def project_confusion(project: str, vid: str, request: Request):
        path = await run_in_threadpool(model(request).confusion_png, _pid(project), vid)
        return FileResponse(path, media_type="image/png")

    @app.get("/versions/{vid}/confusion.png")
    async def confusion(vid: str, request: Request):
        m = model(request)
        project = request.query_params.get("project")
        if project is None:
            owners = [p for p in m.project_ids() if any(mf["version"] == vid for mf in m.versions(p))]
            if len(owners) != 1:
                raise (NotFound(f"no model version {vid!r}") if not owners else RequestError(
                    f"several projects have a version {vid!r}; add ?project=<id>", status=400))
            project = owners[0]
        path = await run_in_threadpool(m.confusion_png, _pid(project), vid)
        return FileResponse(path, media_type="image/png")

    @app.get("/metrics", response_class=HTMLResponse)
    async def metrics(request: Request):
        m = model(request)
        only = request.query_params.get("project")
        projects = [_pid(only)] if only else m.project_ids()
        return HTMLResponse(await run_in_threadpool(metrics_page, m, projects))

    return app
