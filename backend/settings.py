"""Backend settings, read once from the environment (`Settings.from_env()`).

Each variable (name, kind, default, allowed values, meaning, who reads it) is declared once, in
config/variables.py; `Settings` has one attribute per declared variable with a `field` (the
declaration names it), and the README's settings table is generated from the same declarations
(`python -m config --markdown`). A bad value, or a variable set in a mode where it cannot work
(config.variables.RULES), is a SettingsError naming the variable(s).
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config.env import BY_FIELD, backend_values, credentials, environment, pair_or_none
from config.spec import SettingsError, check

__all__ = ["Settings", "SettingsError"]


# the annotation of each kind's attribute (for readers: nothing checks it)
_TYPES = {"text": "str | None", "path": "Path | None", "int": "int", "float": "float", "bool": "bool",
          "hosts": "tuple[str, ...]", "choice": "str"}
# one frozen field per declared backend variable, in the declarations' order
_Fields = dataclasses.make_dataclass(
    "_Fields", [(name, _TYPES[var.kind], dataclasses.field(default=var.default)) for name, var in BY_FIELD.items()],
    frozen=True,
)


@dataclasses.dataclass(frozen=True)  # (again: so that its __init__ calls __post_init__)
class Settings(_Fields):  # type: ignore[misc,valid-type]  # its fields come from the declarations
    """The backend's settings: a frozen dataclass with one attribute per declared backend variable
    (config/variables.py, `field=`)."""

    def __post_init__(self) -> None:
        # values given directly (tests, `from_env` overrides) are checked like those from the environment
        for name, var in BY_FIELD.items():
            value = getattr(self, name)
            if var.kind == "path" and value is not None:
                object.__setattr__(self, name, Path(value))
            check(var, getattr(self, name))
        pair_or_none(self.basic_auth_user, self.basic_auth_password)
        if self.label_studio_url:
            object.__setattr__(self, "label_studio_url", self.label_studio_url.rstrip("/"))
        if self.train_in == "process" and self.engine == "torch":
            raise SettingsError("TASVEER_TRAIN_IN=process keeps torch out of the serving process: "
                                "use TASVEER_ENGINE=onnx or auto")

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """The basic-auth pair clients send (the configured pair, else ("tasveer", secret)); None when
        no login is configured."""
        return credentials(self.basic_auth_user, self.basic_auth_password, self.secret)

    def to_env(self) -> dict[str, str]:
        """The environment that `from_env` reads back into these settings (for child processes)."""
        return environment({name: getattr(self, name) for name in BY_FIELD})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings in `env` (default: os.environ); `overrides` replace values by attribute."""
        values = backend_values(os.environ if env is None else env)
        values.update(overrides)
        return cls(**values)
