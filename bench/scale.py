"""Ten thousand photos in one project: `tasveer import` against the model, and corrections after it.

    .venv/bin/python bench/scale.py [--n 1000,8741,50000] [--database sqlite|postgres] [--json]
                                    [--corrections 10] [--pace 5] [--keep]
    .venv/bin/python bench/scale.py --replot A.json [B.json ...]    # one plot of saved --json runs

Per N, on a fresh `tasveer up` in a temp data dir (free ports, loopback; bench/scale_up.py):
  seed         30 photos (5 per class) through `tasveer import --labels-from-folders`, then the
               wait for the first trained version (the backend idle, serving a version of them);
  import       N other photos (bench/scale_photos.py: the shared scenes first, then flips, crops and
               colour changes of them, made in the temp dir) through `tasveer import` (it waits
               until each task has a prediction); its wall time against the model time of the same
               photos in the same run: the serving version (the project's default params) loaded
               with `load_classifier` predicting a sample of them, scaled to N; and the backend's
               own rate of writing predictions for new tasks (its write-back records: tasks per
               second of busy time);
  corrections  --corrections times, one every --pace s: the task `GET /api/projects/<id>/next`
               serves gets an annotation with the right label (its source folder) from the admin;
               per correction, seconds until a version trained on it is published (first seen in
               the backend's `GET /versions`), until Label Studio's project names it (its head is
               in: `/next` serves from it to anyone without a locked task, a labeler at their next
               submit) and until `/next` serves the admin a task with a prediction of that version
               (the admin holds a locked task: it shows the version once the version's write has
               reached that task).
All along, every ~0.5 s (bench/scale_watch.py): `/next` and data manager page
(`GET /api/tasks?project=..&page=1&page_size=30`) latency, both servers' resident memory (/proc).
During the corrections (until each is trained on): CPU seconds of the backend, Label Studio and
PostgreSQL, and with py-spy installed the backend's most sampled functions (bench/scale_cpu.py).
Label Studio requests per correction, two ways: request lines in DATA_DIR/labelstudio/label-studio.log
during the corrections, less the bench's own (tagged `bench=1`); and the backend's own count
(lsclient counts its requests; each training job reports its training's and its write-back's).
Checked, "nothing lost": every task has a prediction after the import (Label Studio's count of tasks
with total_predictions = 0), and every correction's annotation is in the training set of a
published version (its manifest's `extra.annotations`).
Prints a table (--json: one JSON object) and plots each figure against N to docs/img/scale.png
(--replot: from saved --json outputs, e.g. SQLite runs and a PostgreSQL run in one plot).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale_cpu import Profile, snapshot, top_frames, used  # noqa: E402
from bench.scale_photos import class_of, link_seed, make_pool, scene_files, split_seed  # noqa: E402
from bench.scale_report import figures, plot, table  # noqa: E402
from bench.scale_up import REPO, Up  # noqa: E402
from bench.scale_watch import Watch  # noqa: E402

DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"
SEED_PER_CLASS = 5
MODEL_SAMPLE = 256
SETTLE_S = 1200.0


def wait(check, what: str, up: Up, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {timeout:.0f} s\n{up.logs()}")
        time.sleep(every)


def idle_version(up: Up) -> str | None:
    """The serving version once the backend is idle on a trained one (no training, no write-back;
    the collection's update may still run: after a big import it takes many minutes), else None."""
    info = up.versions()
    jobs = info["jobs"]
    busy = jobs.get("running") or jobs.get("pending")
    background = up.backend(f"/projects/{up.pid}/jobs")["background"]
    writing = any(r.get("state") in ("queued", "running") for r in background if not r.get("collection"))
    vid = info.get("model_version")
    return vid if vid not in (None, "INITIAL") and not busy and not writing else None


def store_of(up: Up, vid: str):
    from training.store import ModelStore

    found = next(up.data_dir.glob(f"backend/**/versions/{vid}"))
    return ModelStore(found.parents[1])


def seed(up: Up, seed_dir: Path) -> dict:
    t0 = time.monotonic()
    done = up.tasveer("import", "--labels-from-folders", "--quiet", str(seed_dir))
    if done.returncode != 0:
        raise RuntimeError(f"seed import failed:\n{done.stdout}\n{done.stderr}")
    vid = wait(lambda: idle_version(up), "first trained version", up, SETTLE_S)
    return {"version": vid, "seconds": round(time.monotonic() - t0, 1)}


def import_photos(up: Up, photos: Path, n: int) -> dict:
    before, since = up.count_tasks(), time.time()
    t0 = time.monotonic()
    done = up.tasveer("import", "--quiet", "--timeout", "7200", str(photos))
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(f"tasveer import exited {done.returncode}:\n{done.stdout}\n{done.stderr[-3000:]}")
    return {
        "seconds": round(seconds, 1),
        "photos_per_s": round(n / seconds, 1),
        "new_tasks": up.count_tasks() - before,
        "without_prediction": up.count_tasks(no_prediction=True),
        "writeback": writeback_rate(up, since),
    }


def writeback_rate(up: Up, since: float) -> dict:
    """The backend's write-back of new tasks (one record per upload request, one at a time; the
    newest 100 are kept): tasks per second of its busy time, from the records after `since`."""
    records = [
        r
        for r in up.backend(f"/projects/{up.pid}/jobs")["background"]
        if "tasks" in r and r.get("finished_at") and r["submitted_at"] >= since
    ]
    busy, free_at = 0.0, 0.0
    for r in sorted(records, key=lambda r: r["submitted_at"]):
        start = max(r["submitted_at"], free_at)
        busy, free_at = busy + r["finished_at"] - start, r["finished_at"]
    tasks = sum(r["tasks"] for r in records)
    return {"records": len(records), "tasks": tasks, "tasks_per_s": round(tasks / busy, 1) if busy else None}


def model_time(up: Up, photos: Path, n: int) -> dict:
    """The serving version's predictions of a sample of the imported photos (warmed up first)."""
    from training.serving import load_classifier

    vid = up.versions()["model_version"]
    clf = load_classifier(store_of(up, vid), vid)
    files = sorted(photos.iterdir())
    step = max(1, len(files) // MODEL_SAMPLE)
    blobs = [f.read_bytes() for f in files[::step][:MODEL_SAMPLE]]
    clf.predict_proba(blobs[:8])
    t0 = time.perf_counter()
    clf.predict_proba(blobs)
    rate = len(blobs) / (time.perf_counter() - t0)
    return {"version": vid, "sample": len(blobs), "photos_per_s": round(rate, 1), "seconds_for_n": round(n / rate, 1)}


def correct(up: Up, count: int, pace: float) -> list[dict]:
    """`count` corrections, one every `pace` s, on what /next serves."""
    from lsproto.config import parse_label_config
    from lsproto.results import choice_result

    cfg = parse_label_config(up.ls("GET", f"/api/projects/{up.pid}").json()["label_config"])
    done = []
    for _ in range(count):
        t0, at = time.monotonic(), time.time()
        task = up.ls("GET", f"/api/projects/{up.pid}/next").json()
        label = class_of(task["data"]["image"])
        r = up.ls(
            "POST",
            f"/api/tasks/{task['id']}/annotations/",
            json={"result": choice_result(cfg.from_name, cfg.to_name, label), "project": up.pid},
        )
        r.raise_for_status()
        served = {p.get("model_version") for p in task.get("predictions") or []}
        done.append({"task": task["id"], "annotation": r.json()["id"], "label": label, "at": at, "served": served})
        time.sleep(max(0.0, pace - (time.monotonic() - t0)))
    return done


def trained_on(up: Up, annotation: int) -> str | None:
    """The first published version (oldest) whose training set has `annotation`."""
    info = up.versions()
    for vid in info["versions"]:
        extra = store_of(up, vid).manifest(vid).get("extra") or {}
        if annotation in (extra.get("annotations") or []):
            return vid
    return None


def correction_figures(up: Up, watch: Watch, done: list[dict]) -> list[dict]:
    out = []
    for c in done:
        vid = trained_on(up, c["annotation"])
        seen = watch.samples.version_seen.get(vid) if vid else None
        served = watch.first_served(vid, seen) if seen else None
        head_in = watch.samples.ls_version_seen.get(vid) if vid else None
        out.append(
            {
                "task": c["task"],
                "version": vid,
                "publish_s": round(seen - c["at"], 1) if seen else None,
                "head_in_s": round(head_in - c["at"], 1) if head_in else None,
                "next_serves_s": round(served - c["at"], 1) if served else None,
            }
        )
    return out


def job_steps(up: Up, since: float) -> dict:
    """Median seconds of each step of the trainings that published after `since` (the job's
    `seconds`: read, fit, compare, publish, refresh; and the refresh's time until its head was in)."""
    steps: dict[str, list[float]] = {}
    for job in up.backend(f"/projects/{up.pid}/jobs")["jobs"]:
        result = job.get("result") or {}
        if (job.get("started_at") or 0) < since or not isinstance(result.get("seconds"), dict):
            continue
        for name, value in result["seconds"].items():
            steps.setdefault(name, []).append(value)
        refresh = result.get("refresh") or {}
        for name, value in (
            ("refresh waiting for the one before", result.get("refresh_waited_s")),
            ("refresh: every task's row computed", refresh.get("seconds_to_rows")),
            ("refresh until the head is in", refresh.get("seconds_to_head")),
        ):
            if value is not None:
                steps.setdefault(name, []).append(value)
    return {name: round(float(statistics.median(v)), 2) for name, v in steps.items()}


def run_one(n: int, args, seed_set, pool) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"scale-{n}-"))
    up = Up(root, args.database)
    out: dict = {"n": n, "database": args.database}
    try:
        t0 = time.monotonic()
        up.start()
        out["up_s"] = round(time.monotonic() - t0, 1)
        photos = root / "photos"
        make_pool(pool, n, photos)
        with Watch(up) as watch:
            watch.phase = "seed"
            out["seed"] = seed(up, link_seed(seed_set, root / "seed"))
            watch.phase = "import"
            out["import"] = import_photos(up, photos, n)
            watch.phase = "model"
            out["model"] = model_time(up, photos, n)
            watch.phase = "corrections"
            before, since = up.ls_requests(), time.time()
            cpu, spy = snapshot(up.children()), Profile(up.children()["backend"], root / "corrections.pyspy")
            done = correct(up, args.corrections, args.pace)
            trained = lambda: all(trained_on(up, c["annotation"]) for c in done)  # noqa: E731
            wait(trained, "training on every correction", up, SETTLE_S)
            out["cpu_s_corrections"] = used(cpu, snapshot(up.children()))
            spy.stop()
            if spy.proc is not None and spy.out.exists():
                out["backend_profile_corrections"] = top_frames(spy.out)
            print(f"CPU s during the corrections: {out['cpu_s_corrections']}", file=sys.stderr)
            for frame, samples in out.get("backend_profile_corrections") or []:
                print(f"  {samples:>7}  {frame}", file=sys.stderr)
            wait(lambda: idle_version(up), "idle backend", up, SETTLE_S)
            out["ls_requests_corrections"] = up.ls_requests() - before
            out["backend_ls_requests_corrections"] = up.backend_ls_requests(since)
            out["job_steps_p50"] = job_steps(up, since)
            time.sleep(2.0)  # a last /next sample of the final version
        out["corrections"] = correction_figures(up, watch, done)
        phases = {"import": "import", "corrections": "corrections", "all": None}
        out["latency"] = {k: {p: watch.latency(k, v) for p, v in phases.items()} for k in ("next", "page")}
        out["rss_peak_mb"] = {k: round(v) for k, v in watch.samples.rss_peak.items()}
        out["rss_anon_peak_mb"] = {k: round(v) for k, v in watch.samples.rss_anon_peak.items()}
        out["sample_errors"] = watch.samples.errors[:5]
        out["slow_samples"] = watch.samples.slow[:200]
        out["versions"] = len(watch.samples.version_seen)
        return out
    finally:
        up.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", default="1000,8741,50000", help="photo counts to import, comma-separated")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--corrections", type=int, default=10)
    parser.add_argument("--pace", type=float, default=5.0, help="seconds between corrections")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep each run's temp dir")
    parser.add_argument("--plot", default=str(REPO / "docs" / "img" / "scale.png"))
    parser.add_argument(
        "--replot", nargs="+", metavar="JSON", help="plot and print the runs of saved --json outputs; no run"
    )
    args = parser.parse_args()
    if args.replot:
        saved = [run for f in args.replot for run in json.loads(Path(f).read_text())["runs"]]
        print(table(saved))
        plot(saved, Path(args.plot))
        return 0
    seed_set, pool = split_seed(scene_files(DATA), SEED_PER_CLASS)
    results = []
    for n in [int(x) for x in args.n.split(",")]:
        results.append(run_one(n, args, seed_set, pool))
        print(table(results[-1:]), file=sys.stderr, flush=True)
    report = {"database": args.database, "corrections": args.corrections, "pace_s": args.pace, "runs": results}
    print(json.dumps(report, indent=1, default=sorted) if args.json else table(results))
    plot(results, Path(args.plot))
    lost = [f for f in map(figures, results) if f["tasks without prediction"] or f["corrections not trained on"]]
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
