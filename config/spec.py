"""What one environment variable is (`Var`), how its raw text is read and written, and the rules
that refuse a variable in a mode where it cannot work (`Rule`).

Kinds: `text`, `path`, `int`, `float`, `bool` (1/0, true/false, yes/no, on/off), `hosts` (a
comma-separated list, lower-cased), `choice` (one of `choices`, lower-cased). Unset or blank always
means the default. Every message names the variable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
KINDS = ("text", "path", "int", "float", "bool", "hosts", "choice")


class SettingsError(ValueError):
    """A bad environment value, or a variable set where it cannot work; the message names the
    variable (both variables, for a combination)."""


@dataclass(frozen=True)
class Var:
    """One environment variable, declared once (config/variables.py)."""

    name: str
    kind: str
    default: Any
    help: str
    readers: tuple[str, ...]  # keys of config.variables.READERS
    field: str | None = None  # the attribute of backend.settings.Settings that holds it
    lo: float | None = None  # numbers: the smallest value allowed (excluded with lo_open)
    hi: float | None = None
    lo_open: bool = False
    choices: tuple[str, ...] = ()
    # beyond the kind: (ok(value), what the message says is allowed, e.g. "must be a ... URL")
    valid: tuple[Callable[[Any], bool], str] | None = None
    default_text: str | None = None  # the default as the docs show it, where the value says too little

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if (self.kind == "choice") != bool(self.choices):
            raise ValueError(f"{self.name}: choices go with kind 'choice' (and it needs them)")


@dataclass(frozen=True)
class Rule:
    """`name` cannot work when `other` is set (`other_set`), or when it is not: setting `name` (to a
    value for which `when` holds) in that mode is refused at start, never ignored."""

    name: str
    other: str
    other_set: bool
    why: str
    when: Callable[[Any], bool] = lambda value: True

    def message(self, raw: str) -> str:
        mode = f"with {self.other} set" if self.other_set else f"without {self.other}"
        return f"{self.name}={raw} cannot work {mode}: {self.why}"


def parse(var: Var, raw: str | None) -> Any:
    """The value of `var` from its raw text (None or blank: the default); SettingsError if bad."""
    if raw is None or not raw.strip():
        return var.default
    text = raw.strip()
    value: Any
    if var.kind in ("int", "float"):
        try:
            value = int(text) if var.kind == "int" else float(text)
        except ValueError:
            what = "a whole number" if var.kind == "int" else "a number"
            raise SettingsError(f"{var.name} must be {what}; got {raw!r}") from None
    elif var.kind == "bool":
        if text.lower() not in TRUE + FALSE:
            raise SettingsError(f"{var.name} must be 1 or 0 (true/false, yes/no, on/off); got {raw!r}")
        value = text.lower() in TRUE
    elif var.kind == "hosts":
        value = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    elif var.kind == "choice":
        value = text.lower()
    elif var.kind == "path":
        value = Path(raw)
    else:
        value = raw
    check(var, value)
    return value


def check(var: Var, value: Any) -> None:
    """SettingsError unless `value` (already of the kind's type; None passes) is allowed."""
    if value is None:
        return
    if var.choices and value not in var.choices:
        raise SettingsError(f"{var.name} must be one of {', '.join(var.choices)}; got {value!r}")
    if var.kind in ("int", "float") and not _in_range(var, value):
        raise SettingsError(f"{var.name} must be {number_range(var)}; got {value}")
    if var.valid is not None and not var.valid[0](value):
        raise SettingsError(f"{var.name} {var.valid[1]}; got {value!r}")


def _in_range(var: Var, value) -> bool:
    low_ok = var.lo is None or (value > var.lo if var.lo_open else value >= var.lo)
    return low_ok and (var.hi is None or value <= var.hi)


def number_range(var: Var) -> str:
    parts = []
    if var.lo is not None:
        parts.append(f"{'>' if var.lo_open else '>='} {var.lo:g}")
    if var.hi is not None:
        parts.append(f"<= {var.hi:g}")
    return " and ".join(parts) or "any number"


def render(var: Var, value: Any) -> str:
    """The raw text `parse` reads back into `value` ("" for None)."""
    if value is None:
        return ""
    if var.kind == "bool":
        return "1" if value else "0"
    if var.kind == "hosts":
        return ",".join(value)
    return str(value)


def describe(var: Var) -> str:
    """The values allowed, for the docs."""
    if var.kind == "choice":
        return ", ".join(f"`{c}`" for c in var.choices)
    if var.kind in ("int", "float"):
        return f"{'whole number' if var.kind == 'int' else 'number'} {number_range(var)}"
    if var.valid is not None:  # "must be a ... URL" -> "a ... URL"
        return var.valid[1].removeprefix("must be ").removeprefix("may hold ")
    return {"bool": "`1` or `0`", "hosts": "comma-separated hosts", "path": "path"}.get(var.kind, "text")


def default_text(var: Var) -> str:
    """The default, for the docs."""
    if var.default_text is not None:
        return var.default_text
    if var.default is None or var.default == ():
        return "none"
    return f"`{render(var, var.default)}`"
