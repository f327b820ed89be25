"""HTML helpers of the model page: escaping, number formats, the page shell, and the styles of
the model page and the metrics page. The pages run no inline script: their behaviour is
static/page.js (served at SCRIPT_URL), their server-side data JSON blocks (`data_block`), and their
one <style> element each is allowed by its hash (`style_sources`, api/guards.py's policy)."""

from __future__ import annotations

import base64
import hashlib
import html
import json

esc = html.escape
SCRIPT_URL = "/static/page.js"

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2em 2em;color:#222;max-width:1400px}
h1{margin:.1em 0 .2em} h2{margin-top:1.4em;border-bottom:1px solid #ddd;padding-bottom:.15em}
h3{margin:.8em 0 .3em}
table{border-collapse:collapse;margin:.4em 0 1em}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;vertical-align:top} th{background:#f3f3f3}
td.l,th.l{text-align:left}
tr.serving{background:#eef7ee} tr.selected td:first-child{box-shadow:inset 4px 0 #2c6fbb}
td.nw{white-space:nowrap}
svg.chart{background:#fff;border:1px solid #ddd}
.row{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}
.muted{color:#777} .small{font-size:.85em} .err{color:#b00020} .ok{color:#1a7f37}
.tag{display:inline-block;padding:0 .4em;border-radius:.6em;font-size:.8em;border:1px solid #aaa}
.tag.serving{background:#1a7f37;color:#fff;border-color:#1a7f37} .tag.candidate{background:#fff3cd;border-color:#d4a72c}
button{cursor:pointer;padding:.25em .8em} nav a{margin-right:1em}
.gallery{display:flex;flex-wrap:wrap;gap:10px}
.card{width:132px;border:1px solid #ddd;border-radius:6px;padding:4px;font-size:.82em;text-decoration:none;color:#222}
.card img{width:124px;height:124px;object-fit:cover;border-radius:4px;display:block;background:#eee}
.card .lab{font-weight:600;display:flex;justify-content:space-between}
.conf{display:block;height:4px;background:#eee;border-radius:2px;margin:2px 0}
form.params{display:grid;grid-template-columns:max-content 16em auto;gap:.35em .8em;align-items:center}
form.params .msg{font-size:.85em} form.params input,form.params select{width:100%;box-sizing:border-box}
.progress{width:320px;height:10px;background:#eee;border-radius:5px;display:inline-block;vertical-align:middle}
.progress i{display:block;height:10px;background:#2c6fbb;border-radius:5px} #train-bar{width:0}
"""

METRICS_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222}
h1{margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0 1.2em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right} th{background:#f3f3f3}
td:first-child{text-align:left} tr.serving{font-weight:bold;background:#eef7ee}
.row{display:flex;gap:2em;flex-wrap:wrap;align-items:flex-start}
button{cursor:pointer} .muted{color:#777} .err{color:#b00}
svg.chart{background:#fff;border:1px solid #ddd}
"""


def pct(value) -> str:
    return "&ndash;" if value is None else f"{value:.1%}"


def num(value, digits: int = 3) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return esc(str(value))


def when(iso: str | None) -> str:
    return esc((iso or "")[:19].replace("T", " ")) or "&ndash;"


def seconds(value) -> str:
    if value is None:
        return "&ndash;"
    value = float(value)
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def document(title: str, body: str, style: str = STYLE) -> str:
    """A page: its style inline (allowed by hash), its behaviour from SCRIPT_URL (in <head>, so its
    listeners are there before any button is), no inline script."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{style}</style>"
        f"<script src='{SCRIPT_URL}'></script></head><body>{body}</body></html>"
    )


def style_sources() -> str:
    """The CSP `style-src` sources allowing exactly the pages' <style> elements (STYLE, METRICS_STYLE)."""
    hashes = (base64.b64encode(hashlib.sha256(style.encode()).digest()).decode() for style in (STYLE, METRICS_STYLE))
    return " ".join(f"'sha256-{h}'" for h in hashes)


def script_json(value) -> str:
    """JSON that cannot end or confuse the <script> element holding it: `<`, `>` and `&` as \\u escapes."""
    text = json.dumps(value, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def data_block(element_id: str, value) -> str:
    """Server-side data for static/page.js: a JSON block, never executed (no inline script for the policy)."""
    return f"<script type='application/json' id='{esc(element_id)}'>{script_json(value)}</script>"
