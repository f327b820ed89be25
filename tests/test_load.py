"""Short versions of bench/load.py (loopback only, bounded by counts, no timing asserted):
concurrent /predict clients while a finetune runs in the same process get every answer with no
server error; a burst of webhooks coalesces into at most two trainings, the last one including the
final annotation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from backend.settings import Settings
from imageserver import ImageServer
from test_backend_helpers import CLASSES, BackendThread, post_json, protocol_requests, scene_files
from test_backend_protocol import publish_direct, setup_body
from test_faults import annotate_all, new_project, set_up


def test_predict_clients_while_a_finetune_runs(tmp_path):
    from training.params import TrainParams
    from training.train import fit

    photos = scene_files(4, offset=10)
    routes = {f"/data/upload/1/{i}.jpg": p.read_bytes() for i, (_, p) in enumerate(photos)}
    with ImageServer(routes) as files, BackendThread(Settings(data_dir=tmp_path / "backend")) as backend:
        assert post_json(backend.url + "/setup", setup_body(protocol_requests(), files.url)).status_code == 200
        vid = publish_direct(backend.service, "1", per_class=2)
        pairs = scene_files(2, offset=20)
        finetune_done = threading.Event()

        def finetune():  # a real finetune in this process, competing for the CPU like a training job
            try:
                fit(
                    [p.read_bytes() for _, p in pairs],
                    [label for label, _ in pairs],
                    CLASSES,
                    TrainParams(mode="finetune", epochs=1, batch_size=4),
                )
            finally:
                finetune_done.set()

        trainer = threading.Thread(target=finetune, daemon=True)
        trainer.start()
        tasks = [{"id": i, "data": {"image": path}} for i, path in enumerate(sorted(routes))]

        def client(seed: int) -> list[tuple[int, int]]:
            out = []
            for k in range(4):
                chosen = [tasks[(seed * 7 + k * 5 + j) % len(tasks)] for j in range(16)]
                r = requests.post(
                    backend.url + "/predict", json={"tasks": chosen, "project": "1.1795492545"}, timeout=300
                )
                results = r.json().get("results", []) if r.ok else []
                out.append((r.status_code, sum("error" not in x and x["model_version"] == vid for x in results)))
            return out

        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = [a for one in pool.map(client, range(6)) for a in one]
        overlapped = not finetune_done.is_set()
        trainer.join(timeout=600)
        assert all(status == 200 and good == 16 for status, good in answers), answers
        assert len(answers) == 24
        assert finetune_done.is_set()
        print(f"finetune still running when the last client finished: {overlapped}")
        assert requests.get(backend.url + "/health", timeout=5).status_code == 200


@pytest.mark.labelstudio
def test_a_webhook_burst_coalesces_into_at_most_two_trainings(label_studio, shared_data, tmp_path):
    ls = label_studio
    project, uid, tasks = new_project(ls, "load-burst", per_class=3)
    annotate_all(ls, tasks[:6])
    with BackendThread(Settings(data_dir=tmp_path / "backend", train_min_interval=5.0)) as backend:
        set_up(backend.url, uid, ls.url, ls.token)
        final = None
        for i in range(40):
            if i == 39:
                final = annotate_all(ls, tasks[6:7])
            body = {"action": "ANNOTATION_CREATED", "project": {"id": project}, "annotation": {"id": i}}
            r = post_json(backend.url + "/webhook", body, timeout=10)
            assert r.status_code == 200 and r.json()["status"] == "scheduled", r.text
        assert backend.service.wait_idle(str(project), 300)
        jobs = backend.service.jobs.jobs(str(project))
        assert 1 <= len(jobs) <= 2 and sum(j.requests for j in jobs) == 40, [j.to_dict() for j in jobs]
        # the second found nothing new only if the first already read the final annotation
        assert jobs[0].state == "done" and jobs[-1].state in ("done", "skipped"), [j.to_dict() for j in jobs]
        last = [j for j in jobs if j.state == "done"][-1]
        manifest = backend.service.serving.store(str(project)).manifest(last.result["version"])
        assert set(final.values()) <= set(manifest["extra"]["annotations"])
