"""A migrated, empty Label Studio SQLite database, so that a Label Studio a test starts skips its
~400 migrations (30 to 100 s on this 2-core machine, most of a cold start) and only does what any
first start does after them: create its admin user and organization.

Like pgls.py's template database for PostgreSQL, the migrations run once per machine, into
`<cache>/label_studio_<LS version>_django_<Django version>.sqlite3` (`$XDG_CACHE_HOME/tasveer-tests`,
else `~/.cache/tasveer-tests`), built under a temporary name and renamed when complete, so a
half-migrated file is never used; `migrated_database(dir)` copies it to `dir/label_studio.sqlite3`.
Repeated and concurrent runs share the file, and only one of them builds it: the others wait on
`build_lock` (two pytest workers of a clean clone would otherwise both migrate, a minute of CPU
each); a build left by a killed run (its runtag.tag() in the name) is removed by the next build.

A test about Label Studio's start from nothing (test_up's first `tasveer up --check`) does not use it.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

from runtag import TAG, orphaned, tag

DB_FILE = "label_studio.sqlite3"  # Label Studio's DATABASE_NAME in its base data dir (core/settings/base.py)
BUILD = re.compile(rf"build_{TAG}_[0-9a-f]+")


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tasveer-tests"


def template_path() -> Path:
    return cache_dir() / f"label_studio_{version('label-studio')}_django_{version('django')}.sqlite3"


@contextmanager
def build_lock(what: str) -> Iterator[None]:
    """Held while this process builds (or finds) the template `what`: one builder per machine,
    the other processes wait and then find it built (the lock goes with the process if killed)."""
    path = cache_dir() / f"{what}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _migrate(scratch: Path) -> Path:
    """Label Studio's migrations into a new SQLite database under `scratch`, in the environment
    sync/labelstudio.py gives Label Studio; returns the database file."""
    import label_studio

    from sync.labelstudio import LabelStudioServer

    env = LabelStudioServer(scratch, 1, token="template-build").environment()
    manage = Path(label_studio.__file__).parent / "manage.py"
    proc = subprocess.run(
        [sys.executable, str(manage), "migrate", "--no-input"], env=env, capture_output=True, text=True, timeout=900
    )
    db = scratch / DB_FILE
    if proc.returncode != 0 or not db.is_file():
        raise RuntimeError(f"Label Studio migrations into {db} failed:\n{proc.stderr[-3000:]}")
    return db


def _build(template: Path) -> None:
    template.parent.mkdir(parents=True, exist_ok=True)
    for old in template.parent.iterdir():
        match = BUILD.fullmatch(old.name)
        if match and orphaned(*match.groups()):
            shutil.rmtree(old, ignore_errors=True)
    scratch = template.parent / f"build_{tag()}_{secrets.token_hex(3)}"
    try:
        os.replace(_migrate(scratch), template)  # one file system: the template appears whole
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def migrated_database(data_dir: Path) -> Path:
    """A copy of the migrated empty database at `data_dir/label_studio.sqlite3` (the template is
    built first when this machine has none); returns the copy."""
    template = template_path()
    if not template.is_file():
        with build_lock(template.stem):
            if not template.is_file():  # not built by the process this one waited for
                _build(template)
    data_dir.mkdir(parents=True, exist_ok=True)
    dest = data_dir / DB_FILE
    shutil.copyfile(template, dest)
    return dest
