"""The parameters form: the training parameters a person tunes, validated by the backend (same
rules as Label Studio's extra params and `tasveer params`) with each message next to its field,
saved with PUT /projects/<id>/params (which writes Label Studio's extra params too) by
static/page.js, which sends only what differs from the defaults (#params-data)."""

from __future__ import annotations

from backend.ui.html import data_block, esc
from training.backbone_names import NAMES as MODELS
from training.params import ACQUISITIONS, MODES, TrainParams, help_of

# (name, kind): kind "select:<choices>" or "number"; labels and help are the parameters' own
# (training/params.py), the backbones the registry's (by name: this process may never import torch)
FIELDS = [
    ("model", "select:models"),
    ("mode", "select:modes"),
    ("lr", "number"),
    ("epochs", "number"),
    ("batch_size", "number"),
    ("image_size", "number"),
    ("weight_decay", "number"),
    ("filters", "number"),
    ("kernel_size", "number"),
    ("acquisition", "select:acquisitions"),
    ("retrain_every", "number"),
    ("accurate_every", "number"),
    ("promotion_margin", "number"),
]


def params_section(pid: str, explicit: dict) -> str:
    effective = TrainParams.from_dict(explicit or None).to_dict()
    choices = {"models": list(MODELS), "modes": list(MODES), "acquisitions": list(ACQUISITIONS)}
    if effective["model"] not in choices["models"]:
        choices["models"].append(effective["model"])
    out = ["<h2>Training parameters</h2>", f"<form class='params' id='params' data-project='{esc(pid)}'>"]
    for name, kind in FIELDS:
        label, help_text = help_of(name)["label"], help_of(name)["help"]
        value = effective[name]
        mark = " <b title='set for this project'>&#8226;</b>" if name in explicit else ""
        if kind.startswith("select:"):
            opts = "".join(
                f"<option{' selected' if c == value else ''}>{esc(c)}</option>" for c in choices[kind.split(":")[1]]
            )
            control = f"<select name='{name}' id='p-{name}'>{opts}</select>"
        else:
            shown = "" if value is None else esc(str(value))
            control = f"<input name='{name}' id='p-{name}' type='text' inputmode='decimal' value='{shown}'>"
        out.append(
            f"<label for='p-{name}'>{esc(label)}{mark}</label>{control}"
            f"<span class='msg' data-for='{name}'><span class='muted'>{esc(help_text)}</span></span>"
        )
    out.append(
        "<span></span><span><button type='submit'>save</button> <span id='params-msg' class='small'>"
        "</span></span><span class='small muted'>&#8226; set for this project (the rest are defaults); "
        "the same values as Label Studio's extra params and <code>tasveer params</code></span></form>"
    )
    data = {"explicit": explicit, "defaults": TrainParams().to_dict(), "fields": [f[0] for f in FIELDS]}
    out.append(data_block("params-data", data))
    return "".join(out)
