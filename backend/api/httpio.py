"""Request plumbing shared by the routes: the `Backend` of a request, project references, the JSON body
reader and the webhook secret (the login is api/login.py's, Host and Origin api/guards.py's)."""

from __future__ import annotations

import json
import secrets

from fastapi import Request

from backend.errors import RequestError
from backend.projects.registry import project_id
from lsproto.project import WEBHOOK_SECRET_HEADER

DEFAULT_MAX_BODY = 64 * 2**20


def backend_of(request: Request):
    """The `Backend` (service.py) that `create_app` put on the app."""
    return request.app.state.backend


def project_param(value) -> str:
    """The project id of a project reference from a path, query or body (RequestError 400 if it is none)."""
    return project_id(value, status=400)[0]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to pass `limit` bytes: by its
    Content-Length before reading, else while it streams in, so an oversized body is never held."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(f"request body is over the {limit}-byte limit ({declared} bytes)", status=413)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise RequestError(f"request body is over the {limit}-byte limit", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: Request, *, optional: bool = False) -> dict:
    """The request body as a JSON object; RequestError 400 for anything else. A POST must say
    `Content-Type: application/json` (415 otherwise; PUT and PATCH too): a form on another site can send a body but
    not that header, so no cross-site form can make the backend change anything."""
    if request.method in ("POST", "PUT", "PATCH"):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise RequestError(
                f"send the body as JSON with Content-Type: application/json (got {kind or 'none'})", status=415
            )
    raw = await read_body(request, getattr(request.app.state.settings, "max_body_bytes", DEFAULT_MAX_BODY))
    if not raw.strip():
        if optional:
            return {}
        raise RequestError("request body is empty; expected a JSON object", status=400)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"request body is not valid JSON ({exc})", status=400) from None
    except RecursionError:
        raise RequestError("request body is nested too deeply", status=400) from None
    if not isinstance(body, dict):
        raise RequestError(f"request body must be a JSON object, got {type(body).__name__}", status=400)
    return body


def check_webhook_secret(request: Request, secret: str | None) -> None:
    """RequestError 403 unless the request carries the shared webhook secret (when one is set)."""
    if not secret:
        return
    given = request.headers.get(WEBHOOK_SECRET_HEADER, "")
    if not secrets.compare_digest(given.encode(), secret.encode()):
        raise RequestError(f"webhook refused: missing or wrong {WEBHOOK_SECRET_HEADER} header", status=403)
