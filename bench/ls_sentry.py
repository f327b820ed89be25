"""What Label Studio's default Sentry costs per request: the same LS started as tasveer starts it
(Sentry off, sync/labelstudio.py policy_env) and with LS 1.23.2's default Sentry DSN, taking turns.

    .venv/bin/python bench/ls_sentry.py [--requests 300] [--rounds 2]

Each start: a fresh data dir from the migrated template (tests/lssqlite.py), one project with 50
tasks, then N task-list requests (`GET /api/tasks?project=..&page_size=10`, what the data manager
and tasveer's write-back ask most); prints wall time and Label Studio's CPU seconds (from /proc) per
request. This machine has no route to sentry.io, so what is measured is the SDK's work in the
request path, not the sending.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from lssqlite import migrated_database  # noqa: E402
from sync.labelstudio import LabelStudioServer  # noqa: E402
from sync.netutil import free_port  # noqa: E402

LS_DEFAULT_DSN = "https://68b045ab408a4d32a910d339be8591a4@o227124.ingest.sentry.io/5820521"  # its settings


def cpu_seconds(port: str) -> float:
    """User + system CPU of every process whose command line names the port (LS and its children)."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if port not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="ignore"):
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def one_start(extra_env: dict, n: int) -> tuple[float, float]:
    """(wall s, LS CPU s) of n task-list requests on a fresh Label Studio."""
    data = Path(tempfile.mkdtemp(prefix="ls-sentry-"))
    migrated_database(data)
    token = "bench" + secrets.token_hex(16)
    with LabelStudioServer(data, free_port(), token=token, extra_env=extra_env) as server:
        headers = {"Authorization": f"Token {token}"}
        r = requests.post(f"{server.url}/api/projects/", json={"title": "sentry-cost"}, headers=headers, timeout=60)
        r.raise_for_status()
        pid = r.json()["id"]
        tasks = [{"image": f"/data/upload/none/{i}.jpg"} for i in range(50)]
        requests.post(
            f"{server.url}/api/projects/{pid}/import", json=tasks, headers=headers, timeout=60
        ).raise_for_status()
        port = server.url.rsplit(":", 1)[1]
        cpu, start = cpu_seconds(port), time.perf_counter()
        for _ in range(n):
            params = {"project": pid, "page_size": 10}
            requests.get(f"{server.url}/api/tasks", params=params, headers=headers, timeout=60).raise_for_status()
        return time.perf_counter() - start, cpu_seconds(port) - cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print("| Label Studio | requests | wall s | LS CPU s | CPU ms / request |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for _ in range(args.rounds):
        for label, env in (("Sentry off (tasveer)", {}), ("LS default Sentry", {"SENTRY_DSN": LS_DEFAULT_DSN})):
            wall, cpu = one_start(env, args.requests)
            print(
                f"| {label} | {args.requests} | {wall:.1f} | {cpu:.1f} | {1000 * cpu / args.requests:.1f} |", flush=True
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
