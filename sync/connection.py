"""Connecting the CLI to Label Studio: the one client (lsclient/) after checks that end in a
readable, user-facing `ConnectionProblem` (no server, no token, a token Label Studio refuses)."""

from __future__ import annotations

from lsclient import LabelStudioError, open_client
from lsproto.tokens import LSAuth


class ConnectionProblem(RuntimeError):
    """Label Studio is unreachable or refuses the token (an expected, user-facing failure)."""


def make_client(url: str, token: str, *, timeout: float = 120.0):
    """An lsclient `LabelStudioClient` (the label-studio-sdk client plus tasveer's operations)
    after checking that `url` answers and accepts `token` (legacy token or personal access token)."""
    url = url.rstrip("/")
    client = open_client(LSAuth(url, token or None), timeout=timeout)
    try:
        client.health()
    except LabelStudioError as exc:
        raise ConnectionProblem(
            f"Label Studio is not reachable at {url} ({exc}); is it running? (`tasveer up`)"
        ) from None
    if not token:
        raise ConnectionProblem("no Label Studio token: pass --token or set LABEL_STUDIO_API_KEY")
    try:
        client.whoami()
    except LabelStudioError as exc:
        if exc.status in (401, 403):
            raise ConnectionProblem(
                f"Label Studio at {url} rejected the token (HTTP {exc.status}); check --token / LABEL_STUDIO_API_KEY"
            ) from None
        if exc.status is None:  # a personal access token that cannot be exchanged
            raise ConnectionProblem(f"Label Studio rejected the token: {exc}") from None
        raise ConnectionProblem(f"Label Studio at {url} answered HTTP {exc.status} to whoami") from None
    return client
