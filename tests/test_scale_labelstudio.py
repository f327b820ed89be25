"""A project of ~2,000 photos in a real Label Studio with the real backend: what a correction costs
does not grow with the project (issue "Ten thousand photos in one project"; the figures against
size are bench/scale.py's).

Asserted, independent of the machine's speed: the Label Studio requests a correction costs until
Label Studio serves from its version (the training's reads and the refresh's head, counted by the
backend's client and reported in the job's result) stay under a fixed bound and do not grow when
the project doubles; after each refresh `/next` serves a task predicted by the newest version; a
burst of corrections during an import loses no prediction and no annotation.

The tests build on each other in file order (one project, on the session's shared backend)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from types import SimpleNamespace

import pytest
import requests

import scenes
from lsfixture import poll
from lsproto.results import choice_result
from sync.importer import import_images
from sync.project import connect_backend, ensure_project
from sync.views import ensure_views

pytestmark = pytest.mark.labelstudio

WAIT = 300.0
FIRST, SECOND = 800, 800  # unlabeled photos imported before each round of corrections
CORRECTIONS = 3  # per round
BOUND = 40  # Label Studio requests per correction until it serves the new version


def wait_until(check, what: str, timeout: float = WAIT):
    return poll(check, what, timeout, 0.5, lambda: "\n" + S.backend.log_tail(60))


def get(path: str, **params):
    """GET from Label Studio. On SQLite, `/next` (which also writes: LS's stream history) can answer
    500 "database is locked" while another connection writes: SQLite refuses at once, without
    waiting, to turn a read snapshot older than that write into a write. A labeler's browser asks
    again; so does this (bench/scale.py counts these answers)."""
    for _ in range(5):
        r = requests.get(f"{S.ls.url}{path}", params=params, headers=S.ls.headers, timeout=120)
        if r.status_code != 500 or not path.endswith("/next/"):
            break
        time.sleep(0.5)
    r.raise_for_status()
    return r.json()


def predictions() -> list[dict]:
    data = get("/api/predictions/", project=S.project)
    return data.get("results", data) if isinstance(data, dict) else data


def jobs() -> dict:
    r = requests.get(f"{S.backend.url}/projects/{S.project}/jobs", timeout=30)
    r.raise_for_status()
    return r.json()


def settled(not_version: str | None = None) -> dict | None:
    """The backend idle, its newest job done, and Label Studio on the serving version."""
    info = jobs()
    if info["running"] is not None or info["pending"] is not None:
        return None
    if any(b.get("state") in ("queued", "running") for b in info["background"]):
        return None
    vid = info["model_version"]
    if vid in ("INITIAL", not_version) or get(f"/api/projects/{S.project}")["model_version"] != vid:
        return None
    return info


S = SimpleNamespace(backend=None)


@pytest.fixture(scope="module")
def scale(label_studio, shared_data, shared_backend):
    S.__dict__.update(ls=label_studio, backend=shared_backend, client=label_studio.client())
    return S


def photos(n: int, skip: int) -> list:
    per_class = -(-n // len(scenes.CLASSES))
    paths, _ = scenes.sample(per_class, seed=11, skip=skip)
    return paths[:n]


def correct_next(truth: dict[int, str]) -> int:
    """Take the task Label Studio serves next and give it its true label (like a submit)."""
    task = get(f"/api/projects/{S.project}/next/")["id"]
    r = requests.post(
        f"{S.ls.url}/api/tasks/{task}/annotations/",
        headers=S.ls.headers,
        timeout=120,
        json={"result": choice_result("choice", "image", truth[task]), "project": S.project},
    )
    assert r.status_code == 201, r.text
    return task


def newest_job(info: dict) -> dict:
    """The job that published the serving version."""
    return next(j for j in info["jobs"] if (j.get("result") or {}).get("version") == info["model_version"])


def truth_of(result, labels) -> dict[int, str]:
    return dict(zip(result.task_ids, labels))


def test_1_a_labelled_project_of_a_thousand_photos(scale, tmp_path):
    project = ensure_project(scale.client, "scale-2000", scenes.CLASSES)
    connect_backend(scale.client, project.id, scale.backend.url)
    ensure_views(scale.client, project.id)
    S.project = project.id
    paths, labels = scenes.sample(5, seed=12)
    tree = tmp_path / "labelled"
    for path, label in zip(paths, labels):
        (tree / label).mkdir(parents=True, exist_ok=True)
        (tree / label / path.name).symlink_to(path)
    quiet = {"progress": False, "log": lambda m: None}
    import_images(scale.client, project.id, [tree], labels_from_folders=True, wait=False, **quiet)
    wait_until(settled, "a trained version in Label Studio")
    S.labelled = {p.name for p in paths}
    new = [p for p in photos(FIRST + 40, skip=40) if p.name not in S.labelled][:FIRST]
    result = import_images(scale.client, project.id, new, wait=True, timeout=WAIT, **quiet)
    assert result.predictions.complete, result.predictions.errors
    S.truth = truth_of(result, [p.parent.name for p in new])
    S.used = {p.name for p in new} | S.labelled
    wait_until(settled, "the import's predictions written")


def serving_version(after: str) -> tuple[int, str] | None:
    """The task /next serves and its version, once the project's version is another than `after`.
    (/next is asked only then: Label Studio keeps serving a user the task it served last until it
    is labeled, as a labeler's open task stays open. Such a task keeps the prediction it was served
    with beside the new one, backend/writeback/opentasks.py: the version is what /next shows.)"""
    if get(f"/api/projects/{S.project}")["model_version"] in (after, None):
        return None
    served = get(f"/api/projects/{S.project}/next/")
    versions = {p["model_version"] for p in served.get("predictions") or []}
    if len(versions) != 1 or after in versions:
        return None
    return served["id"], versions.pop()


def one_each() -> Counter | None:
    """Predictions per task once every task holds one, but those the corrector may be served next
    (backend/writeback/opentasks.py: they keep the prediction they were served with beside the
    newest until the next submit); else None."""
    kept = set(requests.get(f"{S.backend.url}/versions", params={"project": S.project}, timeout=30).json()["kept_open"])
    assert len(kept) <= 16, kept  # a person's few candidates and the first tasks of two queues
    versions: dict[int, list[str]] = {}
    for p in predictions():
        versions.setdefault(p["task"], []).append(p["model_version"])
    S.extra = {t: v for t, v in versions.items() if len(v) > 1 and t not in kept}  # shown on a failure
    return None if S.extra else Counter({t: len(v) for t, v in versions.items()})


def round_of_corrections() -> list[int]:
    """CORRECTIONS corrections at a labeler's pace: each as soon as Label Studio serves a task of
    the previous correction's version (so the rest of a refresh is cut short, as while people
    label). Returns what each version cost in Label Studio requests until it was served."""
    start = wait_until(settled, "the backend idle before the round")
    done_before = {j["id"] for j in start["jobs"]}
    version = start["model_version"]
    for _ in range(CORRECTIONS):
        correct_next(S.truth)
        version = wait_until(lambda v=version: serving_version(v), "/next serving the correction's version")[1]
        assert version == get(f"/api/projects/{S.project}")["model_version"]
    info = wait_until(settled, "the round's last version written")
    jobs_done = [  # (a refresh whose version was replaced before its turn wrote nothing: skipped)
        j
        for j in info["jobs"]
        if j["id"] not in done_before and "ls_requests" in ((j.get("result") or {}).get("refresh") or {})
    ]
    assert jobs_done, info["jobs"]
    costs = [j["result"]["ls_requests"]["training"] + j["result"]["refresh"]["ls_requests"]["head"] for j in jobs_done]
    print(
        f"\n{len(jobs_done)} versions; LS requests until served: {costs}; refresh reports:",
        [j["result"]["refresh"]["ls_requests"] for j in jobs_done],
    )
    return costs


def test_2_a_correction_costs_the_same_when_the_project_doubles(scale):
    S.costs_small = round_of_corrections()
    new = [p for p in photos(FIRST + SECOND + 80, skip=40) if p.name not in S.used][:SECOND]
    result = import_images(scale.client, S.project, new, wait=True, timeout=WAIT, progress=False, log=lambda m: None)
    assert result.predictions.complete, result.predictions.errors
    S.truth.update(truth_of(result, [p.parent.name for p in new]))
    S.used |= {p.name for p in new}
    assert get(f"/api/projects/{S.project}")["task_number"] >= FIRST + SECOND
    S.costs_large = round_of_corrections()
    assert max(S.costs_small + S.costs_large) <= BOUND, (S.costs_small, S.costs_large)
    assert sum(S.costs_large) <= 1.2 * sum(S.costs_small) + CORRECTIONS, (S.costs_small, S.costs_large)


def test_3_a_burst_of_corrections_during_an_import_loses_nothing(scale):
    new = [p for p in photos(FIRST + SECOND + 400, skip=40) if p.name not in S.used][:300]
    imported = {}

    def run_import():
        imported["result"] = import_images(
            scale.client, S.project, new, wait=True, timeout=WAIT, progress=False, log=lambda m: None
        )

    worker = threading.Thread(target=run_import)
    worker.start()
    corrected = [correct_next(S.truth) for _ in range(4)]
    worker.join(WAIT)
    result = imported["result"]
    assert result.predictions.complete, result.predictions.errors
    info = wait_until(settled, "the burst's last version serving")
    annotated = {t["id"] for t in scale.client.iter_tasks(S.project, annotated_only=True)}
    assert set(corrected) <= annotated
    job = newest_job(info)
    assert job["result"]["n_train"] == len(annotated), job["result"]  # every annotation is in the version
    per_task = poll(
        one_each, "one prediction per task, but where someone may have the task open", WAIT, 0.5, lambda: f" {S.extra}"
    )
    unlabelled = {t["id"] for t in scale.client.iter_tasks(S.project, unlabeled_only=True)}
    assert unlabelled <= set(per_task), sorted(unlabelled - set(per_task))[:10]  # every photo predicted
