"""Connecting to Label Studio: an SDK client with readable errors, and raw HTTP through its auth."""
from __future__ import annotations

import requests


class ConnectionProblem(RuntimeError):
    """Label Studio is unreachable or refuses the token (an expected, user-facing failure)."""


def make_client(url: str, token: str, *, timeout: float = 120.0):
    """A label_studio_sdk client after checking that `url` answers and accepts `token`
    (legacy token or personal access token)."""
    from label_studio_sdk import LabelStudio

    url = url.rstrip("/")
    try:
        requests.get(f"{url}/health", timeout=10)
    except requests.RequestException as exc:
        raise ConnectionProblem(f"Label Studio is not reachable at {url} ({type(exc).__name__}); "
                                f"is it running? (`tasveer up`)") from None
    if not token:
        raise ConnectionProblem("no Label Studio token: pass --token or set LABEL_STUDIO_API_KEY")
    try:
        client = LabelStudio(base_url=url, api_key=token, timeout=timeout)
        headers = client._client_wrapper.get_headers()
    except Exception as exc:  # a PAT that cannot be refreshed fails here
        raise ConnectionProblem(f"Label Studio rejected the token: {exc}") from None
    resp = requests.get(f"{url}/api/current-user/whoami", headers=_auth_only(headers), timeout=10)
    if resp.status_code in (401, 403):
        raise ConnectionProblem(f"Label Studio at {url} rejected the token (HTTP {resp.status_code}); "
                                f"check --token / LABEL_STUDIO_API_KEY")
    if resp.status_code != 200:
        raise ConnectionProblem(f"Label Studio at {url} answered HTTP {resp.status_code} to whoami")
    return client


def _auth_only(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k.lower() in ("authorization", "x-api-key")}


def base_url(client) -> str:
    return client._client_wrapper.get_base_url().rstrip("/")


def auth_headers(client) -> dict[str, str]:
    """The Authorization header the SDK client would send now (refreshes a PAT's access JWT)."""
    return _auth_only(client._client_wrapper.get_headers())
