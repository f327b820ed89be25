"""Who used the CPU while bench/scale.py's corrections ran: CPU seconds of the backend, Label Studio
(each with its children) and the PostgreSQL server processes, from /proc, over one phase; and, with
`--profile`, a py-spy recording of the backend's threads over the same phase (raw collapsed stacks,
summarised by `top_frames`). On 2 cores a correction's fit and rows take what the other servers leave.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.scale_up import descendants

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of one process, seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def postgres_pids() -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def snapshot(children: dict[str, int]) -> dict[str, float]:
    """server -> CPU seconds so far (a process's children included; PostgreSQL: every server process)."""
    out = {name: sum(cpu_s(p) for p in [pid, *descendants(pid)]) for name, pid in children.items()}
    out["postgres"] = sum(cpu_s(p) for p in postgres_pids())
    return out


def used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each server used between two snapshots (processes that ended meanwhile are missed)."""
    return {name: round(max(0.0, after.get(name, 0.0) - before.get(name, 0.0)), 1) for name in before}


class Profile:
    """py-spy recording a process until `stop` (nothing when py-spy is not installed)."""

    def __init__(self, pid: int, out: Path, rate: int = 20):
        self.out = out
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.proc = None
        if Path(spy).exists():
            cmd = [spy, "record", "-p", str(pid), "-o", str(out), "--format", "raw", "--rate", str(rate)]
            cmd += ["--threads", "--nonblocking"]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(2)  # py-spy writes its file on SIGINT
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


PROJECT = ("backend/", "training/", "lsclient/", "lsproto/")


def top_frames(raw: Path, limit: int = 25) -> list[tuple[str, int]]:
    """From a raw py-spy file: the samples per thread, then the project's functions (a frame under
    backend/, training/, lsclient/ or lsproto/) that were on the stack in most samples."""
    threads: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count, parts = int(n), stack.split(";")
        total += count
        threads["thread " + parts[0].partition(": ")[2]] += count
        seen = set()
        for frame in parts[1:]:
            func, _, where = frame.rpartition(" (")
            path = where.rstrip(")").rsplit(":", 1)[0]
            if path.startswith(PROJECT) or any("/" + p in path for p in PROJECT):
                name = f"{func} ({path})"
                if name not in seen:
                    seen.add(name)
                    frames[name] += count
    return [("all samples", total), *threads.most_common(8), *frames.most_common(limit)]
