"""What one piece of work costs in Label Studio requests, when other threads share its client.

A training job and the refresh beside it (backend/writeback/refreshlane.py) use one client per
project, so a count kept by the client would mix their requests. `counting()` counts only the requests sent
from the code inside it: from this thread, and from the worker threads its calls start with this
thread's context (`lsclient/predictions.py` `patch_notes` does). Nested scopes each count.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class Tally:
    """Requests sent to Label Studio (retries included) while its `counting()` scope was open."""

    def __init__(self) -> None:
        self.sent = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.sent += 1


# the scopes open in the current context; each request adds one to every one of them (a context
# variable: every thread and task sees its own value, so nothing here is shared between them)
OPEN: ContextVar[tuple[Tally, ...]] = ContextVar("tasveer_ls_tallies", default=())


@contextmanager
def counting() -> Iterator[Tally]:
    """Count the Label Studio requests sent from inside the block (see the module docstring)."""
    tally = Tally()
    token = OPEN.set((*OPEN.get(), tally))
    try:
        yield tally
    finally:
        OPEN.reset(token)


def count_request() -> None:
    """Called by the transport for every request it sends."""
    for tally in OPEN.get():
        tally.add()
