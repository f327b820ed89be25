"""`tasveer import` against a real Label Studio (and the real backend for predictions)."""

from __future__ import annotations

import time

import pytest
import requests

from lsfixture import backend_on, scene_tree
from lsfixture import run_tasveer as tasveer
from lsproto.notes import without_notes
from sync.importer import ImportProblem, import_images
from sync.predictions import ensure_predictions, tasks_with_predictions
from sync.project import connect_backend, ensure_project, verify_webhook

pytestmark = pytest.mark.labelstudio

CLASSES = ["buildings", "forest", "sea"]


def download(ls, path: str) -> bytes:
    resp = requests.get(ls.url + path, headers=ls.headers, timeout=10)
    resp.raise_for_status()
    return resp.content


def test_import_creates_one_task_per_image_in_order(label_studio, shared_data, tmp_path):
    client = label_studio.client()
    project = ensure_project(client, "import-plain", CLASSES)
    files = list(scene_tree(shared_data, tmp_path / "imgs", 10))
    result = import_images(client, project.id, [tmp_path / "imgs"], wait=False, progress=False, log=lambda m: None)
    assert len(result.task_ids) == len(files) == 30 and not result.skipped
    for task_id, path in zip(result.task_ids, sorted(files)):
        task = client.tasks.get(id=task_id)
        assert task.data["image"].startswith(f"/data/upload/{project.id}/")
        assert download(label_studio, task.data["image"]) == path.read_bytes()


def test_import_labels_from_folders_creates_annotations(label_studio, shared_data, tmp_path):
    client = label_studio.client()
    project = ensure_project(client, "import-labeled", CLASSES)
    truth = scene_tree(shared_data, tmp_path / "tree", 4)
    result = import_images(
        client,
        project.id,
        [tmp_path / "tree"],
        labels_from_folders=True,
        wait=False,
        progress=False,
        log=lambda m: None,
    )
    assert len(result.task_ids) == 12 and len(result.annotation_ids) == 12
    by_content = {p.read_bytes(): cls for p, cls in truth.items()}
    for task_id in result.task_ids:
        task = client.tasks.get(id=task_id)
        anns = requests.get(
            f"{label_studio.url}/api/tasks/{task_id}/annotations/", headers=label_studio.headers, timeout=10
        ).json()
        assert len(anns) == 1
        [res] = anns[0]["result"]
        assert res["from_name"] == "choice" and res["to_name"] == "image" and res["type"] == "choices"
        assert res["value"]["choices"] == [by_content[download(label_studio, task.data["image"])]]


def test_folder_name_not_a_label_uploads_nothing(label_studio, shared_data, tmp_path):
    client = label_studio.client()
    project = ensure_project(client, "import-badlabel", ["buildings", "forest"])
    scene_tree(shared_data, tmp_path / "tree", 2, classes=["buildings", "glacier"])
    with pytest.raises(ImportProblem, match="glacier"):
        import_images(
            client,
            project.id,
            [tmp_path / "tree"],
            labels_from_folders=True,
            wait=False,
            progress=False,
            log=lambda m: None,
        )
    assert client.projects.get(id=project.id).task_number == 0


def test_cli_skips_non_images_with_a_message(label_studio, shared_data, tmp_path):
    client = label_studio.client()
    project = ensure_project(client, "import-cli", CLASSES)
    scene_tree(shared_data, tmp_path / "mixed", 2)
    (tmp_path / "mixed" / "readme.txt").write_text("not an image")
    (tmp_path / "mixed" / "forest" / "fake.jpg").write_bytes(b"this is no jpeg")
    single = sorted((tmp_path / "mixed" / "sea").iterdir())[0]
    proc = tasveer(
        "import",
        "--project",
        str(project.id),
        "--url",
        label_studio.url,
        "--token",
        label_studio.token,
        "--no-wait",
        "--quiet",
        str(tmp_path / "mixed"),
        str(single),
    )
    assert proc.returncode == 0, proc.stderr
    assert "readme.txt: not an image file extension (.txt)" in proc.stderr
    assert "fake.jpg: not a readable image" in proc.stderr
    assert "imported 7 images" in proc.stdout and "skipped 2" in proc.stdout
    assert client.projects.get(id=project.id).task_number == 7
    # the count the task index catches up by (lsclient task_count: the counts endpoint), for this project alone
    assert client.task_count(project.id) == 7
    assert client.task_count(ensure_project(client, "import-cli-other", CLASSES).id) == 0


def test_cli_readable_errors(label_studio, tmp_path):
    image = tmp_path / "x.txt"
    image.write_text("x")
    proc = tasveer("import", "--project", "1", "--url", "http://127.0.0.1:9", "--token", "t", str(image))
    assert proc.returncode == 2 and "not reachable" in proc.stderr and "Traceback" not in proc.stderr
    proc = tasveer("import", "--project", "1", "--url", label_studio.url, "--token", "wrong-token", str(image))
    assert proc.returncode == 2 and "rejected the token" in proc.stderr and "Traceback" not in proc.stderr
    proc = tasveer("import", "--project", "99999", "--url", label_studio.url, "--token", label_studio.token, str(image))
    assert proc.returncode == 2 and "project 99999 not found" in proc.stderr and "Traceback" not in proc.stderr
    help_text = tasveer("import", "--help").stdout
    assert "--labels-from-folders" in help_text and "--timeout" in help_text


def test_wait_without_backend_is_refused(label_studio, shared_data, tmp_path):
    client = label_studio.client()
    project = ensure_project(client, "import-nobackend", CLASSES)
    scene_tree(shared_data, tmp_path / "t", 1)
    with pytest.raises(ImportProblem, match="no ML backend"):
        import_images(client, project.id, [tmp_path / "t"], wait=True, progress=False, log=lambda m: None)


# ------------------------------------------------------------ with the real backend


@pytest.fixture(scope="module")
def import_backend(label_studio, tmp_path_factory):
    """One backend process for the imports below (a project each): one start, and the photos of the
    first import are in its embedding cache for the second (nothing below is about a cold cache)."""
    with backend_on(label_studio, tmp_path_factory.mktemp("import-backend"), media=False) as server:
        yield server


def test_every_imported_task_gets_a_prediction(label_studio, import_backend, shared_data, tmp_path):
    client = label_studio.client()
    project = ensure_project(client, "import-predicted", CLASSES)
    backend = import_backend
    connect_backend(client, project, backend.url)
    verify_webhook(client, project.id, backend.url)
    scene_tree(shared_data, tmp_path / "imgs", 8)
    result = import_images(
        client, project.id, [tmp_path / "imgs"], wait=True, timeout=240, progress=False, log=lambda m: None
    )
    report = result.predictions
    assert report.complete, f"missing {report.missing}: {report.errors}; backend log:\n{backend.log_tail()}"
    assert set(result.task_ids) <= tasks_with_predictions(client, project.id)
    labels = set(CLASSES)
    for pred in requests.get(
        f"{label_studio.url}/api/predictions/", params={"project": project.id}, headers=label_studio.headers, timeout=10
    ).json():
        [res] = without_notes(pred["result"])  # besides the task list's note (lsproto/notes.py)
        assert res["from_name"] == "choice" and res["value"]["choices"][0] in labels

    # tasks whose predictions are gone get new ones through LS's retrieve-predictions action (once
    # the backend has finished writing, so that no late write of its own refills them)
    def writes_done():
        info = requests.get(f"{backend.url}/projects/{project.id}/jobs", timeout=10).json()
        return info["background"] and all(r.get("finished_at") for r in info["background"])

    deadline = time.monotonic() + 120
    while not writes_done() and time.monotonic() < deadline:
        time.sleep(0.5)
    victims = result.task_ids[:5]
    for pred in requests.get(
        f"{label_studio.url}/api/predictions/", params={"project": project.id}, headers=label_studio.headers, timeout=10
    ).json():
        if pred["task"] in victims:
            requests.delete(
                f"{label_studio.url}/api/predictions/{pred['id']}/", headers=label_studio.headers, timeout=10
            ).raise_for_status()
    assert not set(victims) & tasks_with_predictions(client, project.id)
    again = ensure_predictions(client, project.id, victims, wait_backend=0, timeout=120, progress=False)
    assert again.complete, f"missing {again.missing}: {again.errors}; backend log:\n{backend.log_tail()}"
    assert set(victims) <= again.retrieved_for


def test_predictions_retrieved_through_label_studio_are_the_ones_it_shows(
    label_studio, import_backend, shared_data, tmp_path
):
    """A backend that writes nothing on TASKS_CREATED (here: its webhook removed, as when it is too
    slow under load) leaves the import to LS's retrieve action; the project must then show the
    retrieved version, not the backend's title LS set on connecting (no prediction of that exists,
    so the score column would be empty and LS would serve tasks in id order)."""
    client = label_studio.client()
    project = ensure_project(client, "import-retrieved", CLASSES)
    connect_backend(client, project, import_backend.url)
    hooks = requests.get(
        f"{label_studio.url}/api/webhooks/", params={"project": project.id}, headers=label_studio.headers, timeout=10
    ).json()
    assert hooks, "connecting a backend creates its webhook"
    for hook in hooks:
        requests.delete(
            f"{label_studio.url}/api/webhooks/{hook['id']}/", headers=label_studio.headers, timeout=10
        ).raise_for_status()
    assert client.model_version(project.id) == "tasveer"  # LS's choice on connecting
    scene_tree(shared_data, tmp_path / "imgs", 4)
    result = import_images(
        client,
        project.id,
        [tmp_path / "imgs"],
        wait=True,
        wait_backend=0,
        timeout=240,
        progress=False,
        log=lambda m: None,
    )
    report = result.predictions
    assert report.complete and set(report.retrieved_for) == set(result.task_ids), report
    assert client.model_versions(project.id) == {"INITIAL": 12}
    assert client.model_version(project.id) == "INITIAL", report.errors
    preds = requests.get(
        f"{label_studio.url}/api/predictions/", params={"project": project.id}, headers=label_studio.headers, timeout=10
    ).json()
    first = requests.get(
        f"{label_studio.url}/api/projects/{project.id}/next/", headers=label_studio.headers, timeout=30
    )
    assert first.json()["id"] == min(preds, key=lambda p: p["score"])["task"]  # served by uncertainty


def test_labels_from_folders_with_backend_trains_and_predicts(label_studio, import_backend, shared_data, tmp_path):
    client = label_studio.client()
    project = ensure_project(client, "import-labeled-backend", CLASSES)
    backend = import_backend
    connect_backend(client, project, backend.url)
    scene_tree(shared_data, tmp_path / "tree", 6)
    proc = tasveer(
        "import",
        "--project",
        str(project.id),
        "--url",
        label_studio.url,
        "--token",
        label_studio.token,
        "--labels-from-folders",
        "--timeout",
        "240",
        "--quiet",
        str(tmp_path / "tree"),
    )
    assert proc.returncode == 0, proc.stderr + "\nbackend log:\n" + backend.log_tail()
    assert "all 18 tasks have a prediction" in proc.stdout
