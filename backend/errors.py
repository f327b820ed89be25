"""Errors the routes turn into HTTP answers (anything else is a 500 with a generic message), and how
an answer quotes what it received: never more than about QUOTE characters of it."""

from __future__ import annotations

QUOTE = 200  # characters of a received value an answer may repeat
MESSAGE = 400  # an error message longer than this is cut in its middle (api/app.py's handlers)


def quoted(value, limit: int = QUOTE) -> str:
    """repr(value), cut to `limit` characters with the length of what was left out."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def clipped(message: str, limit: int = MESSAGE) -> str:
    """`message` when short; else its start and end around a note of how much was cut, so that an
    error echoing a large input (training/params.py's `got ...`) still names the field and its rule."""
    if len(message) <= limit:
        return message
    head, tail = limit * 2 // 5, limit // 5
    return f"{message[:head]} … ({len(message) - head - tail} characters cut) … {message[-tail:]}"


class RequestError(ValueError):
    """Bad input from the caller. `status` is the HTTP code to answer (4xx)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class NotFound(RequestError):
    def __init__(self, message: str):
        super().__init__(message, status=404)
