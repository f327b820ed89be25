"""What one poll of `tasveer import`'s wait for predictions costs as the project grows.

    .venv/bin/python bench/scale_poll.py [--sizes 1000,8000,20000] [--repeats 5]

A plain Label Studio (migrated SQLite from tests/lssqlite.py, no backend) and one project; tasks
with a prediction each are imported as JSON up to each size, then an "import" of 100 new tasks, 50
of them with a prediction. Median of --repeats of each poll, both through lsclient:
  old  every prediction of the project (`project_predictions`, what the poll listed before);
  new  the 100 new tasks asked about by id (`predicted_among`, what sync/predictions.py asks).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import requests  # noqa: E402

from lsproto.config import parse_label_config  # noqa: E402
from lsproto.results import choice_result  # noqa: E402
from sync.connection import make_client  # noqa: E402
from sync.labelstudio import LabelStudioServer  # noqa: E402
from sync.netutil import free_port  # noqa: E402
from sync.project import ensure_project  # noqa: E402


def median_ms(fn, repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000), value


def main() -> int:
    from lssqlite import migrated_database

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,8000,20000")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="scale-poll-"))
    migrated_database(root)
    try:
        poll_costs(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def poll_costs(root: Path, args) -> None:
    with LabelStudioServer(root, free_port(), token="poll" + secrets.token_hex(16)) as ls:
        headers = {"Authorization": f"Token {ls.token}"}
        client = make_client(ls.url, ls.token)
        project = ensure_project(client, "scale-poll", ["a", "b", "c"])
        cfg = parse_label_config(project.label_config)

        def prediction(i: int) -> dict:
            return {"result": choice_result(cfg.from_name, cfg.to_name, "abc"[i % 3]), "model_version": "v1"}

        def post(path: str, body: list) -> dict:
            r = requests.post(f"{ls.url}{path}", params={"return_task_ids": "true"}, json=body, headers=headers)
            r.raise_for_status()
            return r.json()

        size = 0
        print("project tasks | old poll: predictions listed, ms | new poll: ids asked, ms")
        for target in [int(x) for x in args.sizes.split(",")]:
            while size < target:
                post(
                    f"/api/projects/{project.id}/import",
                    [{"data": {"image": f"/x/{size + i}.jpg"}, "predictions": [prediction(i)]} for i in range(1000)],
                )
                size += 1000
            new = post(
                f"/api/projects/{project.id}/import", [{"data": {"image": f"/n/{size}-{i}.jpg"}} for i in range(100)]
            )["task_ids"]
            post(f"/api/projects/{project.id}/import/predictions", [{"task": t, **prediction(t)} for t in new[:50]])
            size += 100
            old_ms, listed = median_ms(lambda: client.project_predictions(project.id), args.repeats)
            new_ms, got = median_ms(lambda ids=new: client.predicted_among(project.id, ids), args.repeats)
            assert got == set(new[:50])
            print(f"{size:13,} | {len(listed):,} predictions, {old_ms} ms | 100 ids, {new_ms} ms", flush=True)


if __name__ == "__main__":
    sys.exit(main())
