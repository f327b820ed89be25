"""Label Studio API tokens: which kind a token is, the header it goes in, the PAT exchange.

* legacy token (40 characters, no dots): `Authorization: Token <t>`; Label Studio accepts it only
  when the organization has legacy tokens enabled (`LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true`).
* personal access token (PAT): a JWT *refresh* token (`token_type: refresh`). It is not sent as
  it is: `POST <ls>/api/token/refresh/ {"refresh": pat}` -> `{"access": jwt}`, and the access JWT
  (`token_type: access`, valid a few minutes) goes in `Authorization: Bearer <access>`.
* an access JWT given directly: `Authorization: Bearer <t>` until it expires.

`LSAuth` keeps one token's headers for one Label Studio origin, renewing the access JWT shortly
before its `exp` and after a 401. A token is only ever sent to the origin it came with: callers
check `urls.same_origin(url, auth.base_url)` before adding `auth.headers()` to a request.
"""

from __future__ import annotations

import base64
import json
import threading
import time

import requests

LEGACY, PAT, ACCESS, NONE = "legacy", "pat", "access", "none"
EXPIRY_MARGIN = 30.0  # renew an access JWT this many seconds before it expires


class TokenError(RuntimeError):
    """Label Studio refused a token, or its exchange failed; the message says which and why."""


def jwt_payload(token: str) -> dict | None:
    """The (unverified) payload of a JWT, or None when `token` is not one."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode((parts[1] + "=" * (-len(parts[1]) % 4)).encode()))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def token_kind(token: str | None) -> str:
    if not token:
        return NONE
    payload = jwt_payload(token)
    if payload is None:
        return LEGACY
    return ACCESS if payload.get("token_type") == "access" else PAT


def auth_header(token: str) -> dict[str, str]:
    """The header for a legacy token or an access JWT (a PAT must be exchanged first)."""
    kind = token_kind(token)
    if kind == PAT:
        raise TokenError("a personal access token must be exchanged for an access token first")
    return {"Authorization": f"Bearer {token}"} if kind == ACCESS else {"Authorization": f"Token {token}"}


def exchange_personal_access_token(base_url: str, pat: str, timeout: float = 10.0) -> tuple[str, float]:
    """(access JWT, its expiry as a Unix time) for a PAT, from `<base_url>/api/token/refresh/`."""
    url = f"{base_url.rstrip('/')}/api/token/refresh/"
    try:
        resp = requests.post(url, json={"refresh": pat}, timeout=timeout)
    except requests.RequestException as exc:
        raise TokenError(f"cannot reach {url} to exchange the personal access token ({type(exc).__name__})") from None
    if resp.status_code != 200:
        raise TokenError(f"Label Studio refused the personal access token at {url}: HTTP {resp.status_code}")
    try:
        access = resp.json()["access"]
    except (ValueError, KeyError, TypeError):
        raise TokenError(f"unexpected answer from {url} (no access token)") from None
    exp = (jwt_payload(access) or {}).get("exp")
    return access, float(exp) if isinstance(exp, (int, float)) else time.time() + 300


class LSAuth:
    """Authorization headers for one Label Studio origin and one token. Thread-safe."""

    def __init__(self, base_url: str, token: str | None, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.kind = token_kind(token)
        self._access: str | None = None
        self._access_exp = 0.0
        self._lock = threading.Lock()
        self.exchanges = 0  # how often the PAT was exchanged (tests and logs read it)

    def headers(self) -> dict[str, str]:
        if self.kind == NONE or not self.token:
            return {}
        if self.kind != PAT:
            return auth_header(self.token)
        with self._lock:
            if self._access is None or time.time() > self._access_exp - EXPIRY_MARGIN:
                self._exchange_locked()
            return {"Authorization": f"Bearer {self._access}"}

    def refresh(self) -> bool:
        """After a 401: get a new access JWT. False when there is nothing to refresh."""
        if self.kind != PAT:
            return False
        with self._lock:
            self._exchange_locked()
        return True

    def _exchange_locked(self) -> None:
        if not self.token:  # unreachable: a PAT is a token; this narrows the type for the call below
            raise TokenError("no personal access token to exchange")
        self._access, self._access_exp = exchange_personal_access_token(self.base_url, self.token, self.timeout)
        self.exchanges += 1
