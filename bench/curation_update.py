"""What one update of the collection costs as the project grows: 100 new photos into a collection of
N, for the parts of backend/collection/curator.py's update that grow with N.

    .venv/bin/python bench/curation_update.py [--json] [--sizes 2000,10000,50000] [--new 100]

Per size, on random unit vectors of dimension 1280 (EfficientNet-Lite2's; timing only) and random
40 px thumbnails (so the pair checks are few, as they are: candidates need cosine >= 0.80):
- the duplicate finder's `add` of the new photos (new x all, training/duplicates.py);
- the nearest-photo lists' `add` (new x all, training/nearest.py), against recomputing the whole
  "far from the rest" ranking (all x all, training/unusual.py `neighbour_distance`, the update's cost
  before the lists; measured up to --whole-up-to photos);
- the ranking with the lists (robust z, known-class part with 600 labels: N x labels).
Times in seconds; compare within one run (2 shared cores swing up to 3x).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.duplicates import DuplicateFinder  # noqa: E402
from training.layout import THUMB  # noqa: E402
from training.nearest import NearestKept  # noqa: E402
from training.neighbours import normalise  # noqa: E402
from training.unusual import SKIP_ABOVE, neighbour_distance, unusual_ranking  # noqa: E402

DIM = 1280


def vectors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return normalise(rng.standard_normal((n, DIM)).astype(np.float32))


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return round(time.perf_counter() - start, 3)


def one_size(n: int, new: int, whole_up_to: int) -> dict:
    x = vectors(n + new)
    rng = np.random.default_rng(1)
    thumbs = rng.integers(0, 256, (n + new, 3, THUMB, THUMB), dtype=np.uint8)
    finder = DuplicateFinder(DIM)
    finder.add(list(range(n)), x[:n], None, list(thumbs[:n]))
    nearest = NearestKept()
    nearest.add(list(range(n)), x[:n], x[:n])
    out = {"size": n, "new": new}
    out["finder_add_s"] = timed(lambda: finder.add(list(range(n, n + new)), x[n:], None, list(thumbs[n:])))
    out["nearest_add_s"] = timed(lambda: nearest.add(list(range(n, n + new)), x[n:], x))
    labels = [str(i % 6) if i < 600 else None for i in range(n + new)]
    rest = nearest.distance(10, SKIP_ABOVE)
    out["ranking_with_lists_s"] = timed(lambda: unusual_ranking(x, labels, rest_distance=rest))
    if n + new <= whole_up_to:
        out["whole_ranking_s"] = timed(lambda: neighbour_distance(x))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sizes", default="2000,10000,50000")
    ap.add_argument("--new", type=int, default=100)
    ap.add_argument("--whole-up-to", type=int, default=12000, help="recompute the whole ranking up to this size")
    ap.add_argument("--quick", action="store_true", help="1,000 photos (make bench: does it still run)")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.new = "1000", 50
    rows = [one_size(int(n), args.new, args.whole_up_to) for n in args.sizes.split(",")]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print("| photos held | new | finder add s | nearest lists add s | ranking with lists s | whole ranking again s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        whole = r.get("whole_ranking_s", "-")
        print(
            f"| {r['size']} | {r['new']} | {r['finder_add_s']} | {r['nearest_add_s']} | "
            f"{r['ranking_with_lists_s']} | {whole} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
