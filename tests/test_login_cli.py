"""How the `tasveer` verbs that call the backend log in: the environment's credentials, else the
secret `tasveer up` keeps in its state file, sent only to that state's own backend."""

from __future__ import annotations

import argparse

import pytest

from cli.backendapi import login
from sync.state import UpState, load_state, save_state


@pytest.fixture
def up_state(tmp_path, monkeypatch):
    for name in ("TASVEER_SECRET", "TASVEER_BASIC_AUTH_USER", "TASVEER_BASIC_AUTH_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    save_state(tmp_path, UpState(backend_url="http://127.0.0.1:9191"))
    return argparse.Namespace(data_dir=str(tmp_path)), load_state(tmp_path)


def test_the_verbs_send_the_up_secret_to_its_backend_only(up_state, monkeypatch):
    args, state = up_state
    assert len(state.backend_secret) >= 32  # made once by `tasveer up`, kept in its state file
    assert login(args, "http://127.0.0.1:9191") == ("tasveer", state.backend_secret)
    for other in ("http://127.0.0.1:9192", "http://evil.example:9191", "https://127.0.0.1:9191"):
        assert login(args, other) is None, other  # never to another backend
    monkeypatch.setenv("TASVEER_SECRET", "from-the-environment-0123")
    assert login(args, "http://evil.example:9191") == ("tasveer", "from-the-environment-0123")
    monkeypatch.setenv("TASVEER_BASIC_AUTH_USER", "ops")
    monkeypatch.setenv("TASVEER_BASIC_AUTH_PASSWORD", "pw")
    assert login(args, "http://127.0.0.1:9191") == ("ops", "pw")


def test_a_state_file_from_before_the_secret_gets_one(tmp_path):
    (tmp_path / "tasveer-up.json").write_text('{"username": "a@b.c", "password": "p", "token": "t"}')
    first = load_state(tmp_path)
    assert first is not None and len(first.backend_secret) >= 32
