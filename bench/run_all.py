"""`make bench`: every benchmark in bench/ in its quick mode (`--quick`), one after another.

Quick mode checks that a benchmark still runs end to end on little data; its figures are not the
ones in RESULTS.md (each section there names the full command). Exit code 1 if any failed. A file
without a `--quick` option is listed, not run: the helper modules of bench/scale.py (scale_*.py), and
the benchmarks whose every run embeds, imports or trains on the whole shared collection (scale.py,
curation.py, duplicate_queue.py, ensemble.py, semi_supervised.py).

    .venv/bin/python bench/run_all.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benchmarks() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_"))


def has_quick(path: Path) -> bool:
    return '"--quick"' in path.read_text()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="run only these benchmarks (file names without .py)")
    args = ap.parse_args()
    listed = [p for p in benchmarks() if not args.only or p.stem in args.only]
    chosen = [p for p in listed if has_quick(p)]
    for path in listed:
        if path not in chosen:
            print(f"=== {path.name}: no --quick mode, not run (its full command is in RESULTS.md)", flush=True)
    failed = []
    for path in chosen:
        print(f"=== {path.name} --quick", flush=True)
        start = time.monotonic()
        proc = subprocess.run([sys.executable, str(path), "--quick"], cwd=HERE.parent)
        took = time.monotonic() - start
        print(
            f"=== {path.name}: {'ok' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'} in {took:.0f} s",
            flush=True,
        )
        if proc.returncode != 0:
            failed.append(path.name)
    print(f"{len(chosen) - len(failed)} passed, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
