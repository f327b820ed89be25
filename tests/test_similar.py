"""Similar photos and "label these like this one" against a real Label Studio and a real backend
process, on real shared photos: a task's nearest neighbours over HTTP and from `tasveer similar`
(run as a subprocess), the refusals of the label-like action, and the action itself: annotations
in Label Studio in the chosen person's name, and the next trained version's manifest listing them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

import scenes
from lsfixture import poll, run_tasveer
from sync.importer import import_images
from sync.project import connect_backend, ensure_project
from test_params_promotion import wait_idle_version
from training.store import ModelStore

pytestmark = pytest.mark.labelstudio
CLASSES = ["forest", "sea", "street"]
LABELED, UNLABELED = 3, 5  # photos per class


def folder_tree(root: Path, paths, labels) -> Path:
    """ROOT/<label>/<photo> symlinks (the shared photos are read in place, never copied)."""
    for path, label in zip(paths, labels):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / path.name).symlink_to(path)
    return root


def true_classes(ls, pid: int, photos: dict[str, str]) -> dict[int, str]:
    """task id -> the folder (class) of its photo, from the uploaded file's name (the project's task
    list: /api/tasks would make Label Studio ask the backend for predictions)."""
    out = {}
    listed = requests.get(
        f"{ls.url}/api/projects/{pid}/tasks/", params={"page_size": 1000}, headers=ls.headers, timeout=60
    )
    for task in listed.json():
        url = str(task["data"].get("image"))
        name = url.rsplit("/", 1)[-1].split("-", 1)[-1]
        out[int(task["id"])] = photos[name]
    return out


@pytest.fixture(scope="module")
def project(label_studio, shared_backend, shared_data, tmp_path_factory):
    """A project on the shared backend: 9 labelled photos (trained on), 15 unlabelled, every one
    predicted and so in the collection: (pid, backend url, {task: true class}, {task: label given},
    the backend's data dir)."""
    client, tmp = label_studio.client(), tmp_path_factory.mktemp("similar")
    proj = ensure_project(client, "similar-photos", CLASSES)
    connect_backend(client, proj, shared_backend.url)
    paths, labels = scenes.sample(LABELED, seed=41, classes=CLASSES)
    more, more_labels = scenes.sample(UNLABELED, seed=41, classes=CLASSES, skip=LABELED)
    photos = {p.name: lab for p, lab in zip(paths + more, labels + more_labels)}
    quiet = {"wait": False, "progress": False, "log": lambda m: None}
    import_images(client, proj.id, [folder_tree(tmp / "labeled", paths, labels)], labels_from_folders=True, **quiet)
    wait_idle_version(shared_backend.url, proj.id)
    batch = tmp / "batch"
    batch.mkdir()
    for path in more:
        (batch / path.name).symlink_to(path)
    import_images(client, proj.id, [batch], **quiet)
    truth = true_classes(label_studio, proj.id, photos)
    given = {t: truth[t] for t in sorted(truth)[: len(paths)]}  # the first tasks came with their folder's label
    last = max(truth)

    def collected():
        r = requests.get(f"{shared_backend.url}/projects/{proj.id}/tasks/{last}/similar", timeout=60)
        return r.status_code == 200 and r.json()["collection"] == len(truth)

    poll(collected, "every task in the collection (predicted)", 300, 1.0)
    return proj.id, shared_backend.url, truth, given, shared_backend.data_dir


def similar(url: str, pid: int, task: int, k: int = 5) -> requests.Response:
    return requests.get(f"{url}/projects/{pid}/tasks/{task}/similar", params={"k": k}, timeout=60)


def test_neighbours_over_http_and_from_the_cli(project, label_studio):
    pid, url, truth, given, _ = project
    unlabeled = [t for t in truth if t not in given]
    body = similar(url, pid, unlabeled[0]).json()
    assert body["query"]["task"] == unlabeled[0] and body["query"]["label"] is None
    near = body["neighbours"]
    assert len(near) == 5 and unlabeled[0] not in [n["task"] for n in near]
    sims = [n["similarity"] for n in near]
    assert sims == sorted(sims, reverse=True) and all(-1 <= s <= 1 for s in sims)
    for n in [body["query"], *near]:
        assert n["predicted"] in CLASSES and 0 <= n["confidence"] <= 1
        assert n["label"] == given.get(n["task"])  # a person's label where one was given, else none
        assert n["image"] == f"/projects/{pid}/tasks/{n['task']}/image" and f"data?task={n['task']}" in n["link"]
    # the predictions are the serving version's, as written to Label Studio (what the gallery shows)
    listed = requests.get(
        f"{label_studio.url}/api/predictions/", params={"project": pid}, headers=label_studio.headers, timeout=60
    )
    written = {
        p["task"]: p["result"][0]["value"]["choices"][0]
        for p in listed.json()
        if p["model_version"] == body["version"] and p["result"]
    }
    assert {n["task"]: n["predicted"] for n in near} == {n["task"]: written[n["task"]] for n in near}
    # the neighbours are mostly photos of the same scene: 15 queries, 5 neighbours each
    same = [truth[n["task"]] == truth[q] for q in unlabeled for n in similar(url, pid, q).json()["neighbours"]]
    assert sum(same) / len(same) >= 0.6, sum(same) / len(same)

    argv = ("similar", str(unlabeled[0]), "--k", "5", "--project", str(pid), "--backend", url)
    out = run_tasveer(*argv, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["neighbours"] == near
    out = run_tasveer(*argv)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "similarity" in lines[1] and "prediction" in lines[1] and "confidence" in lines[1]
    assert [int(line.split()[1]) for line in lines[3:8]] == [n["task"] for n in near]
    assert f"{near[0]['similarity']:.3f}" in lines[3]
    helped = run_tasveer("similar", "--help")
    assert helped.returncode == 0 and "TASK_ID" in helped.stdout and "--k" in helped.stdout

    assert similar(url, pid, unlabeled[0], k=0).status_code == 422
    assert similar(url, pid, 10**9).status_code == 404
    bad = run_tasveer("similar", "999999999", "--project", str(pid), "--backend", url)
    assert bad.returncode == 2 and "not in project" in bad.stderr


def annotations_of(label_studio, task: int) -> list[dict]:
    r = requests.get(f"{label_studio.url}/api/tasks/{task}/annotations/", headers=label_studio.headers, timeout=60)
    r.raise_for_status()
    return r.json()


def test_label_like_refuses_bad_requests_and_writes_nothing(project, label_studio, shared_data, tmp_path):
    pid, url, truth, given, _ = project
    client = label_studio.client()
    other = ensure_project(client, "similar-other", CLASSES)  # no backend: a task of another project
    (path,), _ = scenes.sample(1, seed=43, classes=["sea"])
    foreign = import_images(client, other.id, [path], wait=False, progress=False, log=lambda m: None).task_ids[0]
    unlabeled = [t for t in truth if t not in given]

    def post(body):
        return requests.post(f"{url}/projects/{pid}/label-like", json=body, timeout=60)

    cases = [
        ({"task_ids": unlabeled[:2], "label": "glacier"}, 422, "not in project"),
        ({"task_ids": list(range(1, 202)), "label": "sea"}, 422, "at most 200 tasks"),
        ({"task_ids": [unlabeled[0], foreign], "label": "sea"}, 404, f"no task {foreign}"),
        (
            {"task_ids": unlabeled[:2], "label": "sea", "annotator": "nobody@nowhere.test"},
            422,
            "not a Label Studio user",
        ),
        ({"task_ids": [], "label": "sea"}, 422, "non-empty"),
        ({"task_ids": ["1"], "label": "sea"}, 422, "whole numbers"),
    ]
    for body, status, says in cases:
        answer = post(body)
        assert answer.status_code == status and says in answer.json()["error"], (body, answer.text)
    assert all(not annotations_of(label_studio, t) for t in [*unlabeled[:2], foreign])


def test_label_like_writes_the_persons_annotations_and_the_next_version_trains_on_them(project, label_studio):
    pid, url, truth, given, data_dir = project
    email, _ = label_studio.new_user_with_pat()
    person = next(u.id for u in label_studio.client().users.list() if u.email == email)
    unlabeled = [t for t in truth if t not in given]
    query = next(t for t in unlabeled if truth[t] == "sea")
    near = similar(url, pid, query, k=8).json()["neighbours"]
    chosen = [n["task"] for n in near if n["task"] in unlabeled and truth[n["task"]] == "sea"][:3]
    assert len(chosen) >= 2, near  # a sea photo has other sea photos among its nearest
    chosen = [query, *chosen]
    before = wait_idle_version(url, pid)["versions"]

    answer = requests.post(
        f"{url}/projects/{pid}/label-like", json={"task_ids": chosen, "label": "sea", "annotator": email}, timeout=120
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["annotator"]["id"] == person and body["annotator"]["email"] == email
    assert [c["task"] for c in body["created"]] == chosen and not body["failed"] and body["held_training"]
    for created in body["created"]:
        (ann,) = annotations_of(label_studio, created["task"])
        assert ann["id"] == created["annotation"] and ann["completed_by"] == person
        assert ann["result"][0]["value"]["choices"] == ["sea"] and not ann["was_cancelled"]
    labels = similar(url, pid, query, k=8).json()
    assert labels["query"]["label"] == "sea"

    info = wait_idle_version(url, pid, not_in=before)
    new = [v for v in info["versions"] if v not in before]
    store = ModelStore(data_dir / "projects" / str(pid) / "models")
    first = store.manifest(new[0])
    trained = first["extra"]  # what the training read from Label Studio (backend/jobs/trainer.py)
    assert set(chosen) <= set(trained["tasks"]), trained["tasks"]  # the first training after it saw them all
    assert {c["annotation"] for c in body["created"]} <= set(trained["annotations"])
    assert len(trained["tasks"]) == len(given) + len(chosen)

    again = requests.post(f"{url}/projects/{pid}/label-like", json={"task_ids": chosen, "label": "sea"}, timeout=120)
    assert again.status_code == 200 and again.json()["created"] == [] and again.json()["unchanged"] == chosen
