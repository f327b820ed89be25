"""Upload requests in flight during an import: one at a time against two.

    .venv/bin/python bench/scale_inflight.py [--photos 250] [--order 1,2,2,1,1,2,2,1]

One `tasveer up` in a temp data dir (bench/scale_up.py), 30 labelled photos and the wait for its
first trained version (as bench/scale.py), then one import of --photos distinct photos per entry
of --order (that many upload requests in flight; alternated, so that load from other work on the
machine hits both alike): `upload_files` then `ensure_predictions`, as `tasveer import` does.
Per import: upload seconds, seconds until every task has a prediction, "database is locked" lines
in Label Studio's log and the client's retries of a 5xx.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import DATA, SEED_PER_CLASS, seed  # noqa: E402
from bench.scale_photos import link_seed, make_pool, scene_files, split_seed  # noqa: E402
from bench.scale_up import Up  # noqa: E402
from sync.connection import make_client  # noqa: E402
from sync.predictions import ensure_predictions  # noqa: E402
from sync.upload import upload_files  # noqa: E402


class Retries(logging.Handler):
    """Counts lsclient.transport's warnings (one per retried 5xx)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record) -> None:
        self.count += 1


def one_import(up: Up, client, files: list[Path], width: int, retries: Retries) -> dict:
    log = up.data_dir / "labelstudio" / "label-studio.log"
    locked, retried = log.read_text(errors="replace").count("database is locked"), retries.count
    t0 = time.monotonic()
    ids = upload_files(client, up.pid, files, in_flight=width, progress=False)
    uploaded = time.monotonic() - t0
    report = ensure_predictions(client, up.pid, ids, timeout=1800, progress=False)
    return {
        "in_flight": width,
        "upload_s": round(uploaded, 1),
        "predicted_s": round(time.monotonic() - t0, 1),
        "complete": report.complete,
        "locked_lines": log.read_text(errors="replace").count("database is locked") - locked,
        "retries": retries.count - retried,
        "load": round(os.getloadavg()[0], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=250)
    parser.add_argument("--order", default="1,2,2,1,1,2,2,1")
    args = parser.parse_args()
    order = [int(x) for x in args.order.split(",")]
    retries = Retries()
    logging.getLogger("lsclient.transport").addHandler(retries)
    root = Path(tempfile.mkdtemp(prefix="scale-inflight-"))
    up = Up(root)
    try:
        up.start()
        seed_set, pool = split_seed(scene_files(DATA), SEED_PER_CLASS)
        seed(up, link_seed(seed_set, root / "seed"))
        make_pool(pool, args.photos * len(order), root / "photos")
        files = sorted((root / "photos").iterdir())
        client = make_client(up.state["url"], up.state["token"])
        runs = []
        for i, width in enumerate(order):
            runs.append(one_import(up, client, files[i * args.photos : (i + 1) * args.photos], width, retries))
            print(runs[-1], flush=True)
            time.sleep(5)  # the backend's last write-backs settle
        for width in sorted(set(order)):
            mine = [r for r in runs if r["in_flight"] == width]
            predicted, uploaded = [r["predicted_s"] for r in mine], [r["upload_s"] for r in mine]
            print(
                f"in flight {width}: every prediction after median {statistics.median(predicted):.1f} s"
                f" (runs {predicted}),"
                f" upload median {statistics.median(uploaded):.1f} s, 'database is locked' lines"
                f" {sum(r['locked_lines'] for r in mine)}, retries {sum(r['retries'] for r in mine)}"
            )
    finally:
        up.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
