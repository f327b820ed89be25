"""Label Studio's ML-backend protocol (thin routes: parse the request, one call into the `Backend`,
answer JSON). Label Studio 1.23.2's side (label_studio/ml/api_connector.py, ml/models.py):

  GET  /health    any 200 JSON answer means "connected" (1 s timeout)
  POST /setup     {project: "<id>.<ts>", schema, hostname, access_token, extra_params}
                  -> {"model_version": ...} (3 s timeout; an HTTP error puts the backend in Error)
  POST /predict   {tasks: [task...], project, label_config, params: {login, password, context}}
                  -> {"results": [{result, score, model_version}, ...]} one per task, in order
  POST /webhook   {action, project: {...}, annotation|tasks|...} (1 s timeout, answer ignored)
  POST /train     older training trigger {annotations, project, label_config, params} -> {"job": id}
  POST /job_status {job} -> {"job_status": queued|started|finished|failed}; 410 for unknown jobs
  GET  /versions  (JSON body {project}) -> {"versions": [vid, ...]}

The routes with a body are `async` (the body is awaited); their call into the `Backend` blocks (disk,
Redis, Label Studio), so it runs in the thread pool.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from backend.api import answers
from backend.api.httpio import backend_of, check_webhook_secret, json_object, project_param
from backend.api.schema import body, query
from backend.api.webhooks import handle_webhook
from backend.errors import RequestError

router = APIRouter()


@router.get("/health")
@router.get("/")
async def health(request: Request):
    return {"status": "UP", "model_class": "tasveer"}


@router.post("/setup", openapi_extra=body("setup"))
async def setup(request: Request):
    data = await json_object(request)
    if "project" not in data or "schema" not in data:
        raise RequestError("setup needs 'project' and 'schema' (the labeling config)", status=400)
    vid = await run_in_threadpool(
        backend_of(request).setup,
        data["project"],
        data["schema"],
        data.get("hostname"),
        data.get("access_token"),
        data.get("extra_params"),
    )
    return {"model_version": vid}


@router.post("/predict", openapi_extra=body("predict"))
async def predict(request: Request):
    data = await json_object(request)
    if not isinstance(data.get("tasks"), list):
        raise RequestError("predict needs 'tasks': a list of task objects", status=400)
    results = await run_in_threadpool(
        backend_of(request).predictor.predict,
        data["tasks"],
        project=data.get("project"),
        label_config=data.get("label_config"),
    )
    return {"results": results}


@router.post("/webhook", openapi_extra=body("webhook"))
async def webhook(request: Request):
    check_webhook_secret(request, request.app.state.settings.webhook_secret)
    data = await json_object(request)
    action = data.get("action")
    if not isinstance(action, str) or not action:
        raise RequestError("webhook needs an 'action'", status=400)
    return await run_in_threadpool(handle_webhook, backend_of(request), action, data)


@router.post("/train", openapi_extra=body("train"))
async def train(request: Request):
    data = await json_object(request)
    pid = project_param(data.get("project"))
    label_config = data.get("label_config") if isinstance(data.get("label_config"), str) else None
    job = await run_in_threadpool(backend_of(request).train, pid, "train API", label_config)
    return {"job": job.id, "status": job.state}


@router.post("/job_status", openapi_extra=body("job_status"))
async def job_status(request: Request):
    data = await json_object(request)
    return await run_in_threadpool(answers.job_status, backend_of(request), data.get("job"))


@router.get("/versions", openapi_extra=query("project", "the project id"))
async def versions(request: Request):
    data = await json_object(request, optional=True)
    project = data.get("project") or request.query_params.get("project")
    pid = project_param(project) if project is not None else None
    return await run_in_threadpool(answers.versions, backend_of(request), pid)
