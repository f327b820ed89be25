"""The Label Studio feature flag every LS that tasveer starts runs with (sync/labelstudio.py policy_env,
docker-compose.yml through deploy/labelstudio.env; docs/labelstudio.md "Feature flags tasveer turns on").

`fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short` switches
`POST /api/projects/<id>/import/predictions` (LS 1.23.2 data_import/api.py ImportPredictionsAPI) from
its legacy path (every task id of the project loaded and every task recounted per request, each
prediction checked against the labeling config and dropped when it does not match) to the batch-wise
one, which does no such check. What shows from outside: a prediction whose result has an item the
labeling config lacks is stored with the flag on, dropped with it off. The second Label Studio here,
started with the flag set to false (the flag's environment variable wins over LS's flag file), shows
that this is the flag's doing.
"""

from __future__ import annotations

import secrets

import pytest
import requests

from lsproto.config import build_label_config, parse_label_config
from lsproto.results import choice_result
from lssqlite import migrated_database
from lstokens import browser_session
from sync.labelstudio import FAST_PREDICTION_IMPORT, LabelStudioServer, env_file, policy_env
from sync.netutil import free_port

pytestmark = [pytest.mark.labelstudio]


def _import_mixed_predictions(url: str, headers: dict) -> tuple[int, list[dict], requests.Response]:
    """A project with two tasks; one good prediction, one whose result also has an item of a control
    the config lacks. Returns (created, the project's stored predictions, the answer to a prediction
    for a task of no project)."""
    config = build_label_config(["cat", "dog"])
    cfg = parse_label_config(config)
    r = requests.post(
        f"{url}/api/projects",
        json={"title": f"flags-{secrets.token_hex(3)}", "label_config": config},
        headers=headers,
        timeout=60,
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    r = requests.post(
        f"{url}/api/projects/{pid}/import",
        params={"return_task_ids": "true"},
        json=[{"image": "/data/upload/none/a.jpg"}, {"image": "/data/upload/none/b.jpg"}],
        headers=headers,
        timeout=60,
    )
    assert r.status_code == 201, r.text
    tasks = sorted(r.json()["task_ids"])
    choice = choice_result(cfg.from_name, cfg.to_name, "cat")[0]
    extra = {"from_name": "not_in_config", "to_name": cfg.to_name, "type": "textarea", "value": {"text": ["note"]}}
    rows = [
        {"task": tasks[0], "result": [choice], "score": 0.9, "model_version": "v1"},
        {"task": tasks[1], "result": [choice, extra], "score": 0.8, "model_version": "v1"},
    ]
    r = requests.post(f"{url}/api/projects/{pid}/import/predictions", json=rows, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    stored = requests.get(f"{url}/api/predictions", params={"project": pid}, headers=headers, timeout=60).json()
    stranger = requests.post(
        f"{url}/api/projects/{pid}/import/predictions",
        json=[{"task": max(tasks) + 10_000, "result": [choice], "score": 0.5, "model_version": "v1"}],
        headers=headers,
        timeout=60,
    )
    return r.json()["created"], stored, stranger


def test_tasveers_label_studio_imports_predictions_without_the_legacy_check(label_studio):
    created, stored, stranger = _import_mixed_predictions(label_studio.url, label_studio.headers)
    assert created == 2
    by_items = sorted(len(p["result"]) for p in stored)
    assert by_items == [1, 2]  # the extra item is kept as sent (the labeling view skips it)
    assert stranger.status_code == 400 and "not found in project" in stranger.text


def test_with_the_flag_off_label_studio_drops_the_prediction(tmp_path):
    migrated_database(tmp_path)  # Label Studio skips its migrations
    token = "flags" + secrets.token_hex(16)
    server = LabelStudioServer(tmp_path, free_port(), token=token, extra_env={FAST_PREDICTION_IMPORT: "false"})
    with server:
        created, stored, stranger = _import_mixed_predictions(server.url, {"Authorization": f"Token {token}"})
    assert created == 1 and [len(p["result"]) for p in stored] == [1]
    assert stranger.status_code == 400  # refused on this path too (its own message)


def test_the_flag_is_in_every_label_studio_environment_tasveer_makes(tmp_path, monkeypatch):
    assert policy_env(["127.0.0.0/8"])[FAST_PREDICTION_IMPORT] == "true"
    assert f"{FAST_PREDICTION_IMPORT}=true\n" in env_file(["172.31.203.0/24"])  # docker-compose.yml's env file
    # LS reads LABEL_STUDIO_<name> and HEARTEX_<name> before <name>: an inherited one must not turn it off
    monkeypatch.setenv(f"LABEL_STUDIO_{FAST_PREDICTION_IMPORT}", "false")
    monkeypatch.setenv(f"HEARTEX_{FAST_PREDICTION_IMPORT}", "false")
    env = LabelStudioServer(tmp_path, 1, token="flags-token").environment()
    assert env[FAST_PREDICTION_IMPORT] == "true"
    assert not [k for k in env if k.endswith(FAST_PREDICTION_IMPORT) and k != FAST_PREDICTION_IMPORT]


def test_label_studio_pages_send_nothing_to_heartex(label_studio):
    """LS 1.23.2 defaults to Heartex's Sentry on the server and in every page (a sentry-cdn.com
    script, errors sent with the user's details); the LS tasveer starts has both off."""
    session = browser_session(label_studio.url, label_studio.username, label_studio.password)
    page = session.get(f"{label_studio.url}/projects/", timeout=30)
    assert page.status_code == 200 and "sentry_dsn:" in page.text, page.text[:300]  # a signed-in page
    assert "sentry_dsn: null" in page.text
    assert "sentry-cdn.com" not in page.text and "sentry.io" not in page.text
    env = LabelStudioServer(label_studio.data_dir, 1, token="flags-token").environment()
    assert env["SENTRY_DSN"] == "" and env["FRONTEND_SENTRY_DSN"] == ""
