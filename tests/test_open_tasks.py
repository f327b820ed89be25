"""A task someone may have open in the labeling view keeps the prediction it was served with
(backend/writeback/opentasks.py): Label Studio refuses a submit whose `parent_prediction` was
deleted meanwhile, and a new version's head replaces exactly the tasks people are served.

First the record on its own (what is held, for whom, how long), then the real thing: a person's
submit, the task Label Studio serves them next, a version trained on the submit and written while
that task is open, and the second submit, from the prediction they were shown, accepted."""

from __future__ import annotations

import pytest
import requests

import scenes
from backend.writeback.lswrite import BULK_ROWS, QUIET_PAUSE, ROWS_PER_WRITE, SETTLE_PAUSE, pace
from backend.writeback.opentasks import FIRST_SERVED, HOLD, PER_PERSON, QUIET_S, OpenTasks
from lsfixture import poll
from lsproto.notes import waiting_version
from lsproto.results import choice_result
from rqfix import REDIS, redis_prefix  # noqa: F401 (fixture)
from sync.importer import import_images
from sync.project import connect_backend, ensure_project


@pytest.fixture(params=["files", "redis"])
def opened(request, tmp_path):
    """A record per project in `projects/<id>/open.json`, or in the real Redis under a prefix of
    the test's own (RQ workers: the webhook's replica and the refresh's worker share only Redis)."""
    if request.param == "files":
        yield lambda: OpenTasks(tmp_path)
        return
    from redis import Redis

    prefix = request.getfixturevalue("redis_prefix")
    conn = Redis.from_url(REDIS)
    try:
        yield lambda: OpenTasks(tmp_path / "unused", redis=conn, prefix=prefix)
    finally:
        conn.close()
    assert not (tmp_path / "unused").exists()


def rows(scores: dict[int, float], priorities: dict[int, float] | None = None) -> list[dict]:
    priorities = priorities or scores
    return [{"task": t, "score": s, "priority": priorities[t]} for t, s in scores.items()]


def test_a_submit_holds_what_its_person_is_served_next(opened):
    record = opened()
    record.note_queue("1", "v1", rows({t: t / 100 for t in range(10, 20)}))
    assert record.held("1") == {}  # nobody submitted: nothing held but a replaced queue's first tasks
    picks = record.note_submit("1", 7, 10, now=1000.0)
    assert picks == [11, 12, 13][:PER_PERSON]  # the task submitted is not served again
    assert record.held("1", now=1001.0) == {t: "v1" for t in picks}
    # the person submits what they were served: their next candidates replace the old ones
    assert record.note_submit("1", 7, 11, now=1010.0)[0] == 12
    assert 11 not in record.held("1", now=1011.0)
    # a second person: each is served past the other's, so both go one deeper
    assert len(record.note_submit("1", 8, 14, now=1012.0)) == PER_PERSON + 1
    # held for HOLD after a person's last submit, then let go
    assert 13 in record.held("1", now=1010.0 + HOLD - 1)
    assert record.held("1", now=1012.0 + HOLD + 1) == {}


def test_the_two_orders_label_studio_serves_from_are_both_held(opened):
    record = opened()
    # scores order 1, 2, 3, ...; queue keys the other way round
    record.note_queue(
        "1", "v1", rows({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4, 5: 0.5}, {1: 0.9, 2: 0.8, 3: 0.7, 4: 0.6, 5: 0.5})
    )
    picks = record.note_submit("1", 7, 99, now=0.0)
    assert set(picks) == {1, 2, 3} | {5, 4, 3}


def test_a_new_version_holds_the_first_tasks_of_the_queue_it_replaces(opened):
    record = opened()
    record.note_queue("1", "v1", rows({1: 0.1, 2: 0.2, 3: 0.3}))
    firsts = {1, 2}
    assert FIRST_SERVED == 2
    assert set(record.held("1", writing="v2")) == firsts  # the head of v2 is about to replace v1's queue
    record.note_queue("1", "v2", rows({4: 0.1, 5: 0.2}))
    assert set(record.held("1")) == firsts  # and they stay held while v2 serves
    record.note_submit("1", 7, 1, now=0.0)
    assert 1 not in record.held("1", now=0.0)  # annotated: nobody has it open
    # v3's write holds v2's first tasks and lets v1's go: it is the write that replaces what they hold
    assert set(record.held("1", writing="v3", now=HOLD * 10)) == {4, 5}
    record.note_queue("1", "v3", rows({6: 0.1}))
    assert set(record.held("1", now=HOLD * 10)) == {4, 5}  # v1's are let go two versions on


def test_new_tasks_of_the_same_version_join_its_queue(opened):
    record = opened()
    record.note_queue("1", "v1", rows({1: 0.5, 2: 0.6}))
    record.note_queue("1", "v1", rows({3: 0.1}))  # an import under v1: the new photo is the most useful
    assert record.note_submit("1", 7, 2, now=0.0)[:2] == [3, 1]


def test_the_rest_writes_small_while_someone_labels_and_in_bulk_once_nobody_has(opened):
    """A refresh's rest writes ROWS_PER_WRITE rows with a pause for a labeler's requests between
    two writes while someone submitted within QUIET_S, else BULK_ROWS (lswrite.py `pace`)."""
    record = opened()
    assert not record.labeling("1") and pace(record, "1") == (BULK_ROWS, QUIET_PAUSE)
    record.note_queue("1", "v0002", [{"task": t, "score": 0.5, "priority": t / 10} for t in range(1, 6)])
    record.note_submit("1", person=7, task=1, now=1000.0)
    assert record.labeling("1", now=1000.0 + QUIET_S - 1)
    assert not record.labeling("1", now=1000.0 + QUIET_S + 1)
    record.note_submit("1", person=8, task=2)
    assert record.labeling("1") and not record.labeling("2")
    assert pace(record, "1") == (ROWS_PER_WRITE, SETTLE_PAUSE) and pace(record, "2") == (BULK_ROWS, QUIET_PAUSE)
    assert ROWS_PER_WRITE < BULK_ROWS and SETTLE_PAUSE > QUIET_PAUSE


def test_api_replicas_on_redis_share_the_record(redis_prefix, tmp_path):  # noqa: F811 (fixture)
    """With REDIS_URL every API replica (and worker) reads the one record in Redis: a submit noted
    by the replica that got the webhook is held by the refresh on any other, whose files differ."""
    from backend.service import Backend
    from backend.settings import Settings

    def replica(name: str) -> Backend:
        env = {"REDIS_URL": REDIS, "TASVEER_QUEUE_PREFIX": redis_prefix, "TASVEER_DATA_DIR": str(tmp_path / name)}
        return Backend(Settings.from_env(env))

    one, two = replica("one"), replica("two")
    try:
        one.refresher.open.note_queue("5", "v1", rows({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4}))
        picks = two.refresher.open.note_submit("5", 7, 1)
        assert picks == [2, 3, 4] and set(one.refresher.open.held("5")) == {2, 3, 4}
        assert not list((tmp_path / "one").rglob("open.json")) and not list((tmp_path / "two").rglob("open.json"))
    finally:
        one.close()
        two.close()


CLASSES = ["buildings", "forest", "sea"]
WAIT = 240.0


def test_a_task_open_while_a_version_is_written_can_still_be_submitted(label_studio, shared_backend, tmp_path):
    ls, backend = label_studio, shared_backend
    client = ls.client()
    project = ensure_project(client, "open-task", CLASSES, sampling="uncertainty")
    connect_backend(client, project, backend.url)
    pid = project.id

    def get(path, **params):
        r = requests.get(f"{ls.url}{path}", params=params, headers=ls.headers, timeout=60)
        r.raise_for_status()
        return r.json()

    def settled(not_version=None):
        info = requests.get(f"{backend.url}/versions", params={"project": pid}, timeout=30).json()
        idle = info["jobs"]["running"] is None and info["jobs"]["pending"] is None
        vid = info["model_version"]
        ok = idle and vid not in ("INITIAL", not_version) and get(f"/api/projects/{pid}")["model_version"] == vid
        return info if ok else None

    def predictions() -> list[dict]:
        data = get("/api/predictions/", project=pid)
        return data.get("results", data) if isinstance(data, dict) else data

    def wait(check, what):
        return poll(check, what, WAIT, 0.5, lambda: "\n" + backend.log_tail(40))

    def submit(task: dict, label: str) -> requests.Response:
        """What the labeling view sends: the label, and the prediction it started from."""
        body = {"result": choice_result("choice", "image", label), "project": pid}
        body["parent_prediction"] = task["predictions"][0]["id"]
        return requests.post(f"{ls.url}/api/tasks/{task['id']}/annotations/", json=body, headers=ls.headers, timeout=60)

    paths, labels = scenes.sample(6, seed=21, classes=CLASSES)
    tree = tmp_path / "labeled"
    for path, label in zip(paths, labels):
        (tree / label).mkdir(parents=True, exist_ok=True)
        (tree / label / path.name).symlink_to(path)
    quiet = {"progress": False, "log": lambda m: None}
    import_images(client, pid, [tree], labels_from_folders=True, wait=False, **quiet)
    v1 = wait(settled, "a first version")["model_version"]
    new, _ = scenes.sample(8, seed=22, classes=CLASSES, skip=10)
    assert import_images(client, pid, new, wait=True, timeout=WAIT, **quiet).predictions.complete
    wait(settled, "the new photos' predictions written")

    first = get(f"/api/projects/{pid}/next/")  # "Label All Tasks"
    assert first["predictions"] and first["predictions"][0]["model_version"] == v1
    label = next(c for c in CLASSES if c != first["predictions"][0]["result"][0]["value"]["choices"][0])
    assert submit(first, label).status_code == 201  # a correction: a version trains on it
    second = get(f"/api/projects/{pid}/next/")  # what the labeling view shows next
    parent = second["predictions"][0]
    assert parent["model_version"] == v1
    v2 = wait(lambda: settled(v1), "the version trained on the correction, written")["model_version"]
    info = settled(v1)
    assert second["id"] in info["kept_open"], info["kept_open"]  # the backend knew it was open

    # every other unlabeled task answers with v2, one prediction each; the open one keeps v1's
    preds = predictions()
    mine = {p["id"]: p for p in preds if p["task"] == second["id"]}
    assert parent["id"] in mine and {p["model_version"] for p in mine.values()} == {v1, v2}, mine
    labeled = {t["id"] for t in get("/api/tasks/", project=pid, page_size=100)["tasks"] if t["total_annotations"]}
    others = [p for p in preds if p["task"] not in labeled and p["task"] not in set(info["kept_open"])]
    # (a near-duplicate waiting behind its group's other member carries v2's waiting version)
    assert others and all(p["model_version"] in (v2, waiting_version(v2)) for p in others), others
    # a reload of the labeling stream serves the same task (locked to its person) with the new
    # version's answer: Label Studio lists only the project's version there
    again = get(f"/api/projects/{pid}/next/")
    assert again["id"] == second["id"] and [p["model_version"] for p in again["predictions"]] == [v2]

    # the person submits the task they had open, from the prediction they were shown
    r = submit(second, second["predictions"][0]["result"][0]["value"]["choices"][0])
    assert r.status_code == 201, r.text  # before: 400, parent_prediction "object does not exist"
    v3 = wait(lambda: settled(v2), "the version after the second submit")["model_version"]
    assert second["id"] not in settled(v2)["kept_open"]
    # once submitted, the task holds the newest version only (its label check)
    wait(lambda: {p["model_version"] for p in predictions() if p["task"] == second["id"]} == {v3}, "v3 only")
