"""Where Label Studio keeps its tables: SQLite in its data dir (the default) or a PostgreSQL database.

A choice is written as `sqlite` or as a `postgresql://user[:password]@host[:port]/name` URL (what
`tasveer up --database` takes and its state file keeps); `postgres` names this machine's server
(127.0.0.1:5432, user postgres, trusted locally) and a database derived from the data dir.
Label Studio 1.23.2 reads PostgreSQL settings from `DJANGO_DB=default` and `POSTGRE_NAME/USER/
PASSWORD/HOST/PORT` (label_studio/core/settings/base.py, DATABASES_ALL), each of which it also reads
with a `LABEL_STUDIO_` or `HEARTEX_` prefix first (core/utils/params.py get_env).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

SQLITE = "sqlite"
SQLITE_SETTINGS = Path(__file__).resolve().parent / "lssettings" / "tasveer_ls_settings.py"
LOCAL_POSTGRES = "postgres"
LOCAL_SERVER = ("127.0.0.1", 5432, "postgres")  # host, port, user
SCHEMES = ("postgresql", "postgres")

# what Label Studio reads to pick its database; an inherited one must not move it elsewhere
_LS_DATABASE_KEYS = (
    "DJANGO_DB",
    "DATABASE_NAME",
    "POSTGRE_NAME",
    "POSTGRE_USER",
    "POSTGRE_PASSWORD",
    "POSTGRE_HOST",
    "POSTGRE_PORT",
)


class DatabaseProblem(RuntimeError):
    """The database is not usable (unreachable, refused, a bad URL)."""


@dataclass(frozen=True)
class Postgres:
    """One PostgreSQL database Label Studio uses."""

    host: str
    port: int
    name: str
    user: str
    password: str = ""

    @property
    def where(self) -> str:
        """host:port/name (no credentials): what messages show."""
        return f"{self.host}:{self.port}/{self.name}"

    @property
    def url(self) -> str:
        secret = f":{quote(self.password, safe='')}" if self.password else ""
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        return f"postgresql://{quote(self.user, safe='')}{secret}@{host}:{self.port}/{self.name}"

    def ls_env(self) -> dict[str, str]:
        return {
            "DJANGO_DB": "default",
            "POSTGRE_NAME": self.name,
            "POSTGRE_USER": self.user,
            "POSTGRE_PASSWORD": self.password,
            "POSTGRE_HOST": self.host,
            "POSTGRE_PORT": str(self.port),
        }


def parse(choice: str) -> Postgres | None:
    """None for SQLite, else the PostgreSQL database of a URL."""
    if choice == SQLITE:
        return None
    parts = urlsplit(choice)
    name = unquote(parts.path.lstrip("/"))
    if parts.scheme not in SCHEMES or not parts.hostname or not name or "/" in name:
        raise DatabaseProblem(
            f"--database must be sqlite, postgres or postgresql://user[:password]@host[:port]/name, not {choice!r}"
        )
    try:
        port = parts.port or 5432
    except ValueError:
        raise DatabaseProblem(f"bad port in --database {choice!r}") from None
    return Postgres(parts.hostname, port, name, unquote(parts.username or "postgres"), unquote(parts.password or ""))


def local_name(data_dir: Path) -> str:
    """`tasveer_<dir name>_<hash of the absolute path>`: stable for a data dir, unlike for another."""
    path = str(Path(data_dir).resolve())
    slug = re.sub(r"[^a-z0-9]+", "_", Path(path).name.lower()).strip("_")[:24]
    digest = hashlib.sha256(path.encode()).hexdigest()[:10]
    return f"tasveer_{slug}_{digest}" if slug else f"tasveer_{digest}"


def resolve(choice: str, data_dir: Path) -> str:
    """`sqlite`, or the URL of the PostgreSQL database `choice` names (`postgres`: this machine's)."""
    if choice == LOCAL_POSTGRES:
        host, port, user = LOCAL_SERVER
        return Postgres(host, port, local_name(data_dir), user).url
    target = parse(choice)
    return SQLITE if target is None else target.url


def same_database(a: str, b: str) -> bool:
    """Whether two choices name the same tables (credentials may differ)."""
    first, second = parse(a), parse(b)
    if first is None or second is None:
        return first is second
    return first.where == second.where


def describe(choice: str, ls_data_dir: Path) -> str:
    target = parse(choice)
    if target is None:
        return f"SQLite ({Path(ls_data_dir) / 'label_studio.sqlite3'})"
    return f"PostgreSQL {target.where} (user {target.user})"


def ls_environment(env: dict[str, str], choice: str) -> dict[str, str]:
    """`env` without any inherited database setting, plus those of `choice`; on SQLite, LS's own
    settings with immediate transactions (sync/lssettings/tasveer_ls_settings.py says why)."""
    out = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    for key in _LS_DATABASE_KEYS:
        for prefix in ("", "LABEL_STUDIO_", "HEARTEX_"):
            out.pop(prefix + key, None)
    target = parse(choice)
    if target is not None:
        out.update(target.ls_env())
        return out
    out["DJANGO_SETTINGS_MODULE"] = SQLITE_SETTINGS.stem
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(SQLITE_SETTINGS.parent), env.get("PYTHONPATH")) if p)
    return out


def ensure_database(choice: str, timeout: float = 5.0) -> bool:
    """Check that a PostgreSQL choice is reachable and create its database when missing (True when
    created). SQLite: nothing to do. Raises DatabaseProblem naming host:port."""
    target = parse(choice)
    if target is None:
        return False
    import psycopg  # Label Studio's own PostgreSQL driver: there whenever Label Studio is installed
    from psycopg import sql

    login: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "connect_timeout": max(1, int(timeout)),
    }
    if target.password:
        login["password"] = target.password
    try:
        psycopg.connect(dbname=target.name, **login).close()
        return False
    except psycopg.OperationalError as exc:
        first = _first_line(exc)
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, **login) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target.name,)).fetchone()
            if found:
                raise DatabaseProblem(f"PostgreSQL at {target.host}:{target.port} refused {target.name}: {first}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target.name)))
            return True
    except psycopg.Error as exc:
        raise DatabaseProblem(
            f"cannot use PostgreSQL at {target.host}:{target.port} (database {target.name}, user {target.user}): "
            f"{first if 'does not exist' not in first else _first_line(exc)}"
        ) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
