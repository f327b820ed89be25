"""`tasveer import --skip-duplicates` against a real Label Studio and the real backend: exact and near
duplicates of photos already in the project, and of earlier photos of the same upload, are left out
before anything is uploaded, and the command says how many and which."""

from __future__ import annotations

import random

import pytest
import requests

from derived import near_duplicate
from lsfixture import run_tasveer as tasveer
from lsfixture import scene_tree
from sync.project import connect_backend, ensure_project

pytestmark = pytest.mark.labelstudio

CLASSES = ["buildings", "forest", "sea"]


def task_images(ls, pid: int) -> list[bytes]:
    tasks = requests.get(
        f"{ls.url}/api/tasks/", params={"project": pid, "page_size": 1000}, headers=ls.headers, timeout=30
    ).json()["tasks"]
    return [requests.get(ls.url + t["data"]["image"], headers=ls.headers, timeout=10).content for t in tasks]


def import_cli(ls, backend, pid: int, folder, *more: str):
    return tasveer(
        "import", "--project", str(pid), "--url", ls.url, "--token", ls.token, "--backend", backend.url,
        "--data-dir", "", "--timeout", "240", "--quiet", *more, str(folder),
    )  # fmt: skip


def test_skip_duplicates_leaves_out_exact_and_near_copies(label_studio, shared_backend, shared_data, tmp_path):
    client = label_studio.client()
    project = ensure_project(client, "import-skip-duplicates", CLASSES)
    connect_backend(client, project, shared_backend.url)
    first = sorted(scene_tree(shared_data, tmp_path / "first", 4))  # 12 photos
    proc = import_cli(label_studio, shared_backend, project.id, tmp_path / "first")
    assert proc.returncode == 0, proc.stderr + shared_backend.log_tail()

    rng = random.Random(7)
    second = tmp_path / "second"
    second.mkdir()
    made = {
        "a_copy.jpg": first[0].read_bytes(),  # exact duplicate of a task
        "b_copy.jpg": first[5].read_bytes(),
        "c_flip.jpg": near_duplicate(first[1].read_bytes(), "flip", rng),  # near duplicates of tasks
        "d_jpeg.jpg": near_duplicate(first[6].read_bytes(), "jpeg", rng),
    }
    fresh = sorted((shared_data / "data" / "intel-scenes" / "train" / "sea").glob("*.jpg"))[50:53]
    made.update({f"e_fresh{k}.jpg": p.read_bytes() for k, p in enumerate(fresh)})
    made["f_again.jpg"] = fresh[0].read_bytes()  # exact duplicate of an earlier file of this upload
    made["g_flip.jpg"] = near_duplicate(fresh[1].read_bytes(), "flip", rng)  # near, of an earlier file
    for name, data in made.items():
        (second / name).write_bytes(data)

    proc = import_cli(label_studio, shared_backend, project.id, second, "--skip-duplicates")
    assert proc.returncode == 0, proc.stderr + shared_backend.log_tail()
    assert "imported 3 images" in proc.stdout and "left out 6 duplicates (3 exact, 3 near)" in proc.stdout, proc.stdout
    said = proc.stderr
    assert "a_copy.jpg: exact duplicate of task" in said and "c_flip.jpg: near duplicate of task" in said, said
    assert f"f_again.jpg: exact duplicate of {second / 'e_fresh0.jpg'} in this upload" in said, said
    assert f"g_flip.jpg: near duplicate of {second / 'e_fresh1.jpg'} in this upload" in said, said
    held = task_images(label_studio, project.id)
    assert len(held) == 15 and all(made[f"e_fresh{k}.jpg"] in held for k in range(3))
    assert made["c_flip.jpg"] not in held and made["g_flip.jpg"] not in held

    # off by default: the same folder again without the flag uploads all 9
    proc = import_cli(label_studio, shared_backend, project.id, second, "--no-wait")
    assert proc.returncode == 0 and "imported 9 images" in proc.stdout, proc.stdout + proc.stderr


def test_skip_duplicates_without_a_backend_uploads_nothing(label_studio, shared_data, tmp_path):
    client = label_studio.client()
    project = ensure_project(client, "import-skip-no-backend", CLASSES)
    scene_tree(shared_data, tmp_path / "imgs", 2)
    proc = tasveer(
        "import", "--project", str(project.id), "--url", label_studio.url, "--token", label_studio.token,
        "--backend", "http://127.0.0.1:9", "--data-dir", "", "--no-wait", "--quiet", "--skip-duplicates",
        str(tmp_path / "imgs"),
    )  # fmt: skip
    assert proc.returncode == 2 and "the backend at http://127.0.0.1:9 is not reachable" in proc.stderr, proc.stderr
    assert task_images(label_studio, project.id) == []
