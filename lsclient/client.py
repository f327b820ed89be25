"""`LabelStudioClient`: the label-studio-sdk client (every SDK call stays available: `.projects`,
`.ml`, `.webhooks`, ...) plus the operations tasveer does, each written once for backend/ and sync/.
This module only builds it; the operations live in one mixin per job, which it inherits:
people.py (users, annotations), views.py (data-manager tabs), predictions.py (predictions and
their notes), projects.py (project settings, actions), examples.py (training examples), raw.py
(raw HTTP, for what the SDK lacks or does slower).

* The SDK's own token handling (it exchanges a personal access token but never renews it after a
  401) is bypassed: it gets `SDK_KEY`, a placeholder, and transport.TokenAuth sets the real header
  on every request. Its retries are off (`max_retries=0`): transport.RetryingTransport retries
  every call, SDK or raw, the same way.
* Every operation raises `LabelStudioError` (naming the call) for an HTTP error (sdkcall.py); an
  SDK call made directly on the client raises the SDK's `ApiError` for one, as the SDK does.
"""

from __future__ import annotations

import httpx
from label_studio_sdk import LabelStudio

from lsproto.tokens import LSAuth

from .examples import Example, ExampleCalls
from .people import PeopleCalls
from .predictions import PredictionCalls
from .projects import ProjectCalls
from .raw import RawCalls
from .sdkcall import sdk_call
from .transport import RetryingTransport, http_client
from .views import ViewCalls

__all__ = ["SDK_KEY", "Example", "LabelStudioClient", "sdk_call"]

SDK_KEY = "tasveer-token-auth"  # what the SDK is given as api_key: never sent (TokenAuth replaces it)


class LabelStudioClient(ExampleCalls, PredictionCalls, RawCalls, PeopleCalls, ViewCalls, ProjectCalls, LabelStudio):
    """One Label Studio and one token (`auth`); thread-safe, one connection pool.

    The bases are in an order Python can linearize: ExampleCalls and PredictionCalls build on
    RawCalls, ExampleCalls also on PeopleCalls, so those come before the mixins they build on."""

    def __init__(self, auth: LSAuth, *, timeout: float = 30.0):
        self.auth = auth
        self.base_url = auth.base_url
        self.timeout = timeout
        self.transport = RetryingTransport(httpx.HTTPTransport())
        self.http = http_client(auth, timeout, self.transport)
        super().__init__(
            base_url=auth.base_url, api_key=SDK_KEY, httpx_client=self.http, timeout=timeout, max_retries=0
        )
