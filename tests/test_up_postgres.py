"""`tasveer up --database`: Label Studio on the real PostgreSQL (127.0.0.1:5432, trust), the choice
kept in the data dir's state.

The database is a copy of pgls.py's migrated template (Label Studio's migrations take minutes), given
to `up` as a postgresql:// URL; `up` with a real Label Studio and backend creates the project there,
a later plain `up` stays on it, and a switch to SQLite is refused.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from lsfixture import run_tasveer as tasveer
from pgls import PG, drop_database, fresh_database
from sync.labelstudio import LabelStudioServer
from sync.lsdatabase import ensure_database, resolve
from sync.netutil import free_port
from sync.state import STATE_FILE

pytestmark = [pytest.mark.labelstudio]


@pytest.fixture
def pg_copy(tmp_path):
    """The URL of a fresh copy of the migrated Label Studio template, dropped afterwards."""
    name = fresh_database(tmp_path)
    try:
        yield f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{name}", name
    finally:
        drop_database(name)


def _up(data_dir, *extra):
    return tasveer(
        "up", "--check", "--data-dir", str(data_dir), "--port", str(free_port()),
        "--backend-port", str(free_port()), "--title", "on-pg", *extra,
    )  # fmt: skip


def _projects(name: str) -> list[tuple[int, str]]:
    with psycopg.connect(dbname=name, connect_timeout=5, **PG) as conn:
        return conn.execute("SELECT id, title FROM project ORDER BY id").fetchall()


def test_up_on_postgres_keeps_it_and_refuses_a_switch(tmp_path, pg_copy):
    url, name = pg_copy
    data_dir = tmp_path / "var"
    first = _up(data_dir, "--database", url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "check: OK" in first.stdout and f"database     : PostgreSQL 127.0.0.1:5432/{name}" in first.stdout
    state = json.loads((data_dir / STATE_FILE).read_text())
    assert state["database"] == url
    assert _projects(name) == [(state["project_id"], "on-pg")]  # Label Studio's tables live in PostgreSQL
    assert not list((data_dir / "labelstudio").glob("*.sqlite3"))

    again = _up(data_dir)  # no --database: the data dir's choice
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"(id {state['project_id']})" in again.stdout and f"PostgreSQL 127.0.0.1:5432/{name}" in again.stdout
    assert _projects(name) == [(state["project_id"], "on-pg")]
    assert not list((data_dir / "labelstudio").glob("*.sqlite3"))

    switch = _up(data_dir, "--database", "sqlite")
    assert switch.returncode == 2 and "Traceback" not in switch.stderr
    assert f"keeps Label Studio's data in PostgreSQL 127.0.0.1:5432/{name}" in switch.stderr
    assert "cannot switch to SQLite" in switch.stderr
    assert json.loads((data_dir / STATE_FILE).read_text())["database"] == url


def test_unreachable_postgres_is_a_clear_error(tmp_path):
    port = free_port()  # nothing listens there
    proc = _up(tmp_path / "var", "--database", f"postgresql://postgres@127.0.0.1:{port}/tasveer_nowhere")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"cannot use PostgreSQL at 127.0.0.1:{port}" in proc.stderr
    assert not (tmp_path / "var" / STATE_FILE).exists()  # nothing remembered: another --database may follow
    bad = _up(tmp_path / "var", "--database", "mysql://somewhere/db")
    assert bad.returncode == 2 and "--database must be sqlite, postgres or postgresql://" in bad.stderr


def test_label_studio_gets_only_the_chosen_database(tmp_path, monkeypatch):
    """An inherited database setting (any of the names Label Studio reads) must not move it elsewhere."""
    for key in (
        "DJANGO_DB",
        "LABEL_STUDIO_DJANGO_DB",
        "HEARTEX_POSTGRE_HOST",
        "LABEL_STUDIO_POSTGRE_NAME",
        "DATABASE_URL",
    ):
        monkeypatch.setenv(key, "elsewhere")
    env = LabelStudioServer(tmp_path, 1, token="db-token").environment()
    assert not [k for k in env if "DJANGO_DB" in k or "POSTGRE_" in k or k == "DATABASE_URL"]
    url = "postgresql://ls:p%40ss@db.example:6543/labels"
    env = LabelStudioServer(tmp_path, 1, token="db-token", database=url).environment()
    assert {k: v for k, v in env.items() if "DJANGO_DB" in k or "POSTGRE_" in k} == {
        "DJANGO_DB": "default",
        "POSTGRE_NAME": "labels",
        "POSTGRE_USER": "ls",
        "POSTGRE_PASSWORD": "p@ss",
        "POSTGRE_HOST": "db.example",
        "POSTGRE_PORT": "6543",
    }


def test_sqlite_data_dir_refuses_postgres_and_local_postgres_name_is_stable(tmp_path):
    from sync.state import UpState, save_state

    save_state(tmp_path, UpState())  # a data dir from before --database: SQLite
    proc = _up(tmp_path, "--database", "postgres")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"keeps Label Studio's data in SQLite ({tmp_path / 'labelstudio' / 'label_studio.sqlite3'})" in proc.stderr

    local = resolve("postgres", tmp_path / "other")
    assert local == resolve("postgres", tmp_path / "other") != resolve("postgres", tmp_path / "third")
    assert local.startswith("postgresql://postgres@127.0.0.1:5432/tasveer_other_")
    name = local.rsplit("/", 1)[1]
    try:
        assert ensure_database(local) is True  # made when missing, on this machine's server
        assert ensure_database(local) is False
    finally:
        drop_database(name)
