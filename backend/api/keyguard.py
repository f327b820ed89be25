"""Who may call `POST /projects/<id>/classify`, who may make a project's API key, and who moved
production (the history's "by").

`/classify` takes, like the rest of the backend, the login when one is configured (api/login.py:
basic auth or its cookie), or the project's API key (`Authorization: Bearer <key>` or `X-API-Key:
<key>`; projects/apikeys.py). A request carrying a key skips the login (`key_or_basic`) and is
judged by the key alone. With neither configured, `/classify` answers only clients on this machine
(loopback).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re

from fastapi import Request

from backend.api.login import accepted_pairs
from backend.errors import RequestError
from backend.projects.apikeys import ApiKeys

CLASSIFY_PATH = re.compile(r"^/projects/[^/]+/classify/?$")
USER_HEADER = "X-Tasveer-User"  # `tasveer deploy` sends the OS user it runs as
HOW = (
    "make an API key with `tasveer deploy --new-key --project {pid}` (or “new API key” on the model page) and "
    "send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`, or configure a login (TASVEER_SECRET, "
    "or TASVEER_BASIC_AUTH_USER and TASVEER_BASIC_AUTH_PASSWORD)"
)


def login_configured(request: Request) -> bool:
    """Whether the login middleware guards the app (so a request that reached a route passed it)."""
    return bool(accepted_pairs(request.app.state.settings))


def given_key(request: Request) -> str | None:
    """The API key the request carries (Bearer or X-API-Key), or None."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    key = request.headers.get("x-api-key")
    return None if key is None else key.strip()


def is_loopback(request: Request) -> bool:
    try:
        address = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def key_or_basic(basic_check):
    """Wraps the login middleware: a `/classify` request carrying an API key goes on to the route,
    which checks the key (`check_classify`); every other request meets the login."""

    async def check(request: Request, call_next):
        if CLASSIFY_PATH.match(request.url.path) and given_key(request) is not None:
            return await call_next(request)
        return await basic_check(request, call_next)

    return check


def check_classify(request: Request, keys: ApiKeys, pid: str) -> None:
    """RequestError 401 or 403 unless the request may classify with the project's models."""
    key = given_key(request)
    if key is not None:
        if key and keys.matches(pid, key):
            return
        raise RequestError(f"wrong API key for project {pid}", status=401)
    if login_configured(request):
        return  # the login middleware let it in
    if keys.has(pid):
        raise RequestError(
            f"project {pid} requires its API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`", status=401
        )
    if is_loopback(request):
        return
    raise RequestError(
        "no credentials are configured, so /classify answers only on this machine (loopback); " + HOW.format(pid=pid),
        status=403,
    )


def check_key_maker(request: Request) -> None:
    """Making an API key needs the login (the middleware checked it) or a client on this machine."""
    if not login_configured(request) and not is_loopback(request):
        raise RequestError(
            "an API key can be made from this machine only (loopback), or from anywhere with a "
            "login: set TASVEER_SECRET (or TASVEER_BASIC_AUTH_USER and _PASSWORD)",
            status=403,
        )


def basic_user(request: Request) -> str | None:
    """The basic-auth user name of the request (only meaningful when the middleware checked it)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        return base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")[0] or None
    except (binascii.Error, UnicodeDecodeError):
        return None


def deployer(request: Request, via: str | None = None) -> tuple[str, str]:
    """(by, via) of a production move: by = the basic-auth user, else the OS user `tasveer deploy`
    names in X-Tasveer-User, else `via`; via = `via`, else "cli" with that header, else "api"."""
    os_user = "".join(c for c in request.headers.get(USER_HEADER, "") if c.isprintable())[:64].strip()
    via = via or ("cli" if os_user else "api")
    return (basic_user(request) if login_configured(request) else None) or os_user or via, via
