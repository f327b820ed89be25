"""HTTP routes of the Label Studio ML backend. Thin: parse the request, call one method of the
`Backend` (service.py), answer JSON.

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
the model page and its data (ui/routes.py: GET /projects/{id}/page ...),
POST /projects/{id}/rollback {"version": vid} (also promotes a candidate),
GET|PUT /projects/{id}/params (the training parameters, written to Label Studio's extra params too),
GET /projects/{id}/auto-accept (threshold, coverage and spot checks per version: autoaccept_page.py).
"""
from __future__ import annotations

import logging
import secrets
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from backend.errors import NotFound, RequestError
from backend.api.httpio import OPEN_PATHS, basic_auth_middleware, check_webhook_secret, json_object
from backend.writeback.lsapi import LabelStudioError
from backend.jobs.runner import DONE, FAILED, QUEUED, RUNNING, SKIPPED
from backend.ui.acceptsection import auto_accept_summary
from backend.ui.metrics import metrics_page, version_summary
from backend.projects.registry import project_id
from backend.api.schema import body, query
from backend.service import Backend
from backend.settings import Settings
from backend.ui.routes import router as page_router
from backend.api.webhooks import handle_webhook

log = logging.getLogger(__name__)

# our job states -> the words Label Studio's MLBackendTrainJob understands
_LS_JOB_STATUS = {QUEUED: "queued", RUNNING: "started", DONE: "finished", SKIPPED: "finished", FAILED: "failed"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def params_answer(pid: str, explicit: dict) -> dict:
    from training.params import TrainParams

    return {"project": pid, "params": explicit, "effective": TrainParams.from_dict(explicit or None).to_dict()}


def _pid(value) -> str:
    return project_id(value, status=400)[0]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        app.state.backend.close()

    app = FastAPI(title="tasveer ML backend", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.backend = Backend(settings)

    def service(request: Request) -> Backend:
        return request.app.state.backend

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError):
        if getattr(exc, "fields", None):  # bad training parameters, field by field (paramcheck.py)
            return JSONResponse({"error": str(exc), "fields": exc.fields}, status_code=exc.status)
        return _error(exc.status, str(exc))

    @app.exception_handler(LabelStudioError)
    async def _label_studio_error(request: Request, exc: LabelStudioError):
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return _error(502, f"Label Studio: {exc}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        ref = secrets.token_hex(4)  # the log has the traceback; the client gets no internals
        log.exception("%s %s failed (ref %s)", request.method, request.url.path, ref)
        return _error(500, f"internal error (ref {ref}; details in the backend log)")

    if settings.basic_auth:
        app.middleware("http")(basic_auth_middleware(*settings.basic_auth,
                                                     open_paths=OPEN_PATHS if settings.open_health else ()))
    app.include_router(page_router)

    # -- Label Studio protocol -----------------------------------------------------------------------
    @app.get("/health")
    @app.get("/")
    async def health(request: Request):
        return {"status": "UP", "model_class": "tasveer"}

    @app.post("/setup", openapi_extra=body("setup"))
    async def setup(request: Request):
        body = await json_object(request)
        if "project" not in body or "schema" not in body:
            raise RequestError("setup needs 'project' and 'schema' (the labeling config)", status=400)
        vid = await run_in_threadpool(service(request).setup, body["project"], body["schema"],
                                      body.get("hostname"), body.get("access_token"), body.get("extra_params"))
        return {"model_version": vid}

    @app.post("/predict", openapi_extra=body("predict"))
    async def predict(request: Request):
        body = await json_object(request)
        if not isinstance(body.get("tasks"), list):
            raise RequestError("predict needs 'tasks': a list of task objects", status=400)
        results = await run_in_threadpool(service(request).predictor.predict, body["tasks"],
                                          project=body.get("project"), label_config=body.get("label_config"))
        return {"results": results}

    @app.post("/webhook", openapi_extra=body("webhook"))
    async def webhook(request: Request):
        check_webhook_secret(request, settings.webhook_secret)
        body = await json_object(request)
        action = body.get("action")
        if not isinstance(action, str) or not action:
            raise RequestError("webhook needs an 'action'", status=400)
        return await run_in_threadpool(handle_webhook, service(request), action, body)

    @app.post("/train", openapi_extra=body("train"))
    async def train(request: Request):
        body = await json_object(request)
        pid = _pid(body.get("project"))
        label_config = body.get("label_config") if isinstance(body.get("label_config"), str) else None
        job = await run_in_threadpool(service(request).train, pid, "train API", label_config)
        return {"job": job.id, "status": job.state}

    @app.post("/job_status", openapi_extra=body("job_status"))
    async def job_status(request: Request):
        body = await json_object(request)
        job = service(request).jobs.get(body.get("job"))
        if job is None:
            return _error(410, f"no training job {body.get('job')!r}")
        return {"job_status": _LS_JOB_STATUS.get(job.state, job.state), "error": job.error}

    @app.get("/versions", openapi_extra=query("project", "the project id"))
    async def versions(request: Request):
        body = await json_object(request, optional=True)
        project = body.get("project") or request.query_params.get("project")
        s = service(request)
        if project is None:
            known = s.projects.ids()
            if len(known) != 1:
                raise RequestError("say which project: JSON body {\"project\": ...} or ?project=<id>", status=400)
            project = known[0]
        pid = _pid(project)
        manifests = await run_in_threadpool(s.serving.versions, pid)
        return {
            "versions": [mf["version"] for mf in manifests],
            "model_version": await run_in_threadpool(s.serving.model_version, pid),
            "project": pid,
            "details": [version_summary(mf) for mf in manifests],
            "jobs": s.jobs.status(pid),
        }

    # -- ours -------------------------------------------------------------------------------------------
    @app.get("/projects/{project}/jobs")
    async def project_jobs(project: str, request: Request):
        pid, s = _pid(project), service(request)
        return {
            "project": pid,
            **s.jobs.status(pid),
            "jobs": [j.to_dict() for j in s.jobs.jobs(pid)],
            "background": s.writer.records(pid),
            "model_version": await run_in_threadpool(s.serving.model_version, pid),
        }

    @app.get("/projects/{project}/params")
    async def get_params(project: str, request: Request):
        pid, s = _pid(project), service(request)
        state = s.projects.state(pid)
        if state is None:
            raise NotFound(f"project {pid} is not set up (no /setup yet)")
        return params_answer(pid, state.params)

    @app.put("/projects/{project}/params", openapi_extra=body("params", required=False))
    async def put_params(project: str, request: Request):
        pid, body = _pid(project), await json_object(request, optional=True)
        explicit = await run_in_threadpool(service(request).set_params, pid, body)
        return params_answer(pid, explicit)

    @app.get("/projects/{project}/auto-accept")
    async def auto_accept(project: str, request: Request):
        pid, s = _pid(project), service(request)
        if s.projects.state(pid) is None:
            raise NotFound(f"project {pid} is not set up (no /setup yet)")
        return await run_in_threadpool(auto_accept_summary, s, pid)

    @app.post("/projects/{project}/rollback", openapi_extra=body("rollback"))
    async def rollback(project: str, request: Request):
        pid = _pid(project)
        vid = (await json_object(request)).get("version")
        if not isinstance(vid, str) or not vid:
            raise RequestError('body must be {"version": "<model version>"}')
        await run_in_threadpool(service(request).rollback, pid, vid)
        return {"project": pid, "model_version": vid}

    @app.get("/projects/{project}/versions/{vid}/confusion.png")
    async def project_confusion(project: str, vid: str, request: Request):
        path = await run_in_threadpool(service(request).serving.confusion_png, _pid(project), vid)
        return FileResponse(path, media_type="image/png")

    @app.get("/versions/{vid}/confusion.png", openapi_extra=query("project", "the project id"))
    async def confusion(vid: str, request: Request):
        s = service(request)
        project = request.query_params.get("project")
        if project is None:
            owners = [p for p in s.projects.ids() if any(mf["version"] == vid for mf in s.serving.versions(p))]
            if len(owners) != 1:
                raise (NotFound(f"no model version {vid!r}") if not owners else RequestError(
                    f"several projects have a version {vid!r}; add ?project=<id>", status=400))
            project = owners[0]
        path = await run_in_threadpool(s.serving.confusion_png, _pid(project), vid)
        return FileResponse(path, media_type="image/png")

    @app.get("/metrics", response_class=HTMLResponse, openapi_extra=query("project", "only this project"))
    async def metrics(request: Request):
        s = service(request)
        only = request.query_params.get("project")
        projects = [_pid(only)] if only else s.projects.ids()
        return HTMLResponse(await run_in_threadpool(metrics_page, s, projects))

    return app
