"""`tasveer up` from nothing in a temp data dir: real Label Studio + real backend, real webhook."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import requests

from backend.api.webhooks import TRAIN_ACTIONS
from lsfixture import REPO_ROOT as REPO
from lsfixture import run_tasveer as tasveer
from lsfixture import tasveer_argv
from lsproto.config import parse_label_config
from lsproto.project import WEBHOOK_ACTIONS
from sync.labelstudio import LabelStudioServer
from sync.netutil import free_port, port_in_use
from sync.state import STATE_FILE

pytestmark = [
    pytest.mark.labelstudio,
]


def _up(data_dir, port, backend_port, *extra):
    return tasveer(
        "up", "--check", "--data-dir", str(data_dir), "--port", str(port), "--backend-port", str(backend_port), *extra
    )


@pytest.fixture(scope="module")
def set_up(tmp_path_factory):
    """One `tasveer up --check` from nothing (Label Studio's cold start and migrations, once for
    the module): (data dir, port, backend port, the finished process)."""
    data_dir = tmp_path_factory.mktemp("up") / "var"
    port, backend_port = free_port(), free_port()
    first = _up(data_dir, port, backend_port, "--labels", "cat,dog,bird", "--title", "pets")
    return data_dir, port, backend_port, first


def test_up_check_from_nothing_then_reuses_everything(set_up):
    data_dir, port, backend_port, first = set_up
    assert first.returncode == 0, first.stdout + first.stderr
    assert "check: OK" in first.stdout and "Traceback" not in first.stderr
    state = json.loads((data_dir / STATE_FILE).read_text())
    assert oct((data_dir / STATE_FILE).stat().st_mode & 0o777) == "0o600"
    assert f"API token    : {state['token']}" in first.stdout
    actions = ", ".join(sorted(WEBHOOK_ACTIONS))
    assert f"webhook      : http://127.0.0.1:{backend_port}/webhook  actions {actions}" in first.stdout
    # the password is printed once, to the terminal; no log file holds it or the token
    assert first.stdout.count(state["password"]) == 1 and state["password"] not in first.stderr
    logs = list(data_dir.rglob("*.log"))
    assert logs
    for log in logs:
        text = log.read_text(errors="replace")
        assert state["password"] not in text and state["token"] not in text, log
    # nothing keeps running after --check
    assert not port_in_use(port) and not port_in_use(backend_port)

    second = _up(data_dir, port, backend_port, "--labels", "cat,dog,bird", "--title", "pets")
    assert second.returncode == 0, second.stdout + second.stderr
    state2 = json.loads((data_dir / STATE_FILE).read_text())
    assert state2["token"] == state["token"] and state2["project_id"] == state["project_id"]
    assert f"(id {state['project_id']})" in second.stdout

    # look inside Label Studio's own data: one project, labels, ML backend, webhook to the backend
    with LabelStudioServer(
        data_dir / "labelstudio",
        free_port(),
        username=state["username"],
        password=state["password"],
        token=state["token"],
    ) as ls:
        headers = {"Authorization": f"Token {state['token']}"}
        projects = requests.get(f"{ls.url}/api/projects", headers=headers, timeout=10).json()["results"]
        assert [p["title"] for p in projects] == ["pets"]
        project = projects[0]
        assert list(parse_label_config(project["label_config"]).labels) == ["cat", "dog", "bird"]
        detail = requests.get(f"{ls.url}/api/projects/{project['id']}", headers=headers, timeout=10).json()
        assert detail["start_training_on_annotation_update"] is True
        assert detail["evaluate_predictions_automatically"] is False and detail["show_collab_predictions"] is True
        ml = requests.get(f"{ls.url}/api/ml", params={"project": project["id"]}, headers=headers, timeout=30).json()
        assert [m["url"] for m in ml] == [f"http://127.0.0.1:{backend_port}"]
        hooks = requests.get(
            f"{ls.url}/api/webhooks/", params={"project": project["id"]}, headers=headers, timeout=10
        ).json()
        # only the actions the backend acts on: a PROJECT_UPDATED (each new version's model_version)
        # would make Label Studio serialise the project and call the backend before answering
        assert [(h["url"], h["send_for_all_actions"], h["send_payload"], h["is_active"]) for h in hooks] == [
            (f"http://127.0.0.1:{backend_port}/webhook", False, True, True)
        ]
        assert sorted(hooks[0]["actions"]) == sorted(WEBHOOK_ACTIONS)
        assert set(WEBHOOK_ACTIONS) <= TRAIN_ACTIONS | {"TASKS_CREATED"}  # each one does something there
        login = requests.Session()
        page = login.get(f"{ls.url}/user/login/", timeout=10)
        assert page.status_code == 200


def _run_until_signal(data_dir, port, backend_port, sig):
    argv = tasveer_argv("up") + ["--data-dir", str(data_dir), "--port", str(port), "--backend-port", str(backend_port)]
    proc = subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "press Ctrl-C" in line:
                break
        assert any("press Ctrl-C" in line for line in lines), "".join(lines)
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        assert requests.get(f"http://127.0.0.1:{backend_port}/health", timeout=5).json()["status"] == "UP"
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0
        assert "stopping" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not port_in_use(port) and not port_in_use(backend_port)
    # children ran in their own process groups: none of them may survive `up`
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(data_dir) not in out


def test_up_runs_until_sigterm_or_ctrl_c_and_leaves_no_process(set_up):
    data_dir, port, backend_port, first = set_up  # set up by the check above: warm starts
    assert first.returncode == 0, first.stdout + first.stderr
    _run_until_signal(data_dir, port, backend_port, signal.SIGTERM)
    _run_until_signal(data_dir, port, backend_port, signal.SIGINT)  # Ctrl-C


def test_up_refuses_another_user_on_an_existing_data_dir(tmp_path):
    from sync.state import UpState, save_state

    save_state(tmp_path, UpState(username="first@example.org"))
    proc = tasveer("up", "--check", "--data-dir", str(tmp_path), "--username", "second@example.org")
    assert proc.returncode == 2 and "set up for user first@example.org" in proc.stderr
    assert "Traceback" not in proc.stderr
    help_text = tasveer("up", "--help").stdout
    for option in ("--port", "--backend-port", "--data-dir", "--labels", "--images", "--check"):
        assert option in help_text
