"""What was going on while a sampled request was slow, in a run of bench/scale.py kept with --keep.

    .venv/bin/python bench/scale.py --n 8741 --json --keep > run.json      # prints "kept DIR"
    .venv/bin/python bench/scale_stalls.py run.json DIR [--phase corrections] [--show 3]

bench/scale_watch.py keeps each sample slower than SLOW_S with its start. For each one of the phase,
this lists the Label Studio requests that ended while it waited (Label Studio's log writes a request's
line when it ends: the one a stall waited on ends just before it) and the backend's own log lines of
the same span; --show of them in full. Then how many began with Label Studio's "database is locked"
(on SQLite its retry middleware then sleeps 1 s and runs the request again) and, over all the
stalls, how many ended inside one per request kind (method and path with numbers as <id>), against
how many of that kind the whole phase had: a kind that ends in nearly every stall and rarely
elsewhere is the suspect.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^\[?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]?")
LOCKED = "database is locked"
REQUEST = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.[01]"')


def stamped(path: Path) -> list[tuple[float, str]]:
    """(epoch seconds, line) of each line of a log that starts with a timestamp, each line once
    (Label Studio's config writes a line through two handlers)."""
    out, seen = [], set()
    for line in path.read_text(errors="replace").splitlines():
        m = STAMP.match(line)
        if m and line not in seen:
            seen.add(line)
            out.append((datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp(), line))
    return out


def kind(line: str) -> str | None:
    m = REQUEST.search(line)
    if not m:
        return None
    path = re.sub(r"\d+", "<id>", m.group(2).split("?")[0])
    return f"{m.group(1)} {path}{' (bench)' if 'bench=1' in line else ''}"


def between(lines: list[tuple[float, str]], start: float, end: float) -> list[str]:
    return [line for at, line in lines if start <= at <= end]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="bench/scale.py --json output")
    parser.add_argument("kept", type=Path, help="the run's kept temp dir")
    parser.add_argument("--phase", default="corrections")
    parser.add_argument("--show", type=int, default=3, help="stalls printed in full")
    args = parser.parse_args()
    run = json.loads(args.run.read_text())["runs"][0]
    ls_log = stamped(args.kept / "var" / "labelstudio" / "label-studio.log")
    backend_log = stamped(args.kept / "var" / "backend" / "backend.log")
    stalls = [s for s in run.get("slow_samples", []) if s["phase"] == args.phase]
    if not stalls:
        print(f"no sample slower than the watch's limit in phase {args.phase!r}")
        return 0
    inside: Counter = Counter()
    locked = 0
    for i, s in enumerate(stalls):
        start, end = s["at"], s["at"] + s["seconds"]
        ended = between(ls_log, start, end + 0.05)
        inside.update({k for k in map(kind, ended) if k})
        locked += any(LOCKED in line for line in between(ls_log, start, end))
        if i < args.show:
            print(f"--- {s['kind']} {s['seconds']} s from {datetime.fromtimestamp(start).time()}")
            for line in ended + between(backend_log, start - 0.5, end):
                print("   ", line[:220])
    first = min(s["at"] for s in stalls)
    last = max(s["at"] + s["seconds"] for s in stalls)
    overall = Counter(k for at, line in ls_log if first <= at <= last for k in [kind(line)] if k)
    print(f"\n{len(stalls)} stalls in {args.phase}; {locked} began with Label Studio logging {LOCKED!r} (SQLite:")
    print("its DatabaseIsLockedRetryMiddleware sleeps 1 s, then 1.5 s, ... and runs the request again)")
    print("Label Studio requests that ended inside them:")
    print(f"{'request':60} {'in stalls':>9} {'all':>6}")
    for name, n in inside.most_common(25):
        print(f"{name[:60]:60} {n:>9} {overall[name]:>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
