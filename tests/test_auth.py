"""Access control, over real HTTP: basic auth on every route (health optionally open), the shared
webhook secret, Label Studio sending both (its ML connection and the webhook sync secures), no path
traversal through upload URLs or version ids, and no token, password or secret in any log."""

from __future__ import annotations

import base64
import io

import pytest
import requests
from PIL import Image

from backend.settings import Settings
from imageserver import ImageServer
from lsfixture import poll
from lsproto.project import WEBHOOK_SECRET_HEADER
from test_backend_helpers import BackendThread, post_json, protocol_requests, scene_files
from test_backend_protocol import setup_body

USER, PASSWORD, SECRET = "labeler", "pa55-word-never-logged", "webhook-secret-never-logged"
GOOD = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
WRONG = {"Authorization": "Basic " + base64.b64encode(f"{USER}:nope".encode()).decode()}


def routes(app) -> list[tuple[str, str]]:
    """(method, concrete path) of every route of the app, read from its OpenAPI schema (app.routes holds
    an included router as one entry, not its routes)."""
    out = []
    for path, operations in app.openapi()["paths"].items():
        path = path.replace("{project}", "1").replace("{vid}", "v0001").replace("{task}", "1")
        out += [(method.upper(), path) for method in sorted(operations)]
    return out


@pytest.mark.parametrize("open_health", [False, True])
def test_basic_auth_guards_every_route(tmp_path, open_health):
    settings = Settings(
        data_dir=tmp_path / "backend", basic_auth_user=USER, basic_auth_password=PASSWORD, open_health=open_health
    )
    with BackendThread(settings) as backend:
        every = routes(backend.app)
        assert len(every) >= 14
        for method, path in every:
            is_health = path in ("/health", "/")
            for headers in ({}, WRONG, {"Authorization": "Basic !!!"}, {"Authorization": "Bearer x"}):
                r = requests.request(
                    method,
                    backend.url + path,
                    headers={**headers, "Content-Type": "application/json"},
                    data=b"{}",
                    timeout=10,
                )
                if open_health and is_health:
                    assert r.status_code == 200, (method, path)
                else:
                    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic"), (method, path)
            r = requests.request(
                method, backend.url + path, headers={**GOOD, "Content-Type": "application/json"}, data=b"{}", timeout=10
            )
            assert r.status_code != 401 and r.status_code < 500, (method, path, r.status_code, r.text)


def test_webhook_secret(tmp_path):
    with BackendThread(Settings(data_dir=tmp_path / "backend", webhook_secret=SECRET)) as backend:
        body = {"action": "PROJECT_UPDATED", "project": {"id": 1}}
        for headers in ({}, {WEBHOOK_SECRET_HEADER: "wrong"}, {WEBHOOK_SECRET_HEADER: SECRET[:-1]}):
            r = post_json(backend.url + "/webhook", body, headers=headers)
            assert r.status_code == 403 and WEBHOOK_SECRET_HEADER in r.json()["error"], r.text
        r = post_json(backend.url + "/webhook", body, headers={WEBHOOK_SECRET_HEADER: SECRET})
        assert r.status_code == 200 and r.json()["status"] == "ignored", r.text
        assert requests.get(backend.url + "/health", timeout=5).status_code == 200  # only /webhook needs it


@pytest.mark.labelstudio
def test_label_studio_sends_basic_auth_and_the_webhook_carries_credentials(label_studio, shared_data, tmp_path):
    """With basic auth and a webhook secret on, `sync` connects the backend with basic auth and
    makes Label Studio's webhook carry both; an annotation in Label Studio then reaches /webhook."""
    from sync.project import connect_backend, secure_webhook, verify_webhook
    from test_backend_labelstudio import annotate, create_project, upload

    ls = label_studio
    project = create_project(ls, "auth-webhook")
    ((label, path),) = scene_files(1, classes=["sea"])
    (task,) = upload(ls, project, [(path.name, path.read_bytes())])
    settings = Settings(
        data_dir=tmp_path / "backend", basic_auth_user=USER, basic_auth_password=PASSWORD, webhook_secret=SECRET
    )
    with BackendThread(settings) as backend:
        client = ls.client()
        ml = connect_backend(client, project, backend.url, basic_auth=(USER, PASSWORD))
        assert str(getattr(ml.state, "value", ml.state)) == "CO"  # LS's /health and /setup carried basic auth
        hook = secure_webhook(
            client, verify_webhook(client, project, backend.url), basic_auth=(USER, PASSWORD), secret=SECRET
        )
        stored = client.webhooks.get(id=hook.id)
        assert (
            stored.headers[WEBHOOK_SECRET_HEADER] == SECRET and stored.headers["Authorization"] == GOOD["Authorization"]
        )
        annotate(ls, task["id"], label)
        poll(lambda: backend.service.jobs.jobs(str(project)), "training asked for by Label Studio's webhook", 30)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


def test_no_path_traversal_through_upload_urls_or_version_ids(tmp_path):
    """Uploads read from Label Studio's media dir stay inside it; version ids never reach outside
    the store. The file outside is a valid image, so reading it would give a prediction."""
    media = tmp_path / "ls-media"
    (media / "upload" / "1").mkdir(parents=True)
    (tmp_path / "secret.png").write_bytes(_png())
    (media / "secret.png").write_bytes(_png())
    with ImageServer({}) as ls:  # Label Studio's stand-in answers 404 to everything
        settings = Settings(data_dir=tmp_path / "backend", ls_media_dir=media)
        with BackendThread(settings) as backend:
            assert post_json(backend.url + "/setup", setup_body(protocol_requests(), ls.url)).status_code == 200
            from test_backend_protocol import publish_direct

            publish_direct(backend.service, "1", per_class=2)
            sneaky = [
                "/data/upload/../secret.png",
                "/data/upload/1/../../../secret.png",
                "/data/upload/%2e%2e/%2e%2e/secret.png",
                "/data/upload/1/..%2f..%2fsecret.png",
                "/data/local-files/?d=../../secret.png",
                "/data/upload//etc/passwd",
                f"/data/upload/{tmp_path}/secret.png",
            ]
            tasks = [{"id": i, "data": {"image": url}} for i, url in enumerate(sneaky)]
            r = post_json(backend.url + "/predict", {"tasks": tasks, "project": "1.1795492545"})
            assert r.status_code == 200, r.text
            for url, res in zip(sneaky, r.json()["results"]):
                assert res["result"] == [] and "error" in res, (url, res)
            assert backend.service.fetcher.downloads == 0
            # every one of them was asked of Label Studio (which decides), none read from disk
            assert len(ls.hits) >= len(sneaky)
            for vid in ("..", "../1", "..%2F..%2Fstate.json", ".tmp", "v0001%2F..%2F..", "%2e%2e"):
                for path in (f"/projects/1/versions/{vid}/confusion.png", f"/versions/{vid}/confusion.png?project=1"):
                    r = requests.get(backend.url + path, timeout=10)
                    assert r.status_code in (404, 400) and not r.content.startswith(b"\x89PNG"), (path, r.status_code)
                r = post_json(backend.url + "/projects/1/rollback", {"version": vid})
                assert r.status_code == 404, (vid, r.text)


@pytest.mark.labelstudio
def test_tokens_passwords_and_secrets_never_reach_the_logs(label_studio, shared_data, start_backend):
    """A backend process at debug level, set up, asked to predict and train (and failing to reach
    a second, absent Label Studio): its log never holds the token, the password or the secret."""
    ls = label_studio
    backend = start_backend(
        ls,
        TASVEER_BASIC_AUTH_USER=USER,
        TASVEER_BASIC_AUTH_PASSWORD=PASSWORD,
        TASVEER_WEBHOOK_SECRET=SECRET,
        TASVEER_LOG_LEVEL="debug",
    )
    auth = (USER, PASSWORD)
    body = setup_body(protocol_requests(), ls.url)
    body["access_token"] = ls.token
    assert requests.post(backend.url + "/setup", json=body, auth=auth, timeout=30).status_code == 200
    requests.post(backend.url + "/predict", json=protocol_requests()["POST /predict"]["body"], auth=auth, timeout=60)
    requests.post(backend.url + "/train", json={"project": 1}, auth=auth, timeout=30)
    requests.post(
        backend.url + "/webhook",
        json={"action": "START_TRAINING", "project": {"id": 1}},
        auth=auth,
        headers={WEBHOOK_SECRET_HEADER: "a-wrong-secret"},
        timeout=30,
    )
    requests.get(backend.url + "/health", auth=(USER, "wrong-password"), timeout=10)
    body["hostname"], body["project"] = "http://127.0.0.1:9", "2.1795492545"
    requests.post(backend.url + "/setup", json=body, auth=auth, timeout=30)
    requests.post(backend.url + "/train", json={"project": 2}, auth=auth, timeout=30)
    poll(lambda: "training job 2-" in backend.log_tail(400), "training job in the log", 60)
    log = backend.log_path.read_text(errors="replace")
    assert len(log) > 500
    for secret in (ls.token, PASSWORD, SECRET, GOOD["Authorization"].split()[1]):
        assert secret not in log
