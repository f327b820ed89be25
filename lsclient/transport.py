"""How every request of `lsclient` travels: the token's header, one renewal after a 401, retries.

* `TokenAuth` puts `LSAuth`'s header (lsproto/tokens.py: a legacy `Token`, or a personal access
  token's access JWT as `Bearer`) on each request; after a 401 it renews the access JWT once and
  sends the request again.
* `RetryingTransport` retries with backoff (`RETRY_WAITS`) while Label Studio is unreachable or
  answers 5xx (its SQLite says "database is locked" under concurrent writes). A request carrying
  the `SEND_ONCE` header (an upload: LS may have created the tasks before the answer was lost; the
  retrieve-predictions action, whose caller has its own deadline) is sent once; the header itself
  is taken off before it goes out (a header, not an httpx extension, because SDK calls can add
  headers through `request_options` but nothing else).
  When Label Studio stays unreachable the failure is a `LabelStudioError` naming the call.

The SDK's calls and `lsclient`'s raw ones share one `httpx.Client` built by `http_client`, so both
get the same rules, and each request sent (retries included) counts in the open `tally.counting()`
scopes of the code that sent it (what a refresh or a training reports as the Label Studio requests
it cost).
"""

from __future__ import annotations

import logging
import time

import httpx

from lsproto.tokens import LSAuth, TokenError

from .errors import LabelStudioError
from .tally import count_request

log = logging.getLogger(__name__)

RETRY_WAITS = (0.5, 1.0, 2.0, 4.0)  # seconds between tries of a failed Label Studio call
SEND_ONCE = "X-Tasveer-Send-Once"  # a request header (never sent): try this request once


class TokenAuth(httpx.Auth):
    """The Authorization header of one `LSAuth`, renewed once after a 401."""

    def __init__(self, auth: LSAuth):
        self.auth = auth

    def auth_flow(self, request: httpx.Request):
        self._sign(request)
        response = yield request
        if response.status_code == 401 and self._renewed(request):
            self._sign(request)
            yield request

    def _renewed(self, request: httpx.Request) -> bool:
        try:
            return self.auth.refresh()
        except TokenError as exc:
            raise LabelStudioError(f"{request.method} {request.url.path}: {exc}") from None

    def _sign(self, request: httpx.Request) -> None:
        try:
            headers = self.auth.headers()
        except TokenError as exc:
            raise LabelStudioError(f"{request.method} {request.url.path}: {exc}") from None
        request.headers.pop("Authorization", None)  # the SDK's own (see client.SDK_KEY)
        request.headers.update(headers)


def _failure(request: httpx.Request, exc: httpx.TransportError) -> LabelStudioError:
    kind = "Timeout" if isinstance(exc, httpx.TimeoutException) else "ConnectionError"
    url = request.url.copy_with(query=None)
    return LabelStudioError(f"{request.method} {url}: {kind} ({type(exc).__name__}: {exc})")


class RetryingTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, waits: tuple[float, ...] = RETRY_WAITS):
        self.inner = inner
        self.waits = waits

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.headers.pop(SEND_ONCE, None):  # remembered for a second send after a 401
            request.extensions[SEND_ONCE] = True
        waits = () if request.extensions.get(SEND_ONCE) else self.waits
        for wait in (*waits, None):
            count_request()  # every try reaches the wire: what Label Studio served
            try:
                response = self.inner.handle_request(request)
            except httpx.TransportError as exc:
                if wait is None:
                    raise _failure(request, exc) from None
                time.sleep(wait)
                continue
            if response.status_code >= 500 and wait is not None:
                response.close()
                log.warning(
                    "%s %s: HTTP %s, retrying in %.1f s", request.method, request.url.path, response.status_code, wait
                )
                time.sleep(wait)
                continue
            return response
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.inner.close()


def http_client(auth: LSAuth, timeout: float, transport: RetryingTransport | None = None) -> httpx.Client:
    """One connection pool for one Label Studio and token (thread-safe; redirects followed, as the
    SDK's own client and `requests` do)."""
    return httpx.Client(
        auth=TokenAuth(auth),
        transport=transport or RetryingTransport(httpx.HTTPTransport()),
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
    )
