"""The login link's token and the login cookie's value, both made from the backend's key
(TASVEER_SECRET, else the basic-auth password): pure functions, no HTTP, so that `tasveer up`
prints the same link the backend accepts.

* the link token: HMAC(key, "login link"); it works until the key changes (like Jupyter's token),
  and only as `?token=` on a GET, which exchanges it for the cookie (api/login.py);
* the cookie: "<expiry>.<HMAC(key, "session <expiry>")>", good for SESSION_SECONDS. Nothing is kept
  on the server: every replica accepts it, a restart keeps it, a new key ends every session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

SESSION_SECONDS = 7 * 24 * 3600  # a login lasts a week, then the link (or basic auth) is needed again
TOKEN_PARAM = "token"


def _mac(key: str, message: str) -> str:
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def login_key(secret: str | None, basic_auth_password: str | None) -> str | None:
    """The key links and cookies are made with; None when no login is configured."""
    return secret or basic_auth_password or None


def link_token(key: str) -> str:
    """The `?token=` of the printed links."""
    return _mac(key, "tasveer login link")


def token_ok(key: str, given: str) -> bool:
    return hmac.compare_digest(link_token(key).encode(), given.encode())


def session_value(key: str, now: float | None = None) -> str:
    expiry = int((time.time() if now is None else now) + SESSION_SECONDS)
    return f"{expiry}.{_mac(key, f'session {expiry}')}"


def session_ok(key: str, value: str, now: float | None = None) -> bool:
    """Whether a cookie value was made with `key` and has not expired."""
    expiry, _, mac = value.partition(".")
    if not expiry.isdigit() or len(expiry) > 12:
        return False
    if not hmac.compare_digest(_mac(key, f"session {expiry}").encode(), mac.encode()):
        return False
    return int(expiry) > (time.time() if now is None else now)


def cookie_name(port: int) -> str:
    """One cookie per port: browsers share cookies between the ports of a host, and two backends on
    one machine must not log each other out."""
    return f"tasveer_login_{port}"


def page_link(backend_url: str, project: int | str, key: str | None) -> str:
    """The model page's URL, with the login token when a login is configured."""
    url = f"{backend_url.rstrip('/')}/projects/{project}/page"
    return f"{url}?{TOKEN_PARAM}={link_token(key)}" if key else url
