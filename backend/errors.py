"""Errors the routes turn into HTTP answers (anything else is a 500 with a generic message)."""
from __future__ import annotations


class RequestError(ValueError):
    """Bad input from the caller. `status` is the HTTP code to answer (4xx)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class NotFound(RequestError):
    def __init__(self, message: str):
        super().__init__(message, status=404)
