"""The login in a real headless Chromium, against a real `tasveer up` (Label Studio connected with the
generated secret): the model-page link it prints logs the browser in once (an HttpOnly, SameSite=Strict
cookie, the token gone from the address bar), the page's own requests work with that cookie, a second
browser without the link gets 401, another page cannot frame the model page, and logging out ends it.

Screenshots go to $TASVEER_SCREENSHOT_DIR (or the test's tmp dir): login-1-model-page.png ...
Needs Debian's chromium and the playwright package: a missing one fails."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from lsfixture import REPO_ROOT, tasveer_argv
from sync.netutil import free_port
from sync.state import STATE_FILE
from test_browser_model_page import CHROMIUM, FLAGS

pytestmark = pytest.mark.labelstudio
MS = 60_000


def start_up(data_dir: Path, port: int, backend_port: int) -> tuple[subprocess.Popen, str]:
    """`tasveer up` running (until stopped): the process and what it printed up to "press Ctrl-C"."""
    argv = tasveer_argv("up") + [
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--backend-port",
        str(backend_port),
        "--title",
        "login-link",
    ]
    proc = subprocess.Popen(
        argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines, deadline = [], time.monotonic() + 400
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "press Ctrl-C" in line:
            return proc, "".join(lines)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("tasveer up did not start:\n" + "".join(lines))


def test_the_printed_link_logs_a_browser_in_and_nothing_else_gets_in(tmp_path):
    shots = Path(os.environ.get("TASVEER_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    port, backend_port = free_port(), free_port()
    proc, printed = start_up(tmp_path / "var", port, backend_port)
    try:
        state = json.loads((tmp_path / "var" / STATE_FILE).read_text())
        assert re.search(r"ML backend   : \S+  state CO", printed), printed  # Label Studio logged in
        link = re.search(r"model page   : (\S+)", printed).group(1)
        page_url = f"http://127.0.0.1:{backend_port}/projects/{state['project_id']}/page"
        assert link.startswith(page_url + "?token=") and state["backend_secret"] not in printed
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            logged_in(browser, link, page_url, backend_port, shots)
            others_get_nothing(browser, link, page_url, shots)
            browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    logs = "".join(path.read_text(errors="replace") for path in (tmp_path / "var").rglob("*.log"))
    assert link.split("token=")[1] not in logs and state["backend_secret"] not in logs


def logged_in(browser, link: str, page_url: str, backend_port: int, shots: Path) -> None:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(MS)
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(link)
    page.wait_for_url(page_url)  # the token is gone from the address bar
    page.locator("h1", has_text="tasveer · project").wait_for()
    page.locator("#train-now").wait_for()
    # the page's script (/static/page.js, behind the same login: the cookie carries it) runs: "save" works
    page.click("#params button[type=submit]")
    page.locator("#params-msg", has_text="saved").wait_for()
    (cookie,) = context.cookies()
    assert cookie["name"] == f"tasveer_login_{backend_port}" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["expires"] > time.time() + 6 * 24 * 3600
    assert page.evaluate("document.cookie") == ""  # no script can read it
    # the page's own requests go through with the cookie: a read, and a change from this origin
    project = page_url.removesuffix("/page").rsplit("/", 1)[1]
    assert page.evaluate(f"fetch('/projects/{project}/training').then(r => r.status)") == 200
    answer = page.evaluate(f"""fetch('/projects/{project}/params', {{method: 'PUT',
        headers: {{'Content-Type': 'application/json'}}, body: '{{"epochs": 3}}'}})
        .then(async r => [r.status, await r.text()])""")
    assert answer[0] == 200, answer
    page.wait_for_timeout(500)
    assert not refused, refused  # the page runs under its policy without a violation
    page.screenshot(path=shots / "login-1-model-page.png", full_page=True)

    # another page (here about:blank) framing the model page gets nothing: frame-ancestors 'none'
    framer = context.new_page()
    said = []
    framer.on("console", lambda m: said.append(m.text))
    framer.set_content(
        f"<p>a page framing the model page</p><iframe id='f' src='{page_url}' width=900 height=500></iframe>"
    )
    framer.wait_for_timeout(1500)
    child = framer.frame_locator("#f")
    assert child.locator("#train-now").count() == 0
    assert any("frame-ancestors 'none'" in m for m in said), said
    framer.screenshot(path=shots / "login-3-framing-refused.png")

    # logging out ends the login in this browser
    page.goto(page_url.rsplit("/projects", 1)[0] + "/logout")
    assert context.cookies() == []
    assert page.goto(page_url).status == 401
    context.close()


def others_get_nothing(browser, link: str, page_url: str, shots: Path) -> None:
    context = browser.new_context(viewport={"width": 1000, "height": 500})
    page = context.new_page()
    page.set_default_timeout(MS)
    response = page.goto(page_url)
    assert response.status == 401 and "tasveer up" in page.content()
    page.screenshot(path=shots / "login-2-no-link-401.png")
    wrong = link[:-3] + ("abc" if not link.endswith("abc") else "xyz")
    assert page.goto(wrong).status == 401
    assert context.cookies() == []
    context.close()
