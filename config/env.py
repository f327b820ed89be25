"""Reading and writing the declared environment variables (config/variables.py): the one way
backend/, sync/ and cli/ touch TASVEER_*, LABEL_STUDIO_* and REDIS_URL.

* `read(name)`: one variable's value (parsed and checked; its default when unset or blank).
* `backend_values(env)`: every backend setting by its `Settings` attribute, after `check_rules`
  refused the combinations that cannot work (a SettingsError naming both variables).
* `environment(values)`: the raw text of backend settings for a child process's environment.
* `basic_auth(env)`: the TASVEER_BASIC_AUTH_USER/_PASSWORD pair (else the TASVEER_SECRET login),
  meaning the same everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from config.spec import SettingsError, Var, parse, render
from config.variables import RULES, VARIABLES

BY_NAME = {var.name: var for var in VARIABLES}
BY_FIELD = {var.field: var for var in VARIABLES if var.field}


def variable(name: str) -> Var:
    """The declaration of `name`; KeyError for a name nobody declared."""
    return BY_NAME[name]


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def is_set(name: str, env: Mapping[str, str] | None = None) -> bool:
    raw = _env(env).get(variable(name).name)
    return raw is not None and bool(raw.strip())


def read(name: str, env: Mapping[str, str] | None = None) -> Any:
    """The value of the declared variable `name` in `env` (default: this process's environment)."""
    var = variable(name)
    return parse(var, _env(env).get(var.name))


def check_rules(env: Mapping[str, str] | None = None) -> None:
    """SettingsError for the first variable set in a mode where it cannot work (RULES)."""
    env = _env(env)
    for rule in RULES:
        if is_set(rule.name, env) and is_set(rule.other, env) == rule.other_set and rule.when(read(rule.name, env)):
            raise SettingsError(rule.message(env[rule.name].strip()))


def backend_values(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """{Settings attribute: value} of every backend setting in `env`, combinations checked."""
    env = _env(env)
    values = {field: parse(var, env.get(var.name)) for field, var in BY_FIELD.items()}
    check_rules(env)
    return values


def environment(values: Mapping[str, Any]) -> dict[str, str]:
    """{variable: raw text} for backend settings given by attribute: what `backend_values` reads
    back as `values`. A default is written blank (= unset), so that it never counts as set."""
    out = {}
    for field, value in values.items():
        var = BY_FIELD[field]
        out[var.name] = "" if value == var.default else render(var, value)
    return out


def basic_auth(env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(user, password) the backend requires and clients send: TASVEER_BASIC_AUTH_USER/_PASSWORD,
    else (`SECRET_USER`, TASVEER_SECRET); None when none is set; SettingsError when only one of the
    pair is."""
    return credentials(
        read("TASVEER_BASIC_AUTH_USER", env), read("TASVEER_BASIC_AUTH_PASSWORD", env), read("TASVEER_SECRET", env)
    )


SECRET_USER = "tasveer"  # the basic-auth user name that goes with TASVEER_SECRET


def credentials(user: str | None, password: str | None, secret: str | None) -> tuple[str, str] | None:
    """The basic-auth pair clients send: the configured pair, else (SECRET_USER, secret), else None."""
    return pair_or_none(user, password) or ((SECRET_USER, secret) if secret else None)


def pair_or_none(user: str | None, password: str | None) -> tuple[str, str] | None:
    if not user or not password:
        if user or password:
            raise SettingsError("TASVEER_BASIC_AUTH_USER and TASVEER_BASIC_AUTH_PASSWORD must be set together")
        return None
    return (user, password)
