"""The parameters form: the training parameters a person tunes, validated by the backend (same
rules as Label Studio's extra params and `tasveer params`) with each message next to its field,
saved with PUT /projects/<id>/params (which writes Label Studio's extra params too)."""
from __future__ import annotations

from backend.ui.html import esc, script_json
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
    out = ["<h2>Training parameters</h2>",
           f"<form class='params' id='params' data-project='{esc(pid)}' onsubmit='saveParams(event)'>"]
    for name, kind in FIELDS:
        label, help_text = help_of(name)["label"], help_of(name)["help"]
        value = effective[name]
        mark = " <b title='set for this project'>&#8226;</b>" if name in explicit else ""
        if kind.startswith("select:"):
            opts = "".join(f"<option{' selected' if c == value else ''}>{esc(c)}</option>"
                           for c in choices[kind.split(':')[1]])
            control = f"<select name='{name}' id='p-{name}'>{opts}</select>"
        else:
            shown = "" if value is None else esc(str(value))
            control = f"<input name='{name}' id='p-{name}' type='text' inputmode='decimal' value='{shown}'>"
        out.append(f"<label for='p-{name}'>{esc(label)}{mark}</label>{control}"
                   f"<span class='msg' data-for='{name}'><span class='muted'>{esc(help_text)}</span></span>")
    out.append("<span></span><span><button type='submit'>save</button> <span id='params-msg' class='small'>"
               "</span></span><span class='small muted'>&#8226; set for this project (the rest are defaults); "
               "the same values as Label Studio's extra params and <code>tasveer params</code></span></form>")
    out.append(f"<script>window.PARAMS = {script_json({'explicit': explicit, 'defaults': TrainParams().to_dict(), 'fields': [f[0] for f in FIELDS]})};</script>")
    return "".join(out)


SCRIPT = r"""
function formValue(el, name) {
  const raw = el.value.trim();
  if (el.tagName === 'SELECT') return raw;
  if (raw === '') return null;
  const n = Number(raw);
  return Number.isNaN(n) ? raw : n;
}
async function saveParams(ev) {
  ev.preventDefault();
  const form = document.getElementById('params');
  const P = window.PARAMS;
  const body = {};
  for (const [k, v] of Object.entries(P.explicit)) if (!P.fields.includes(k)) body[k] = v;
  for (const name of P.fields) {
    const v = formValue(form.elements[name], name);
    if (v === null) continue;
    if (v !== P.defaults[name]) body[name] = v;
  }
  for (const m of form.querySelectorAll('.msg')) {
    m.classList.remove('err');
    if (m.dataset.help === undefined) m.dataset.help = m.innerHTML;
    m.innerHTML = m.dataset.help;
  }
  const msg = document.getElementById('params-msg');
  msg.textContent = 'saving…'; msg.className = 'small';
  const r = await fetch('/projects/' + form.dataset.project + '/params', {method: 'PUT',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  const answer = await r.json();
  if (r.ok) {
    P.explicit = answer.params;
    msg.textContent = 'saved'; msg.className = 'small ok';
    return;
  }
  let placed = false;
  for (const [name, text] of Object.entries(answer.fields || {})) {
    const slot = form.querySelector('.msg[data-for="' + name + '"]');
    if (slot) { slot.textContent = text; slot.classList.add('err'); placed = true; }
  }
  msg.textContent = placed ? 'not saved: see the messages above' : (answer.error || r.statusText);
  msg.className = 'small err';
}
"""
