"""The embedding map in Chromium: time to first draw and to a lasso selection at 10k and 50k points.

    .venv/bin/python bench/map.py                 # 10,000 and 50,000 points, 3 runs each (about 1 min)
    .venv/bin/python bench/map.py --sizes 2000 --repeats 1      # quick check
    .venv/bin/python bench/map.py --json          # one JSON object on stdout

Synthetic points: clusters of six classes in 64 dimensions, projected by training/projection.py as
the backend does, with labels, predictions and confidences, in the columns of GET map.json
(backend/collection/points.py). A local HTTP server serves them with the model page's map section
(backend/ui/mapsection.py), the same static/map.js and vendored library, under the model page's
Content-Security-Policy. Headless Debian chromium (/usr/bin/chromium, software canvas, no GPU).

* first draw: navigation start to ECharts' first `finished` event (page, scripts, points fetched and
  parsed, series built, drawn); also map.js's own share (its start to the draw).
* lasso: a polygon around the left half of the plot dragged with the mouse (MOVES moves); the time
  from the mouse button's release to the selection's final count on the page (map.js finds the points
  inside and redraws the chart with them ringed, then shows the count), the drag's own duration
  (press to release: each move waits for the page to handle it, so a slow lasso shows here) and that
  duration per move. map.js draws the lasso on an overlay canvas, so the per-move time should not
  grow with the points (before, ECharts' brush redrew the whole chart on every move).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.api.guards import PAGE_POLICY  # noqa: E402
from backend.ui.html import SCRIPT_URL, document  # noqa: E402
from backend.ui.mapsection import LIBRARY, MAP_SCRIPT_URL, VENDOR_URL, map_section  # noqa: E402
from training.projection import project_2d, scaled  # noqa: E402

STATIC = Path(__file__).resolve().parents[1] / "backend" / "ui" / "static"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
CLASSES = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
# timestamps of the lasso's press and release (pointer events: map.js cancels the mouse events), and of
# the last change of the selection count
WATCH_JS = """() => {
    window.LASSO = {};
    window.addEventListener('pointerdown', () => { LASSO.down = performance.now(); }, true);
    window.addEventListener('pointerup', () => { LASSO.up = performance.now(); }, true);
    new MutationObserver(() => { LASSO.last = performance.now(); })
        .observe(document.getElementById('map-box'), {attributes: true, attributeFilter: ['data-selected']});
}"""
SETTLE_S = 2.0  # after the release: the selection is final by then
STEPS = 10  # mouse moves per side of the lasso's pentagon
MOVES = 5 * STEPS


def synthetic_points(n: int, seed: int = 0) -> bytes:
    """map.json's columns for `n` synthetic photos (see the module docstring)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(CLASSES), 64)) * 2
    truth = rng.integers(0, len(CLASSES), n)
    vectors = (centres[truth] + rng.standard_normal((n, 64))).astype(np.float32)
    xy = scaled(project_2d(vectors))
    predicted = np.where(rng.random(n) < 0.85, truth, rng.integers(0, len(CLASSES), n))
    labeled = rng.random(n) < 0.2
    answer = {
        "project": "bench",
        "version": "v0001",
        "n": n,
        "missing": 0,
        "top": 10_000,
        "task": list(range(1, n + 1)),
        "x": xy[:, 0].tolist(),
        "y": xy[:, 1].tolist(),
        "label": np.where(labeled, truth, -1).tolist(),
        "predicted": predicted.tolist(),
        "confidence": rng.integers(300, 1001, n).tolist(),
        "classes": CLASSES,
    }
    return json.dumps(answer, separators=(",", ":")).encode()


def serve(sizes: list[int]) -> ThreadingHTTPServer:
    """A local server of the map page (`/?n=N`), its scripts and the points of each size."""
    points = {n: synthetic_points(n) for n in sizes}
    files = {
        SCRIPT_URL: STATIC / "page.js",
        MAP_SCRIPT_URL: STATIC / "map.js",
        VENDOR_URL + LIBRARY: STATIC / "vendor" / LIBRARY,
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def answer(self, body: bytes, kind: str, policy: str | None = None):
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            if policy:
                self.send_header("Content-Security-Policy", policy)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlsplit(self.path)
            n = int(parse_qs(url.query).get("n", ["0"])[0] or 0)
            if url.path == "/":
                html = document("map bench", map_section("bench", source=f"/points.json?n={n}"))
                self.answer(html.encode(), "text/html; charset=utf-8", PAGE_POLICY)
            elif url.path == "/points.json" and n in points:
                self.answer(points[n], "application/json")
            elif url.path in files:
                self.answer(files[url.path].read_bytes(), "text/javascript; charset=utf-8")
            else:
                self.send_error(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def one_run(browser, base: str, n: int) -> dict:
    """Open the map of `n` points in a fresh page, time its first draw and a lasso selection."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/?n={n}")
    box = page.locator("#map-box")
    deadline = time.monotonic() + 120
    while box.get_attribute("data-state") not in ("drawn", "error") and time.monotonic() < deadline:
        time.sleep(0.02)
    if box.get_attribute("data-state") != "drawn":
        raise RuntimeError(f"{n} points: the map did not draw: {page.locator('#map-info').inner_text()}")
    first = {"draw_ms": int(box.get_attribute("data-drawn-at")), "map_js_ms": int(box.get_attribute("data-drawn-ms"))}
    page.locator("#map").scroll_into_view_if_needed()
    left, top, right, bottom = page.evaluate(
        "() => { const b = document.getElementById('map').getBoundingClientRect(); "
        "return [b.left, b.top, b.right, b.bottom]; }"
    )
    page.evaluate(WATCH_JS)
    mid = (left + right) / 2
    lasso = [
        (left + 5, top + 45),
        (mid, top + 45),
        (mid + 40, (top + bottom) / 2),
        (mid, bottom - 5),
        (left + 5, bottom - 5),
    ]
    page.mouse.move(*lasso[0])
    page.mouse.down()
    for vertex in lasso[1:] + lasso[:1]:
        page.mouse.move(*vertex, steps=STEPS)
    page.mouse.up()
    time.sleep(SETTLE_S)
    timing = page.evaluate("LASSO")
    selected = int(box.get_attribute("data-selected") or 0)
    page.close()
    if "last" not in timing or not selected or refused:
        raise RuntimeError(f"{n} points: no selection ({timing}) or a policy violation ({refused[:2]})")
    lasso = {
        "lasso_ms": round(max(0.0, timing["last"] - timing["up"])),
        "drag_ms": round(timing["up"] - timing["down"]),
        "move_ms": round((timing["up"] - timing["down"]) / MOVES, 1),
    }
    return {**first, **lasso, "selected": selected}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,50000", help="comma-separated point counts")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--quick", action="store_true", help="2,000 points, once (make bench: does it still run)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = "2000", 1
    sizes = [int(s) for s in args.sizes.split(",")]
    from playwright.sync_api import sync_playwright

    server = serve(sizes)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for n in sizes:
            runs = [one_run(browser, base, n) for _ in range(args.repeats)]
            row = {"points": n, "runs": runs}
            for key in ("draw_ms", "map_js_ms", "lasso_ms", "drag_ms", "move_ms"):
                row[key] = statistics.median(r[key] for r in runs)
            row["selected"] = runs[0]["selected"]
            results.append(row)
        browser.close()
    server.shutdown()
    if args.json:
        print(json.dumps({"bench": "map", "repeats": args.repeats, "results": results}))
        return 0
    print(
        "| points | first draw (navigation to drawn) | of which map.js | release to selection | drag "
        f"({MOVES} moves) | per move | selected |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        cells = [
            str(r["points"]),
            *(f"{r[k]:.0f} ms" for k in ("draw_ms", "map_js_ms", "lasso_ms", "drag_ms")),
            f"{r['move_ms']:.1f} ms",
            str(r["selected"]),
        ]
        print("| " + " | ".join(cells) + " |")
    print(f"(median of {args.repeats} runs each, headless chromium, software canvas)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
