"""The login, when one is configured (TASVEER_SECRET or TASVEER_BASIC_AUTH_*): `login_gate` lets a
request through with HTTP basic auth or the login cookie, and answers 401 otherwise (`/health` and
`/` aside with TASVEER_OPEN_HEALTH=1). A GET carrying `?token=` (the printed model-page link)
exchanges it for the cookie (HttpOnly, SameSite=Strict, a week; api/logintoken.py) and goes on to
the same URL without the token; `GET /logout` ends the browser's login. The access log never shows
a token (`RedactToken`)."""

from __future__ import annotations

import base64
import binascii
import html
import logging
import re
import secrets
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from backend.api.logintoken import (
    SESSION_SECONDS,
    TOKEN_PARAM,
    cookie_name,
    login_key,
    session_ok,
    session_value,
    token_ok,
)
from config.env import SECRET_USER

OPEN_PATHS = ("/health", "/")
REALM = 'Basic realm="tasveer", charset="UTF-8"'
router = APIRouter()


def accepted_pairs(settings) -> list[tuple[str, str]]:
    """The basic-auth (user, password) pairs the backend accepts: the configured pair and the secret's."""
    pairs = [(settings.basic_auth_user, settings.basic_auth_password)] if settings.basic_auth_user else []
    return pairs + ([(SECRET_USER, settings.secret)] if settings.secret else [])


def basic_ok(request: Request, pairs: list[tuple[str, str]]) -> bool:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    ok = False
    for want_user, want_password in pairs:  # every pair compared: the time tells nothing
        ok |= secrets.compare_digest(user.encode(), want_user.encode()) & secrets.compare_digest(
            password.encode(), want_password.encode()
        )
    return ok


def port_of(request: Request) -> int:
    return request.url.port or (443 if request.url.scheme == "https" else 80)


def cookie_ok(request: Request, key: str) -> bool:
    value = request.cookies.get(cookie_name(port_of(request)))
    return value is not None and session_ok(key, value)


def refuse(request: Request, why: str = "login required") -> JSONResponse | HTMLResponse:
    """401 with a basic-auth challenge; a browser's page load gets a page saying how to log in instead
    (no challenge: the browser's password dialog would hide that page, and the link is the way in)."""
    how = (
        "open the model-page link that `tasveer up` printed (it logs this browser in), or log in as user "
        f"{SECRET_USER} with the backend's secret (TASVEER_SECRET, kept in tasveer-up.json)"
    )
    if "text/html" in request.headers.get("accept", ""):
        body = (
            f"<!doctype html><title>tasveer: {html.escape(why)}</title><h1>{html.escape(why)}</h1>"
            f"<p>{html.escape(how)}</p>"
        )
        return HTMLResponse(body, status_code=401, headers={"Cache-Control": "no-store"})
    return JSONResponse(
        {"error": f"{why}: {how}"}, status_code=401, headers={"WWW-Authenticate": REALM, "Cache-Control": "no-store"}
    )


def without_token(request: Request) -> str:
    """The request's path and query without the token, as a same-origin relative URL."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_PARAM]
    path = "/" + request.url.path.lstrip("/")  # never "//host": that would leave the origin
    return path + (f"?{urlencode(query)}" if query else "")


def exchange(request: Request, key: str) -> Response:
    """The login link: a good token gives the cookie and a page that goes on to the URL without the
    token (a page, not a redirect: a SameSite=Strict cookie set during a redirect that another site
    started is not sent on its next hop); a bad one is a 401."""
    if not token_ok(key, request.query_params.get(TOKEN_PARAM, "")):
        return refuse(request, "this login link is not valid (the backend's secret changed?)")
    target = html.escape(without_token(request), quote=True)
    body = (
        f"<!doctype html><meta http-equiv='refresh' content='0; url={target}'><title>tasveer: logged in</title>"
        f"<p>Logged in. <a href='{target}'>Continue</a></p>"
    )
    response = HTMLResponse(body, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    response.set_cookie(
        cookie_name(port_of(request)),
        session_value(key),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def login_gate(settings):
    """The login middleware, or None when no login is configured (the backend then listens on
    loopback only: api/guards.py `check_listen`)."""
    pairs, key = accepted_pairs(settings), login_key(settings.secret, settings.basic_auth_password)
    if not pairs or key is None:
        return None
    open_paths = OPEN_PATHS if settings.open_health else ()

    async def check(request: Request, call_next):
        if request.method in ("GET", "HEAD"):
            if TOKEN_PARAM in request.query_params:
                return exchange(request, key)
            if request.url.path in open_paths:
                return await call_next(request)
        if basic_ok(request, pairs) or cookie_ok(request, key):
            return await call_next(request)
        return refuse(request)

    return check


@router.get("/logout", response_class=HTMLResponse)
def logout(request: Request):
    """Ends this browser's login (its cookie); basic auth the browser remembers stays until it is closed."""
    response = HTMLResponse(
        "<!doctype html><title>tasveer: logged out</title><p>Logged out.</p>", headers={"Cache-Control": "no-store"}
    )
    response.delete_cookie(
        cookie_name(port_of(request)), path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


TOKEN_IN_URL = re.compile(rf"([?&]{TOKEN_PARAM}=)[^&\s]*")


class RedactToken(logging.Filter):
    """Hides a login token in uvicorn's access log lines (their third argument is the path with query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and TOKEN_PARAM in args[2]:
            record.args = (*args[:2], TOKEN_IN_URL.sub(r"\1…", args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    """Adds `RedactToken` to uvicorn's access logger, once per process."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactToken) for f in access.filters):
        access.addFilter(RedactToken())
