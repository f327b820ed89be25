"""Who may reach the backend at all, before any route runs (`RequestGuard`, the outermost middleware):

* the `Host` header must name loopback (`localhost`, `127.0.0.1`, `::1`), the address it listens on
  (TASVEER_HOST) or a TASVEER_PUBLIC_HOSTS entry: a DNS-rebinding page names its own domain, and is
  answered 421 (a missing or malformed Host: 400);
* a request that can change something (not GET/HEAD/OPTIONS) from a browser must come from this
  origin: a cross-origin `Origin` (or `null`) or `Sec-Fetch-Site: cross-site/same-site` is a 403;
* every answer says it may not be framed or sniffed; HTML pages get a Content-Security-Policy that
  loads nothing from elsewhere (`frame-ancestors 'none'`: the buttons cannot be clickjacked).

`check_listen`: without a login configured the backend may listen on loopback only.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from backend.errors import quoted
from backend.ui.html import style_sources
from config.spec import SettingsError

LOOPBACK_NAMES = ("localhost",)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# no inline script runs: the pages' one script is /static/page.js (ui/static), and their <style>
# elements are allowed by hash (ui/html.py); nothing else loads, no form or fetch leaves this origin, no
# <base> moves links, and no other site may frame the page
PAGE_POLICY = (
    f"default-src 'none'; script-src 'self'; style-src {style_sources()}; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
IMAGE_POLICY = "frame-ancestors 'none'"
ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def split_host(value: str) -> tuple[str, int | None] | None:
    """(name, port) of a Host header or TASVEER_PUBLIC_HOSTS entry (lower-cased, IPv6 without
    brackets); None when it is not one."""
    value = value.strip().lower()
    if not value or any(c in value for c in "/@?# \t\\"):
        return None
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    elif ":" in value:  # a bare IPv6 address (a listen address), no port
        name, port = value, ""
    else:
        name, port = value, ""
    if not name or port is None or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        return None
    return name.rstrip("."), int(port) if port else None


def is_loopback(name: str) -> bool:
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_hosts(settings) -> list[tuple[str, int | None]]:
    """(name, port or None for any) of the names the backend answers to, besides loopback's."""
    entries = [split_host(h) for h in (settings.host, *settings.public_hosts)]
    return [e for e in entries if e is not None]


def host_refusal(host: str | None, allowed: list[tuple[str, int | None]]) -> tuple[int, str] | None:
    """(status, message) when the Host header is not one the backend answers to."""
    parsed = split_host(host) if host else None
    if parsed is None:
        return 400, f"missing or malformed Host header {quoted(host or '', 100)}"
    name, port = parsed
    if is_loopback(name) or any(name == n and (p is None or p == port) for n, p in allowed):
        return None
    return 421, (
        f"this backend does not answer to the host {quoted(name, 100)}; add it to TASVEER_PUBLIC_HOSTS "
        "if people or Label Studio reach the backend by that name"
    )


def same_origin(origin: str, host: str) -> bool:
    """Whether `Origin` names the host (and port) the request was sent to."""
    try:
        parts = urlsplit(origin)
        default = {"http": 80, "https": 443}.get(parts.scheme)
        origin_port = parts.port or default
    except ValueError:
        return False
    target = split_host(host)
    if default is None or not parts.hostname or target is None:
        return False
    # a Host without a port is the scheme's default port (a proxy on 443 in front of the backend)
    return parts.hostname.lower() == target[0] and origin_port == (target[1] or default)


def origin_refusal(method: str, headers: Headers) -> tuple[int, str] | None:
    """(403, message) for a browser's state-changing request started by another origin."""
    if method in SAFE_METHODS:
        return None
    origin, fetch_site = headers.get("origin"), headers.get("sec-fetch-site", "")
    if (origin is not None and not same_origin(origin, headers.get("host", ""))) or fetch_site in (
        "cross-site",
        "same-site",
    ):
        return 403, f"cross-origin request refused (Origin {quoted(origin or fetch_site, 100)})"
    return None


def policy_for(content_type: str) -> bytes:
    kind = content_type.split(";")[0].strip().lower()
    if kind == "text/html":
        return PAGE_POLICY.encode()
    return (IMAGE_POLICY if kind.startswith("image/") else DATA_POLICY).encode()


class RequestGuard:
    """ASGI middleware: Host and Origin checked before anything else runs; security headers added."""

    def __init__(self, app, settings):
        self.app = app
        self.allowed = allowed_hosts(settings)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        refusal = host_refusal(headers.get("host"), self.allowed) or origin_refusal(scope["method"], headers)
        if refusal is not None:
            status, message = refusal
            return await JSONResponse({"error": message}, status_code=status)(scope, receive, _secured(send))
        await self.app(scope, receive, _secured(send))


def _secured(send):
    async def send_secured(message):
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(n, v) for n, v in ALWAYS if n not in present]
            if b"content-security-policy" not in present:
                content_type = dict(message.get("headers", [])).get(b"content-type", b"").decode("latin-1")
                extra.append((b"content-security-policy", policy_for(content_type)))
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return send_secured


def check_listen(settings) -> None:
    """SettingsError when the backend would listen beyond loopback with no login configured."""
    parsed = split_host(settings.host or "")
    if settings.basic_auth is None and not (parsed and is_loopback(parsed[0])):
        raise SettingsError(
            f"TASVEER_HOST={settings.host} would let anyone on the network use the backend: set "
            "TASVEER_SECRET (or TASVEER_BASIC_AUTH_USER and _PASSWORD) to require a login, or "
            "listen on 127.0.0.1"
        )
