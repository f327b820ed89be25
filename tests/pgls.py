"""Label Studio on the real PostgreSQL (127.0.0.1:5432, user postgres, trust), a fresh database each.

Label Studio's ~400 migrations take minutes on a busy machine, so they run once per machine into a
template database (`tasveer_ls_<version>_template`, built under a temporary name and renamed when
complete, so a half-migrated template is never used); each test database is a copy of it
(`CREATE DATABASE ... TEMPLATE`, a second), dropped afterwards.

Repeated and concurrent runs on one machine (CI, `make test`, a developer) share the template, which
one of them builds while the others wait (lssqlite.build_lock); the
databases a run creates carry its runtag.tag() (`tasveer_test_<tag>_<hex>`, `..._build_<tag>_<hex>`),
so those of a run killed before its clean-up are dropped by the next run, and only those.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from lssqlite import build_lock
from runtag import TAG, orphaned, tag

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
LS_VERSION = "1_23_2"
TEMPLATE = f"tasveer_ls_{LS_VERSION}_template"
OURS = re.compile(rf"(?:tasveer_test|{TEMPLATE}_build)_{TAG}_[0-9a-f]+")


def pg_env(name: str) -> dict[str, str]:
    """What Label Studio reads to use database `name` (core/settings/base.py)."""
    return {
        "DJANGO_DB": "default",
        "POSTGRE_NAME": name,
        "POSTGRE_HOST": PG["host"],
        "POSTGRE_PORT": str(PG["port"]),
        "POSTGRE_USER": PG["user"],
        "POSTGRE_PASSWORD": "",
    }


def _admin():
    import psycopg

    return psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **PG)


def _exists(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _name(kind: str) -> str:
    return f"{kind}_{tag()}_{secrets.token_hex(3)}"


def _drop_orphans(conn) -> None:
    """Drop the databases of runs that ended without dropping them (their process is gone)."""
    for (name,) in conn.execute("SELECT datname FROM pg_database").fetchall():
        match = OURS.fullmatch(name)
        if match and orphaned(*match.groups()):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _build_template(conn, scratch: Path) -> None:
    import label_studio
    import psycopg

    building = _name(f"{TEMPLATE}_build")
    conn.execute(f'CREATE DATABASE "{building}"')
    env = {**os.environ, **pg_env(building), "LABEL_STUDIO_BASE_DATA_DIR": str(scratch)}
    manage = Path(label_studio.__file__).parent / "manage.py"
    proc = subprocess.run(
        [sys.executable, str(manage), "migrate", "--no-input"], env=env, capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        conn.execute(f'DROP DATABASE IF EXISTS "{building}"')
        raise RuntimeError(f"Label Studio migrations failed:\n{proc.stderr[-3000:]}")
    try:
        conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{TEMPLATE}"')
    except psycopg.errors.DuplicateDatabase:  # another session finished first
        conn.execute(f'DROP DATABASE "{building}"')


def fresh_database(scratch: Path) -> str:
    """A new, migrated, empty Label Studio database; returns its name."""
    name = _name("tasveer_test")
    with _admin() as conn:
        _drop_orphans(conn)
        if not _exists(conn, TEMPLATE):
            with build_lock(TEMPLATE):  # one build per machine; the others wait, then copy it
                if not _exists(conn, TEMPLATE):
                    _build_template(conn, scratch)
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    return name


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def label_studio_on_postgres(work: Path):
    """A Label Studio on a fresh copy of the template database (as docker-compose runs it: JSON
    fields are jsonb there), stopped and its database dropped on leaving the block."""
    from sync.labelstudio import LabelStudioServer
    from sync.netutil import free_port

    name = fresh_database(work / "template")
    server = LabelStudioServer(
        work / "ls",
        free_port(),
        username="admin@tasveer.test",
        password="tasveer-test-password",
        token="test" + secrets.token_hex(16),
        extra_env=pg_env(name),
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
        drop_database(name)
