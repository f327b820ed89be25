"""`create_app`: the ML backend's FastAPI app. It builds the `Backend` (service.py), answers errors as
JSON, guards every request (api/guards.py: Host and Origin, security headers; api/login.py: the
login when one is configured) and includes the routers, each thin (parse the request, one call
into the `Backend` on `app.state`, shape the answer):

- protocol_routes.py: Label Studio's ML-backend protocol (/health /setup /predict /webhook /train
  /job_status /versions);
- project_routes.py: ours (jobs, params, auto-accept, rollback, confusion matrices, /metrics);
- deploy_routes.py: for applications (/classify, the production version, API keys, export zips);
- ui/routes.py: the model page and its data.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from backend.api.curation_routes import router as curation_router
from backend.api.deploy_routes import router as deploy_router
from backend.api.guards import RequestGuard, check_listen
from backend.api.keyguard import key_or_basic
from backend.api.login import REALM, login_gate, redact_access_log
from backend.api.login import router as login_router
from backend.api.project_routes import router as project_router
from backend.api.protocol_routes import router as protocol_router
from backend.api.similar_routes import router as similar_router
from backend.api.uploadcheck_routes import router as uploadcheck_router
from backend.errors import RequestError, clipped
from backend.service import Backend
from backend.settings import Settings
from backend.ui.routes import router as page_router
from lsclient import LabelStudioError

log = logging.getLogger(__name__)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _request_error(request: Request, exc: Exception):
    assert isinstance(exc, RequestError)  # registered for RequestError only
    given = getattr(exc, "fields", None)
    if given:  # bad training parameters, field by field (paramcheck.py)
        fields = {str(k)[:100]: clipped(str(v)) for k, v in list(given.items())[:50]}
        return JSONResponse({"error": clipped(str(exc)), "fields": fields}, status_code=exc.status)
    if exc.status == 401:  # (a wrong API key on /classify): every 401 names how to authenticate
        return JSONResponse({"error": clipped(str(exc))}, status_code=401, headers={"WWW-Authenticate": REALM})
    return _error(exc.status, clipped(str(exc)))


async def _label_studio_error(request: Request, exc: Exception):
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return _error(502, clipped(f"Label Studio: {exc}"))


async def _unexpected(request: Request, exc: Exception):
    ref = secrets.token_hex(4)  # the log has the traceback; the client gets no internals
    log.exception("%s %s failed (ref %s)", request.method, request.url.path, ref)
    return _error(500, f"internal error (ref {ref}; details in the backend log)")


@asynccontextmanager
async def _lifespan(app: FastAPI):
    yield
    app.state.backend.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    check_listen(settings)
    app = FastAPI(title="tasveer ML backend", lifespan=_lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.backend = Backend(settings, refresh_beside=True)
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(LabelStudioError, _label_studio_error)
    app.add_exception_handler(Exception, _unexpected)
    gate = login_gate(settings)
    if gate is not None:
        app.middleware("http")(key_or_basic(gate))  # /classify: the login or the project's API key
        redact_access_log()
    app.add_middleware(RequestGuard, settings=settings)  # added last: runs first, before any work
    app.include_router(login_router)
    app.include_router(page_router)
    app.include_router(protocol_router)
    app.include_router(project_router)
    app.include_router(deploy_router)
    app.include_router(curation_router)
    app.include_router(similar_router)
    app.include_router(uploadcheck_router)
    return app
