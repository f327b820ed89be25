"""The real Redis at 127.0.0.1:6379 and RQ worker processes for tests, safe across concurrent and
repeated runs.

`redis_prefix` (fixture) gives a test a key prefix of its own, `test_<runtag>_<hex>`: its keys are
`<prefix>:...` (backend.jobs.redisrunner) and RQ's `rq:...<prefix>...` (queue `<prefix>-train`, its jobs and
workers). They are deleted when the test ends, and so are those a run killed before its clean-up
left behind: a prefix whose process is gone (runtag.py; CI and `make test` share the machine).

`kill_worker(proc)` is a lost machine: the worker AND its work horse, which RQ puts in a process
group of its own (so killing the worker's group alone leaves the horse working).
`stop_worker(proc)` asks a worker to stop (SIGTERM), then kills whatever is left.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
from pathlib import Path

import pytest

from runtag import TAG, orphaned, tag

REDIS = "redis://127.0.0.1:6379/0"
SHARED_SETS = ("rq:queues", "rq:workers")  # RQ's registries of every queue and worker
OURS = re.compile(rf"test_{TAG}_[0-9a-f]{{8}}")


def drop_prefix(conn, prefix: str) -> None:
    for pattern in (f"{prefix}:*", f"rq:*{prefix}*"):
        for key in conn.scan_iter(match=pattern, count=500):
            conn.delete(key)
    for name in SHARED_SETS:
        stale = [m for m in conn.smembers(name) if prefix.encode() in m]
        if stale:
            conn.srem(name, *stale)


def orphans(conn) -> set[str]:
    """Prefixes `test_<runtag>_<hex>` whose process has ended (a run killed before it cleaned up)."""
    names = [*conn.scan_iter(match="*test_*", count=1000), *(m for s in SHARED_SETS for m in conn.smembers(s))]
    return {
        match.group(0)
        for name in names
        for match in OURS.finditer(name.decode(errors="replace"))
        if orphaned(*match.groups())
    }


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def kill_worker(proc: subprocess.Popen) -> None:
    horses = _children(proc.pid)
    for pgid in [proc.pid, *horses]:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(10)


def stop_worker(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # a warm shutdown: the worker waits for its horse
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_worker(proc)


@pytest.fixture
def redis_prefix():
    from redis import Redis

    conn = Redis.from_url(REDIS)
    for stale in orphans(conn):
        drop_prefix(conn, stale)
    prefix = f"test_{tag()}_{secrets.token_hex(4)}"
    try:
        yield prefix
    finally:
        drop_prefix(conn, prefix)
        conn.close()
