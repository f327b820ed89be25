"""The embedding map section of the model page: the controls (colour by label / prediction /
labeled or not / confidence, the selection's count, "Open in Label Studio as a tab") and an empty
box that static/map.js fills from GET /projects/<id>/map.json (backend/collection/points.py). The
page itself computes nothing for the map: at 50,000 photos the data comes after the page, once.
Its scripts are files of this package (the page's policy runs no inline script): the vendored
plotting library (static/vendor/, see its README.md) and map.js. The chart (#map) lies under a
transparent canvas (#map-lasso) on which map.js draws the lasso: at 50,000 points the chart is drawn
once per selection, never per mouse move."""

from __future__ import annotations

from backend.ui.html import esc

MAP_SCRIPT_URL = "/static/map.js"
VENDOR_URL = "/static/vendor/"
LIBRARY = "echarts-map.min.js"
COLOUR_BY = (
    ("label", "label"),
    ("predicted", "prediction"),
    ("labeled", "labeled or not"),
    ("confidence", "confidence"),
)


def map_section(pid: str, source: str | None = None) -> str:
    """The section's HTML; `source` is where map.js reads the points (the project's map.json unless
    given: bench/map.py gives synthetic data)."""
    url = source or f"/projects/{pid}/map.json"
    options = "".join(f"<option value='{value}'>{esc(text)}</option>" for value, text in COLOUR_BY)
    return (
        "<h2>Embedding map</h2>"
        f"<div id='map-box' data-project='{esc(pid)}' data-source='{esc(url)}'>"
        "<p class='small muted'><span id='map-layout'>Every photo with an embedding as a point.</span> "
        "Draw around points to select them (lasso), the wheel zooms, hovering shows the photo, a click "
        "clears the selection.</p>"
        f"<p><label>colour by <select id='map-colour'>{options}</select></label> "
        "<span id='map-count' class='small'></span> · <span id='map-selected' class='small'>no selection</span> "
        "<button id='map-open' disabled>Open in Label Studio as a tab</button> "
        "<button id='map-clear' disabled>clear the selection</button> "
        "<span id='map-msg' class='small'></span></p>"
        "<p id='map-info' class='small muted'>loading the map…</p>"
        "<div id='map-area'><div id='map'></div><canvas id='map-lasso'></canvas></div></div>"
        f"<script src='{VENDOR_URL}{LIBRARY}'></script><script src='{MAP_SCRIPT_URL}'></script>"
    )
