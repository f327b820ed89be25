"""The metrics page in a real headless Chromium: it renders the accuracy chart, the version table,
the confusion matrix image, and its rollback button really rolls back (JavaScript included).

Needs Debian's `chromium`; skipped with a reason where it is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from backend.settings import Settings
from requireall import missing_part
from test_backend_helpers import BackendThread, post_json, protocol_requests
from test_backend_protocol import publish_direct, setup_body

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(autouse=True)
def _chromium():
    if CHROMIUM is None:
        missing_part("Debian's chromium is not installed")


FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def backend_with_versions(tmp_path):
    from training.params import TrainParams

    captured = protocol_requests()
    with BackendThread(Settings(data_dir=tmp_path / "backend")) as server:
        post_json(server.url + "/setup", setup_body(captured, "http://127.0.0.1:9"))
        versions = [
            publish_direct(server.service, "1", per_class=n, params=TrainParams(head_c=c))
            for n, c in ((2, 0.002), (4, 0.002), (6, 0.01))
        ]
        yield server, versions


def test_page_renders_chart_table_and_confusion_matrix(backend_with_versions, tmp_path):
    server, versions = backend_with_versions
    shot = Path(os.environ.get("TASVEER_SCREENSHOT_DIR", tmp_path)) / "metrics-page.png"
    proc = chromium(tmp_path, "--window-size=1200,1400", f"--screenshot={shot}", server.url + "/metrics")
    assert shot.exists(), proc.stderr[-2000:]
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20)
    assert img.size == (1200, 1400) and len(colours) > 50  # a real page, not a blank one
    # the chart's accuracy line colour is on screen
    assert any(abs(c[1][0] - 0x2C) < 8 and abs(c[1][1] - 0x6F) < 8 and abs(c[1][2] - 0xBB) < 8 for c in colours)

    dom = chromium(tmp_path, "--dump-dom", server.url + "/metrics").stdout
    assert "accuracy by version" in dom and "<svg" in dom and "<polyline" in dom
    for vid in versions:
        assert vid in dom
    assert dom.count("serve this") == len(versions) - 1  # every version but the serving one
    png = requests.get(f"{server.url}/projects/1/versions/{versions[-1]}/confusion.png", timeout=30)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_rollback_button_rolls_back(backend_with_versions, tmp_path):
    """Click the oldest version's "serve this" button in a real Chromium over the DevTools
    protocol; the backend must then serve that version."""
    import json
    import socket
    import time

    from websockets.sync.client import connect

    server, versions = backend_with_versions
    assert server.service.serving.model_version("1") == versions[-1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--remote-debugging-port={port}",
            server.url + "/metrics",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        target = None
        while target is None and time.monotonic() < deadline:
            try:
                pages = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                target = next((p for p in pages if p.get("url", "").endswith("/metrics")), None)
            except requests.RequestException:
                pass
            time.sleep(0.2)
        assert target, "chromium did not open the page"
        with connect(target["webSocketDebuggerUrl"], max_size=None) as ws:

            def evaluate(expression, ident):
                ws.send(
                    json.dumps(
                        {
                            "id": ident,
                            "method": "Runtime.evaluate",
                            "params": {"expression": expression, "returnByValue": True},
                        }
                    )
                )
                while True:
                    msg = json.loads(ws.recv(timeout=30))
                    if msg.get("id") == ident:
                        return msg["result"]["result"].get("value")

            # confirm() would wait for a person to press OK; accept it as that person would. The
            # target can be listed before its document has loaded: look for the button until it is there
            clicked, ident, until = "no button", 0, time.monotonic() + 30
            while clicked != "clicked" and time.monotonic() < until:
                ident += 1
                clicked = evaluate(
                    "window.confirm = () => true;"
                    f"(() => {{ const b = document.querySelector(\"button[data-version='{versions[0]}']\");"
                    "return b ? (b.click(), 'clicked') : 'no button'; })()",
                    ident,
                )
                if clicked != "clicked":
                    time.sleep(0.2)
            assert clicked == "clicked"
            deadline = time.monotonic() + 20
            while server.service.serving.model_version("1") != versions[0] and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert server.service.serving.model_version("1") == versions[0]
