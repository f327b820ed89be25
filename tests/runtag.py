"""Names for what a test run creates on the machine's shared services (PostgreSQL databases, Redis
keys), so that a later run can tell the leftovers of a killed run from a live run's things.

`tag()` is `<pid namespace>_<pid>` of this process; `orphaned(tag)` is true when that process is
gone. Only tags of this PID namespace are judged (a container's processes are not visible here).
"""

from __future__ import annotations

import os
import re

TAG = r"(\d+)_(\d+)"


def _namespace() -> str:
    try:
        return re.sub(r"\D", "", os.readlink("/proc/self/ns/pid")) or "0"
    except OSError:
        return "0"


def tag() -> str:
    return f"{_namespace()}_{os.getpid()}"


def orphaned(namespace: str, pid: str) -> bool:
    if namespace != _namespace():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
