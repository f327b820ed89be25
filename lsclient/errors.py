"""The one error every Label Studio call of `lsclient` raises (cheap to import: no SDK, no HTTP)."""

from __future__ import annotations


class LabelStudioError(RuntimeError):
    """A Label Studio call failed; the message names the call. `status` is the HTTP status Label
    Studio answered, or None when it was not reached (the message then says ConnectionError or
    Timeout) or the token could not be used."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status
