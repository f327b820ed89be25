"""Near-duplicates and unusual photos in a real Label Studio with the real backend (backend/collection/):
photos made at run time from the shared ones (a mirror image, a crop and a re-encode of three
unlabeled photos; three out-of-domain images: tests/derived.py) land in one duplicate group each,
in the "Duplicates" tab (asked of Label Studio's API) and high in "Unusual photos"; a duplicate
waits after the rest of "Needs review"'s order with the note "duplicate of #<id>"; the JSON routes
answer the groups, the leaky-evaluation report and the unusual scores with their two parts.

The tests build on each other in file order (one project, on the session's shared backend)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import requests

import scenes
from derived import near_duplicate, out_of_domain
from lsfixture import poll
from lsproto.notes import GROUP_COLUMN, NOTE_COLUMN, QUEUE_COLUMN, UNUSUAL_COLUMN
from lsproto.views import DUPLICATES, NEEDS_REVIEW, UNUSUAL_PHOTOS
from sync.importer import import_images
from sync.project import connect_backend, ensure_project
from sync.views import ensure_views

pytestmark = pytest.mark.labelstudio

CLASSES = ["forest", "glacier", "sea"]
WAIT = 300.0
W = SimpleNamespace(backend=None)


def wait_until(check, what: str, timeout: float = WAIT):
    return poll(check, what, timeout, 1.0, lambda: "\n" + W.backend.log_tail(60))


def ls_get(path: str, **params):
    r = requests.get(f"{W.ls.url}{path}", params=params, headers=W.ls.headers, timeout=60)
    r.raise_for_status()
    return r.json()


def backend_get(path: str, **params):
    return requests.get(f"{W.backend.url}{path}", params=params, timeout=30)


def tab(title: str) -> list[dict]:
    """A tab's tasks in its order, as the data manager lists them."""
    return ls_get("/api/tasks/", view=W.views[title], project=W.project, page_size=200, fields="all")["tasks"]


def name_of(task: dict) -> str:
    return task["data"]["image"].rsplit("/", 1)[-1].split("-", 1)[-1]


@pytest.fixture(scope="module")
def world(label_studio, shared_data, shared_backend):
    W.__dict__.update(ls=label_studio, backend=shared_backend, client=label_studio.client())
    return W


def test_1_a_version_trained_on_labeled_photos(world, tmp_path):
    project = ensure_project(world.client, "curation", CLASSES, sampling="uncertainty")
    connect_backend(world.client, project, world.backend.url)
    world.project = project.id
    world.views = ensure_views(world.client, project.id)
    assert {DUPLICATES, UNUSUAL_PHOTOS} <= set(world.views)
    paths, labels = scenes.sample(6, seed=11, classes=CLASSES)
    tree = tmp_path / "labeled"
    for path, label in zip(paths, labels):
        (tree / label).mkdir(parents=True, exist_ok=True)
        (tree / label / path.name).symlink_to(path)
    import_images(world.client, project.id, [tree], labels_from_folders=True, wait=False, progress=False, log=print)

    def trained():
        info = backend_get("/versions", project=project.id).json()
        ready = info["model_version"] not in ("INITIAL", None) and info["jobs"]["running"] is None
        return ready and ls_get(f"/api/projects/{project.id}")["model_version"] == info["model_version"]

    wait_until(trained, "a trained version serving in Label Studio")


def test_2_injected_duplicates_and_odd_photos_arrive(world, tmp_path):
    """Unlabeled photos, near duplicates of three of them, three out-of-domain images, one import."""
    paths, labels = scenes.sample(5, seed=11, classes=CLASSES, skip=6)
    rng = random.Random(7)
    folder = tmp_path / "new"
    folder.mkdir()
    world.originals = {}
    world.truth = {path.name: label for path, label in zip(paths, labels)}  # what a person would answer
    for path in paths:
        (folder / path.name).symlink_to(path)
    for kind, path in zip(("flip", "crop", "jpeg"), paths[:3]):
        made = f"copy-{kind}-{path.name}"
        (folder / made).write_bytes(near_duplicate(path.read_bytes(), kind, rng))
        world.originals[made] = path.name
        world.truth[made] = world.truth[path.name]
    world.odd = {f"odd-{kind}.jpg" for kind in ("noise", "text", "digits")}
    for name in world.odd:
        (folder / name).write_bytes(out_of_domain(name[4:-4], rng, size=160))
    result = import_images(world.client, world.project, [folder], wait=True, timeout=WAIT, progress=False, log=print)
    assert result.predictions.complete, result.predictions.errors
    tasks = ls_get("/api/tasks/", project=world.project, page_size=200)["tasks"]
    world.ids = {name_of(t): t["id"] for t in tasks}


def test_3_each_copy_is_in_its_original_s_group(world):
    def groups():
        r = backend_get(f"/projects/{world.project}/duplicates")
        return r.json() if r.status_code == 200 and len(r.json()["groups"]) >= 3 else None

    answer = wait_until(groups, "three duplicate groups")
    by_task = {t: g for g in answer["groups"] for t in g["tasks"]}
    for made, original in world.originals.items():
        group = by_task.get(world.ids[made])
        assert group is not None and world.ids[original] in group["tasks"], (made, answer["groups"])
        assert group["exact"] is False
    assert "leaky_evaluation" in answer and isinstance(answer["leaky_evaluation"]["groups"], list)


def test_4_the_duplicates_tab_lists_every_member_with_its_group(world):
    wanted = {world.ids[n] for pair in world.originals.items() for n in pair}

    def listed():
        tasks = tab(DUPLICATES)
        return tasks if wanted <= {t["id"] for t in tasks} else None

    tasks = wait_until(listed, "the injected pairs in the Duplicates tab")
    marks = {t["id"]: t["data"][GROUP_COLUMN] for t in tasks}
    for made, original in world.originals.items():
        assert marks[world.ids[made]] == marks[world.ids[original]], marks
        assert f"group {min(world.ids[made], world.ids[original]):06d}" in marks[world.ids[made]]
    assert [t["data"][GROUP_COLUMN] for t in tasks] == sorted(marks.values())  # a group's members together


def test_5_odd_photos_rank_high_in_unusual_photos(world):
    answer = backend_get(f"/projects/{world.project}/unusual", limit=6).json()
    top = [u["task"] for u in answer["unusual"]]
    odd_ids = {world.ids[n] for n in world.odd}
    assert len(odd_ids & set(top)) >= 2, (answer, odd_ids)
    assert all({"score", "rest", "known"} <= set(u) for u in answer["unusual"])
    assert [u["score"] for u in answer["unusual"]] == sorted((u["score"] for u in answer["unusual"]), reverse=True)
    assert backend_get(f"/projects/{world.project}/unusual", limit="zero").status_code == 422  # RequestError
    # the marks reach Label Studio after the backend's answer (the collection's rewrite, on a thread of
    # its own at a lower priority): the tab follows
    shown = wait_until(
        lambda: (lambda ts: ts if odd_ids & {t["id"] for t in ts[:6]} else None)(tab(UNUSUAL_PHOTOS)),
        "an odd photo among the first six of the Unusual photos tab",
    )
    scores = [float(t["data"][UNUSUAL_COLUMN].split(" ")[0]) for t in shown]
    assert scores == sorted(scores, reverse=True)


def test_6_a_duplicate_comes_after_the_rest_of_needs_review(world):
    tasks = tab(NEEDS_REVIEW)
    keys = [t["data"].get(QUEUE_COLUMN) or "" for t in tasks]
    waiting = [i for i, t in enumerate(tasks) if "duplicate of #" in (t["data"].get(NOTE_COLUMN) or "")]
    assert len(waiting) >= 3, [(name_of(t), t["data"].get(NOTE_COLUMN)) for t in tasks]
    first_waiting = min(waiting)
    assert all("duplicate of #" in (tasks[i]["data"].get(NOTE_COLUMN) or "") for i in range(first_waiting, len(tasks)))
    assert all(keys[i] > "1" for i in waiting) and all(keys[i] < "1" for i in range(first_waiting))
    for i in waiting:  # each waits behind another member of its group, named in its note
        other = int(tasks[i]["data"][NOTE_COLUMN].split("duplicate of #")[1].split()[0])
        assert tasks[i]["data"][GROUP_COLUMN] == next(t for t in tasks if t["id"] == other)["data"][GROUP_COLUMN]


def test_6b_label_all_tasks_serves_the_rest_of_the_queue_before_a_second_member_of_a_group(world):
    """What a person pressing "Label All Tasks" gets (Label Studio's uncertainty sampling, which orders
    by the score, the confidence): as many photos as are not waiting duplicates, each submitted, and
    never two members of one group among them (a twin's prediction is of the version's
    waiting_version, which Label Studio serves only once the project's version has nothing left)."""
    from lsproto.notes import is_waiting_version
    from lsproto.results import choice_result

    project = ls_get(f"/api/projects/{world.project}")
    tasks = tab(NEEDS_REVIEW)
    waiting = [t for t in tasks if "duplicate of #" in (t["data"].get(NOTE_COLUMN) or "")]
    for task in waiting:  # each waiting twin's prediction names the waiting version of the project's
        versions = {p["model_version"] for p in ls_get(f"/api/tasks/{task['id']}")["predictions"]}
        assert any(is_waiting_version(v) and v.startswith(project["model_version"]) for v in versions), versions
    unlabeled = [t for t in tasks if not t.get("total_annotations")]
    groups = backend_get(f"/projects/{world.project}/duplicates").json()["groups"]
    group_of = {t: g["id"] for g in groups for t in g["tasks"]}
    served = []
    for _ in range(len(unlabeled) - len(waiting)):
        task = ls_get(f"/api/projects/{world.project}/next")
        served.append(task["id"])
        truth = world.truth.get(name_of(task), CLASSES[0])  # an out-of-domain image: any label
        r = requests.post(
            f"{world.ls.url}/api/tasks/{task['id']}/annotations/",
            headers=world.ls.headers,
            timeout=60,
            json={"result": choice_result("choice", "image", truth), "project": world.project},
        )
        assert r.status_code == 201, r.text
    met = [group_of[t] for t in served if t in group_of]
    assert len(met) == len(set(met)), (served, group_of)
    assert len(set(served)) == len(served)


def test_7_labeled_copies_are_reported_as_leaky_evaluation_on_the_model_page(world):
    """A person labels a photo and its near copy (as submitting in Label Studio does); once a version
    is trained on them, the duplicates answer and the model page say the evaluation is leaky."""
    from lsproto.results import choice_result

    made, original = next(iter(world.originals.items()))
    for task_id in (world.ids[original], world.ids[made]):
        r = requests.post(
            f"{world.ls.url}/api/tasks/{task_id}/annotations/",
            headers=world.ls.headers,
            timeout=60,
            json={"result": choice_result("choice", "image", CLASSES[0]), "project": world.project},
        )
        assert r.status_code == 201, r.text

    def leaky():
        answer = backend_get(f"/projects/{world.project}/duplicates").json()
        groups = answer["leaky_evaluation"]["groups"]
        return next((g for g in groups if world.ids[made] in g["tasks"]), None)

    group = wait_until(leaky, "the labeled copies in the leaky-evaluation report")
    assert set(group["tasks"]) == {world.ids[made], world.ids[original]} and group["agree"] is True
    page = backend_get(f"/projects/{world.project}/page")
    assert page.status_code == 200
    text = page.text
    assert "near-duplicate groups" in text and "unusual photos" in text, text[:2000]
    assert "Leaky evaluation:" in text and "labeled copies" in text
