"""Authentication towards Label Studio.

Two kinds of token reach the backend (from `/setup` or `LABEL_STUDIO_API_KEY`):

* a legacy API token: sent as `Authorization: Token <t>`;
* a personal access token (a JWT *refresh* token): exchanged at `<ls>/api/token/refresh/`
  (`{"refresh": pat}` -> `{"access": jwt}`) for a short-lived access token sent as
  `Authorization: Bearer <access>`. The access token is renewed shortly before its `exp`, and
  whenever Label Studio answers 401 (`LSAuth.refresh()`, called once by the caller, then retry).
"""
from __future__ import annotations

import base64
import json
import threading
import time

import requests

# Renew the access token this many seconds before it expires.
_EXPIRY_MARGIN = 30.0


class AuthError(RuntimeError):
    """Label Studio refused the token (or the exchange of a personal access token)."""


def _jwt_payload(token: str) -> dict | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def is_personal_access_token(token: str) -> bool:
    """A PAT is a JWT; legacy tokens are 40 hex/alnum characters without dots."""
    return _jwt_payload(token) is not None


class LSAuth:
    """Authorization headers for one Label Studio instance and token. Thread-safe."""

    def __init__(self, base_url: str, token: str | None, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.kind = "none" if not token else ("pat" if is_personal_access_token(token) else "legacy")
        self._access: str | None = None
        self._access_exp: float = 0.0
        self._lock = threading.Lock()
        self.exchanges = 0  # how many times the PAT was exchanged (for tests and logs)

    def headers(self) -> dict[str, str]:
        if self.kind == "none":
            return {}
        if self.kind == "legacy":
            return {"Authorization": f"Token {self.token}"}
        with self._lock:
            if self._access is None or time.time() > self._access_exp - _EXPIRY_MARGIN:
                self._exchange_locked()
            return {"Authorization": f"Bearer {self._access}"}

    def refresh(self) -> bool:
        """After a 401: get a new access token. Returns False when there is nothing to refresh."""
        if self.kind != "pat":
            return False
        with self._lock:
            self._exchange_locked()
        return True

    def _exchange_locked(self) -> None:
        url = f"{self.base_url}/api/token/refresh/"
        try:
            resp = requests.post(url, json={"refresh": self.token}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise AuthError(f"cannot exchange the personal access token at {url}: {exc}") from exc
        if resp.status_code != 200:
            raise AuthError(
                f"Label Studio refused the personal access token at {url}: HTTP {resp.status_code} "
                f"{resp.text[:200]}"
            )
        try:
            access = resp.json()["access"]
        except (ValueError, KeyError, TypeError):
            raise AuthError(f"unexpected answer from {url}: {resp.text[:200]}") from None
        payload = _jwt_payload(access) or {}
        exp = payload.get("exp")
        self._access = access
        self._access_exp = float(exp) if isinstance(exp, (int, float)) else time.time() + 300
        self.exchanges += 1
