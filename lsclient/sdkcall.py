"""`sdk_call`: how an SDK call inside a tasveer operation reports an HTTP error. Every mixin of
`LabelStudioClient` wraps its SDK calls in it, so a failed operation raises `LabelStudioError`
naming the call, like a raw one (raw.py), instead of the SDK's `ApiError`."""

from __future__ import annotations

import json
from contextlib import contextmanager

from label_studio_sdk.core.api_error import ApiError

from .errors import LabelStudioError


@contextmanager
def sdk_call(what: str):
    """An SDK call whose HTTP error becomes a LabelStudioError naming `what` (method and path)."""
    try:
        yield
    except ApiError as exc:
        body = exc.body if isinstance(exc.body, str) else json.dumps(exc.body, default=str)
        raise LabelStudioError(f"{what}: HTTP {exc.status_code} {body[:300]}", status=exc.status_code) from None
