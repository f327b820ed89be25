"""`Memo`: build a value once per key, keep the newest `limit` of them.

The lock that guards the table is never held while a value is built (a network loaded from disk
takes seconds): callers asking for the *same* key wait for the one build, every other key goes on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Memo:
    def __init__(self, limit: int = 32):
        self.limit = limit
        self._lock = threading.Lock()
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The value kept under `key`, else what `build()` returns (kept). A key names one kind of
        value: what was kept under it is what `build` would give."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._values:
                    return self._values[key]
            value = build()  # no table lock held here
            with self._lock:
                self._values[key] = value
                self._building.pop(key, None)
                while len(self._values) > self.limit:
                    self._values.popitem(last=False)
        return value

    def peek(self, key: Hashable) -> Any:
        with self._lock:
            return self._values.get(key)

    def drop(self, match: Callable[[Any], bool]) -> None:
        """Forget every value whose key matches."""
        with self._lock:
            for key in [k for k in self._values if match(k)]:
                del self._values[key]
