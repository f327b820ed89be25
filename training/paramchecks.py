"""The value checks `TrainParams` runs on each field, and the error they raise: a message that
names the parameter and says what is allowed."""

from __future__ import annotations

import math


class ParamError(ValueError):
    """A hyperparameter with a bad name or value; the message names it and says what is allowed."""


def check_str(params, name, value):
    if not isinstance(value, str) or not value.strip():
        raise ParamError(f"{name} must be a non-empty string; got {value!r}")


def check_bool(params, name):
    value = getattr(params, name)
    if not isinstance(value, bool):
        raise ParamError(f"{name} must be true or false; got {value!r}")


def check_num(params, name, kind, lo=None, hi=None, lo_open=False):
    value = getattr(params, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamError(f"{name} must be a number; got {value!r}")
    if kind is int:
        if isinstance(value, float):
            if not value.is_integer():
                raise ParamError(f"{name} must be a whole number; got {value!r}")
            object.__setattr__(params, name, int(value))
            value = int(value)
    else:
        if not math.isfinite(value):
            raise ParamError(f"{name} must be a finite number; got {value!r}")
        object.__setattr__(params, name, float(value))
    too_low = lo is not None and (value <= lo if lo_open else value < lo)
    too_high = hi is not None and value > hi
    if too_low or too_high:
        lower = f"> {lo}" if lo_open else f">= {lo}"
        raise ParamError(f"{name} must be {lower} and <= {hi}; got {value!r}")
