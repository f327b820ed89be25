"""What a refresh pays to have every task's embedding, with and without the in-memory memo
(backend/writeback/features.py `FeatureMemo`), against the project's size.

A temp embedding cache (SQLite, the real `training.cache.EmbeddingCache`) and task index with N
tasks of 1,280-dim vectors (Lite2's size; random values: only their number and size matter), then
`TaskFeatures.of_indexed` as the refresh calls it, REPEATS times each way: "read" with a memo that
keeps nothing (every call reads every embedding from SQLite, as before the memo), "memo" with the
default one (the first call reads, the next ones only what was added). Times swing with the
machine's load: compare the two columns of one run.

    .venv/bin/python bench/feature_memo.py [--n 10000,50000] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.writeback.features import FeatureMemo, TaskFeatures  # noqa: E402
from backend.writeback.taskindex import IndexedTask, TaskIndex  # noqa: E402
from training.cache import EmbeddingCache  # noqa: E402

DIM = 1280
BACKBONE = SimpleNamespace(id="efficientnet_lite2", preprocessing=SimpleNamespace(image_size=260))


def project(root: Path, n: int) -> tuple[EmbeddingCache, TaskIndex]:
    cache, index = EmbeddingCache(root), TaskIndex(root)
    rng = np.random.default_rng(0)
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    for start in range(0, n, 5000):
        part = digests[start : start + 5000]
        cache.put_many({d: rng.normal(size=DIM).astype(np.float32) for d in part}, BACKBONE.id, 260)
    index.add(IndexedTask(i + 1, f"/data/upload/1/{i}.jpg", d) for i, d in enumerate(digests))
    return cache, index


def timed(features: TaskFeatures, index: TaskIndex, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        tasks = index.tasks(exclude=range(1, 31))  # 30 labeled, as in bench/scale.py
        x, ids, errors = features.of_indexed(BACKBONE, "image", tasks, None, "1", index)
        assert len(ids) == len(tasks) and x.shape == (len(tasks), DIM) and not errors
        out.append(time.perf_counter() - start)
    return out


def size_args(doc: str) -> argparse.Namespace:
    """--n (task counts), --repeats, --json: the arguments of the benches over a synthetic project."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--n", default="10000,50000", help="task counts, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    return ap.parse_args()


def main() -> None:
    args = size_args(__doc__)
    rows = []
    for n in [int(x) for x in args.n.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            cache, index = project(Path(tmp), n)
            plain = TaskFeatures(None, cache)
            plain.memo = FeatureMemo(limit=0)  # keeps nothing: every call reads SQLite
            read = timed(plain, index, args.repeats)
            memo = timed(TaskFeatures(None, cache), index, args.repeats)
        rows.append({"n": n, "read_s": read, "memo_s": memo})
        print(
            f"{n:>7} tasks: read every time p50 {statistics.median(read):.2f} s;"
            f" memo first {memo[0]:.2f} s, then p50 {statistics.median(memo[1:] or memo):.2f} s",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
