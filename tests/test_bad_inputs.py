"""Bad input, over real HTTP against the real backend app: each case gets a clear 4xx or a per-task
error, the service keeps serving (a /health and a good /predict after every case), and the good
tasks of a request with bad ones are still answered.

Images come from a loopback `ImageServer` (tests/imageserver.py) standing in for Label Studio's file
serving, each made here with Pillow. Supported formats: JPEG, PNG (grey, RGBA, palette, 16-bit),
GIF (first frame), WebP, BMP and TIFF decode; SVG (not a raster image) is refused like any other
non-image. Label Studio's own side of bad data (labels outside the config, skipped and cancelled
annotations) runs against a real Label Studio in `test_training_skips_unusable_annotations`.
"""

from __future__ import annotations

import copy
import io
import resource
import socket

import numpy as np
import pytest
import requests
from PIL import Image

from backend.settings import Settings
from imageserver import ImageServer, endless, redirect_to, slow
from test_backend_helpers import CLASSES, CONFIG, BackendThread, post_json, protocol_requests, scene_files
from test_backend_protocol import publish_direct, setup_body

MAX_IMAGE = 4 * 2**20
MAX_BODY = 8 * 2**20


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _photo() -> Image.Image:
    return Image.open(scene_files(1, offset=20, classes=["forest"])[0][1]).convert("RGB")


def _images() -> dict[str, bytes]:
    photo = _photo()
    jpeg = _encode(photo, "JPEG", quality=90)
    cmyk = _encode(photo.convert("CMYK"), "JPEG")
    deep = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    rgba = photo.convert("RGBA")
    rgba.putalpha(200)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view": stored on its side
    return {
        "good.jpg": jpeg,
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "empty.jpg": b"",
        "page.jpg": b"<!doctype html><html><body>Login required</body></html>",
        "notes.jpg": b"just some text\n" * 20,
        "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b'<rect width="10" height="10"/></svg>',
        "anim.gif": _encode(photo.convert("P"), "GIF"),
        "photo.webp": _encode(photo, "WEBP"),
        "photo.bmp": _encode(photo, "BMP"),
        "photo.tiff": _encode(photo, "TIFF"),
        "cmyk.jpg": cmyk,
        "deep.png": _encode(Image.fromarray(deep), "PNG"),
        "grey.png": _encode(photo.convert("L"), "PNG"),
        "rgba.png": _encode(rgba, "PNG"),
        "upright.png": _encode(photo, "PNG"),
        "rotated.png": _encode(photo.transpose(Image.Transpose.ROTATE_90), "PNG", exif=exif),
        "dot.png": _encode(Image.new("RGB", (1, 1), (10, 120, 30)), "PNG"),
        "bomb.png": _encode(Image.new("1", (12_000, 12_000)), "PNG"),  # 144 Mpx in ~20 kB
        "wide.png": _encode(Image.new("1", (7_000, 7_000)), "PNG"),  # 49 Mpx: over our own 40 Mpx limit
        "pdf.jpg": b"%PDF-1.4\n%%EOF\n",
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A backend serving a trained version of project 1 whose images come from an ImageServer."""
    images = _images()
    routes = {f"/data/upload/1/{name}": data for name, data in images.items()}
    with ImageServer({}) as elsewhere:
        routes.update(
            {
                "/data/upload/1/gone.jpg": 404,
                "/data/upload/1/private.jpg": 401,
                "/data/upload/1/broken.jpg": 500,
                "/data/upload/1/slow.jpg": slow(6, images["good.jpg"]),
                "/data/upload/1/huge.jpg": endless(200 * 2**20),
                "/data/upload/1/away.jpg": redirect_to(f"http://127.0.0.2:{elsewhere.httpd.server_address[1]}/x.jpg"),
                "/data/upload/1/moved.jpg": redirect_to("/data/upload/1/good.jpg"),
            }
        )
        with ImageServer(routes) as files:
            settings = Settings(
                data_dir=tmp_path_factory.mktemp("bad-inputs") / "backend",
                fetch_timeout=2.0,
                max_image_bytes=MAX_IMAGE,
                max_body_bytes=MAX_BODY,
            )
            with BackendThread(settings) as backend:
                captured = protocol_requests()
                r = post_json(backend.url + "/setup", setup_body(captured, files.url))
                assert r.status_code == 200, r.text
                vid = publish_direct(backend.service, "1", per_class=2)
                yield {
                    "backend": backend,
                    "files": files,
                    "elsewhere": elsewhere,
                    "vid": vid,
                    "captured": captured,
                    "images": images,
                }


def _task(world, tid, data) -> dict:
    task = copy.deepcopy(world["captured"]["POST /predict"]["body"]["tasks"][0])
    task.update(id=tid, data=data)
    return task


def _predict(world, tasks, **changes) -> requests.Response:
    body = dict(world["captured"]["POST /predict"]["body"], tasks=tasks, **changes)
    return post_json(world["backend"].url + "/predict", body, timeout=60)


def _good(world, tid=1) -> dict:
    return _task(world, tid, {"image": "/data/upload/1/good.jpg"})


def _still_serving(world):
    url = world["backend"].url
    assert requests.get(url + "/health", timeout=5).json()["status"] == "UP"
    r = _predict(world, [_good(world)])
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]
    assert res["model_version"] == world["vid"] and res["result"][0]["value"]["choices"][0] in CLASSES


# -- images: each sent between two good tasks; decodes or is a per-task error ------------------------
DECODES = [
    "anim.gif",
    "photo.webp",
    "photo.bmp",
    "photo.tiff",
    "cmyk.jpg",
    "deep.png",
    "grey.png",
    "rgba.png",
    "dot.png",
    "moved.jpg",
]
REFUSED = {
    "truncated.jpg": "truncated image",
    "empty.jpg": "empty file",
    "page.jpg": "not an image",
    "notes.jpg": "not an image",
    "drawing.svg": "not an image",
    "pdf.jpg": "not an image",
    "bomb.png": "decompression bomb",
    "wide.png": "pixel limit",
    "gone.jpg": "HTTP 404",
    "private.jpg": "HTTP 401",
    "broken.jpg": "HTTP 500",
    "slow.jpg": "timed out",
    "huge.jpg": "download aborted",
    "away.jpg": "host not allowed",
}


@pytest.mark.parametrize("name", DECODES + sorted(REFUSED))
def test_image_decodes_or_is_a_per_task_error(world, name):
    tasks = [_good(world, 1), _task(world, 2, {"image": f"/data/upload/1/{name}"}), _good(world, 3)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = _predict(world, tasks)
    assert r.status_code == 200, r.text
    first, case, last = r.json()["results"]
    assert "error" not in first and "error" not in last and first == last
    if name in DECODES:
        assert "error" not in case, case
        assert case["result"][0]["value"]["choices"][0] in CLASSES and 0 <= case["score"] <= 1
    else:
        assert case["result"] == [] and REFUSED[name] in case["error"] and "task 2" in case["error"], case
    if name == "huge.jpg":  # 200 MB offered, the download stopped at the limit: memory did not grow by it
        grew_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        assert grew_kib < 100 * 1024, grew_kib
    _still_serving(world)


def test_exif_orientation_is_applied(world):
    tasks = [
        _task(world, 1, {"image": "/data/upload/1/upright.png"}),
        _task(world, 2, {"image": "/data/upload/1/rotated.png"}),
    ]
    upright, rotated = _predict(world, tasks).json()["results"]
    assert upright["result"] == rotated["result"] and upright["score"] == pytest.approx(rotated["score"], abs=1e-5)


# -- task data -------------------------------------------------------------------------------------
TASK_DATA = {
    "no image key": ({"text": "hello"}, "no image URL"),
    "image is a number": ({"image": 42}, "no image URL"),
    "image is a list": ({"image": ["/data/upload/1/good.jpg"]}, "no image URL"),
    "image is empty": ({"image": ""}, "no image URL"),
    "data is not an object": ("just a string", "no image URL"),
    "cloud storage URI": ({"image": "s3://bucket/key.jpg"}, "cloud storage URI s3://bucket/key.jpg"),
    "file URL": ({"image": "file:///etc/passwd"}, "unsupported URL"),
    "another host": ({"image": "http://203.0.113.9/x.jpg"}, "host not allowed"),
}


@pytest.mark.parametrize("case", sorted(TASK_DATA))
def test_bad_task_data_is_a_per_task_error(world, case):
    data, words = TASK_DATA[case]
    r = _predict(world, [_task(world, 7, data), _good(world, 8)])
    assert r.status_code == 200, r.text
    bad, good = r.json()["results"]
    assert bad["result"] == [] and words in bad["error"] and "task 7" in bad["error"], bad
    assert "error" not in good
    _still_serving(world)


def test_predict_with_no_tasks_and_with_a_thousand(world):
    r = _predict(world, [])
    assert r.status_code == 200 and r.json()["results"] == []
    tasks = [_good(world, i) if i % 10 else _task(world, i, {"image": "/data/upload/1/gone.jpg"}) for i in range(1000)]
    r = _predict(world, tasks)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 1000
    assert all(("error" in res) == (i % 10 == 0) for i, res in enumerate(results))
    _still_serving(world)


# -- requests --------------------------------------------------------------------------------------
def _raw(world, path, data, content_type="application/json", method="POST"):
    return requests.request(
        method, world["backend"].url + path, data=data, headers={"Content-Type": content_type}, timeout=30
    )


REQUESTS = {
    "malformed JSON": ("/predict", b'{"tasks": [', "application/json", 400, "not valid JSON"),
    "not UTF-8": ("/predict", b'{"tasks": "\xff"}', "application/json", 400, "not valid JSON"),
    "a JSON array": ("/predict", b"[]", "application/json", 400, "JSON object"),
    "wrong content type": ("/predict", b'{"tasks": []}', "text/plain", 415, "application/json"),
    "form post": ("/webhook", b"action=START_TRAINING", "application/x-www-form-urlencoded", 415, "application/json"),
    "tasks not a list": ("/predict", b'{"tasks": {"id": 1}}', "application/json", 400, "list of task objects"),
    "a task not an object": ("/predict", b'{"tasks": [1], "project": "1.1"}', "application/json", 422, "task objects"),
    "unknown project, no config": (
        "/predict",
        b'{"tasks": [{"id": 1}], "project": "777.5"}',
        "application/json",
        422,
        "no labeling config",
    ),
    "project id not a number": ("/predict", b'{"tasks": [], "project": "../1"}', "application/json", 422, "project"),
    "webhook without action": ("/webhook", b'{"project": {"id": 1}}', "application/json", 400, "action"),
    "webhook without project": (
        "/webhook",
        b'{"action": "ANNOTATION_CREATED"}',
        "application/json",
        422,
        "no project id",
    ),
    "TASKS_CREATED without tasks": (
        "/webhook",
        b'{"action": "TASKS_CREATED", "project": {"id": 1}}',
        "application/json",
        422,
        "tasks must be a list",
    ),
    "setup without schema": ("/setup", b'{"project": "1.1"}', "application/json", 400, "schema"),
    "train with no project": ("/train", b'{"project": null}', "application/json", 400, "project"),
    "train an unknown project": ("/train", b'{"project": 778}', "application/json", 409, "not set up"),
    "rollback to nothing": ("/projects/1/rollback", b'{"version": "v9999"}', "application/json", 404, "v9999"),
    "rollback with a path": ("/projects/1/rollback", b'{"version": "../../1"}', "application/json", 404, "version"),
    "params of an unknown project": ("/projects/779/params", b'{"epochs": 2}', "application/json", 404, "not set up"),
}


@pytest.mark.parametrize("case", sorted(REQUESTS))
def test_bad_request_is_a_clear_4xx(world, case):
    path, data, kind, status, words = REQUESTS[case]
    method = "PUT" if path.endswith("/params") else "POST"
    r = _raw(world, path, data, kind, method)
    assert r.status_code == status, (r.status_code, r.text)
    assert words in r.json()["error"], r.text
    _still_serving(world)


def test_unknown_webhook_action_is_acknowledged_and_ignored(world):
    r = post_json(world["backend"].url + "/webhook", {"action": "PROJECT_EXPLODED", "project": {"id": 1}})
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    assert not world["backend"].service.jobs.busy("1")
    _still_serving(world)


SETUPS = {
    "no Choices": ('<View><Image name="image" value="$image"/></View>', None, "no <Choices>"),
    "two Choices": (
        '<View><Image name="image" value="$image"/><Choices name="a" toName="image"><Choice value="x"/>'
        '<Choice value="y"/></Choices><Choices name="b" toName="image"><Choice value="p"/>'
        '<Choice value="q"/></Choices></View>',
        None,
        "several <Choices>",
    ),
    "one Choice": (
        '<View><Image name="image" value="$image"/><Choices name="a" toName="image">'
        '<Choice value="x"/></Choices></View>',
        None,
        "at least two",
    ),
    "not XML": ("<View><Image", None, "not valid XML"),
    "an entity": ('<!DOCTYPE v [<!ENTITY e "x">]><View/>', None, "DOCTYPE"),
    "unknown extra param": (CONFIG, {"learning_rate": 1}, "bad extra_params"),
    "extra param of a wrong type": (CONFIG, {"epochs": "many"}, "bad extra_params"),
    "extra params not an object": (CONFIG, "[1, 2]", "bad extra_params"),
    "unknown model": (CONFIG, {"model": "no_such_net"}, "bad extra_params"),
    "hostname not a URL": (CONFIG, None, "hostname must be"),
}


@pytest.mark.parametrize("case", sorted(SETUPS))
def test_bad_setup_is_refused_and_keeps_the_project(world, case):
    schema, extra, words = SETUPS[case]
    host = "ftp://files" if case == "hostname not a URL" else world["files"].url
    body = setup_body(world["captured"], host, schema=schema, extra_params=extra)
    r = post_json(world["backend"].url + "/setup", body)
    assert r.status_code == 422 and words in r.json()["error"], r.text
    state = world["backend"].service.projects.state("1")
    assert state.label_config == world["captured"]["POST /setup"]["body"]["schema"]
    _still_serving(world)


def test_label_names_with_spaces_and_unicode(world):
    labels = ["snowy mountain peak", "морe", "海 🌊", "a&b <c>"]
    xml = (
        '<View><Image name="image" value="$image"/><Choices name="choice" toName="image">'
        + "".join(
            f'<Choice value="{v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}"/>' for v in labels
        )
        + "</Choices></View>"
    )
    body = setup_body(world["captured"], world["files"].url, project="2.1795492545", schema=xml)
    assert post_json(world["backend"].url + "/setup", body).status_code == 200
    r = _predict(world, [_good(world)], project="2.1795492545", label_config=xml)
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]
    assert res["result"][0]["value"]["choices"] == [labels[0]]  # cold start: the first label, as written


def test_a_200_mb_body_is_refused_without_being_held(world):
    """The body limit is checked while streaming: 200 MB offered, refused past the limit."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total, chunk = 200 * 2**20, b" " * (1 << 20)
    host, port = world["backend"].url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % total
        )
        sent = 0
        try:
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed early: that is the point
        reply = sock.recv(65536).decode("latin-1")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert sent < total or "body is over" in reply
    grew_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grew_kib < 100 * 1024, grew_kib

    # chunked (no Content-Length) is counted as it streams
    def body():
        for _ in range(MAX_BODY // len(chunk) + 4):
            yield chunk

    r = requests.post(
        world["backend"].url + "/predict", data=body(), headers={"Content-Type": "application/json"}, timeout=60
    )
    assert r.status_code == 413 and "over the" in r.json()["error"], r.text
    _still_serving(world)


# -- Label Studio's side: annotations a training cannot use --------------------------------------------
@pytest.mark.labelstudio
def test_training_skips_unusable_annotations(label_studio, shared_data, tmp_path):
    """A label outside the config, a skipped (cancelled) annotation, an empty result and a task
    without an image, all in a real Label Studio: the training uses the good ones and says why it
    left each other one out."""
    from test_backend_labelstudio import annotate, create_project, list_tasks, project_uid, upload

    ls = label_studio
    project = create_project(ls, "bad-annotations")
    pairs = scene_files(3, classes=["buildings", "forest"])
    tasks = upload(ls, project, [(p.name, p.read_bytes()) for _, p in pairs])
    by_name = {p.name: label for label, p in pairs}
    label_of = {t["id"]: by_name[t["data"]["image"].rsplit("/", 1)[1].split("-", 1)[1]] for t in tasks}
    good = {tid: annotate(ls, tid, label) for tid, label in sorted(label_of.items())[:4]}
    odd_task, skipped_task = sorted(label_of)[4:6]

    def post_annotation(task_id, body):
        r = requests.post(f"{ls.url}/api/tasks/{task_id}/annotations", json=body, headers=ls.headers, timeout=30)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    post_annotation(
        odd_task,
        {"result": [{"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": ["ufo"]}}]},
    )
    post_annotation(skipped_task, {"result": [], "was_cancelled": True})
    r = requests.post(
        f"{ls.url}/api/projects/{project}/import",
        json=[{"data": {"image": ["/data/upload/a.jpg", "/data/upload/b.jpg"]}}],
        headers=ls.headers,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    textual = max(t["id"] for t in list_tasks(ls, project))
    annotate(ls, textual, "sea")
    # make sure the good labels cover two classes, so a training can run
    assert len({label_of[t] for t in good}) == 2

    with BackendThread(Settings(data_dir=tmp_path / "backend")) as backend:
        body = setup_body(protocol_requests(), ls.url, project=project_uid(ls, project))
        body["access_token"] = ls.token
        assert post_json(backend.url + "/setup", body).status_code == 200
        r = post_json(backend.url + "/train", {"project": project})
        assert r.status_code == 200, r.text
        assert backend.service.wait_idle(str(project), timeout=300)
        (job,) = backend.service.jobs.jobs(str(project))
        assert job.state == "done", job.error
        manifest = backend.service.serving.manifest(str(project), job.result["version"])
        extra = manifest["extra"]
        assert sorted(extra["tasks"]) == sorted(good) and sorted(extra["annotations"]) == sorted(good.values())
        notes = "\n".join(extra["skipped"])
        assert f"task {odd_task}: label 'ufo' is not in the labeling config" in notes, notes
        assert f"task {textual}: no 'image' in task data" in notes, notes
        assert str(skipped_task) not in notes  # a skipped task is simply not labelled
        assert requests.get(backend.url + "/health", timeout=5).status_code == 200
