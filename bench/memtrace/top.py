"""The largest allocations alive at a memray capture's high-water mark, with tasveer's own frames.

.venv/bin/python bench/memtrace/top.py CAPTURE.bin [--top 15]
"""

from __future__ import annotations

import argparse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("capture")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    from memray import FileReader

    reader = FileReader(args.capture)
    print(f"peak {reader.metadata.peak_memory / 1e6:.1f} MB tracked")
    records = sorted(reader.get_high_watermark_allocation_records(merge_threads=True), key=lambda a: -a.size)
    for record in records[: args.top]:
        own = [
            f"{name} {path.split('/work/main/')[-1]}:{line}"
            for name, path, line in record.stack_trace(max_stacks=30)
            if "site-packages" not in path and "/lib/python" not in path
        ]
        print(f"{record.size / 1e6:8.1f} MB  x{record.n_allocations:<6} " + " <- ".join(own[:4]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
