"""Label Studio on the real PostgreSQL (127.0.0.1:5432, user postgres, trust), a fresh database each.

Label Studio's ~400 migrations take minutes on a busy machine, so they run once per machine into a
template database (`tasveer_ls_<version>_template`, built under a temporary name and renamed when
complete, so a half-migrated template is never used); each test database is a copy of it
(`CREATE DATABASE ... TEMPLATE`, a second), dropped afterwards.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
LS_VERSION = "1_23_2"
TEMPLATE = f"tasveer_ls_{LS_VERSION}_template"


def pg_env(name: str) -> dict[str, str]:
    """What Label Studio reads to use database `name` (core/settings/base.py)."""
    return {"DJANGO_DB": "default", "POSTGRE_NAME": name, "POSTGRE_HOST": PG["host"],
            "POSTGRE_PORT": str(PG["port"]), "POSTGRE_USER": PG["user"], "POSTGRE_PASSWORD": ""}


def _admin():
    import psycopg

    return psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **PG)


def _exists(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _build_template(conn, scratch: Path) -> None:
    import label_studio

    building = f"{TEMPLATE}_build_{secrets.token_hex(3)}"
    conn.execute(f'CREATE DATABASE "{building}"')
    env = {**os.environ, **pg_env(building), "LABEL_STUDIO_BASE_DATA_DIR": str(scratch)}
    manage = Path(label_studio.__file__).parent / "manage.py"
    proc = subprocess.run([sys.executable, str(manage), "migrate", "--no-input"], env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        conn.execute(f'DROP DATABASE IF EXISTS "{building}"')
        raise RuntimeError(f"Label Studio migrations failed:\n{proc.stderr[-3000:]}")
    if not _exists(conn, TEMPLATE):
        conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{TEMPLATE}"')
    else:  # another session finished first
        conn.execute(f'DROP DATABASE "{building}"')


def fresh_database(scratch: Path) -> str:
    """A new, migrated, empty Label Studio database; returns its name."""
    name = f"tasveer_test_{secrets.token_hex(4)}"
    with _admin() as conn:
        if not _exists(conn, TEMPLATE):
            _build_template(conn, scratch)
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    return name


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
