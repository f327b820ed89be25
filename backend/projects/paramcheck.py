"""Training parameters checked field by field, so a form can show each message next to its field.
The rules are TrainParams' own (training/params.py, through projects.parse_extra_params)."""

from __future__ import annotations

from backend.errors import RequestError
from training.params import ParamError, TrainParams


class ParamsRejected(RequestError):
    """Bad training parameters; `fields` maps each bad parameter to its message."""

    def __init__(self, message: str, fields: dict[str, str]):
        super().__init__(message, status=422)
        self.fields = fields


def field_errors(values: dict, parse) -> dict[str, str]:
    """{name: message} for the bad values in `values` (`parse` validates a dict of parameters and
    raises ParamError). A value that is fine alone but not with the others (e.g. mode 'head' with
    model 'smallcnn') is charged to the first field its message names."""
    if not isinstance(values, dict):
        return {"": f"training parameters must be a JSON object, got {type(values).__name__}"}
    known = set(TrainParams.names())
    errors = {}
    for name, value in values.items():
        if name not in known:
            errors[name] = f"unknown training parameter {name!r}"
            continue
        alone = {name: value} if name in ("mode", "model", "pretrained") else {"mode": "finetune", name: value}
        try:
            parse(alone)
        except ParamError as exc:
            errors[name] = str(exc)
    if not errors:
        try:
            parse(values)
        except ParamError as exc:
            text = str(exc)
            named = sorted((text.find(n), n) for n in values if n in text)
            errors[named[0][1] if named else ""] = text
    return errors
