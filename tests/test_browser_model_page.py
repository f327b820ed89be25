"""The model page in a real headless Chromium, after a real training from Label Studio: the latest
batch with predicted labels and confidences, a version trained on six labels with a metric, the
parameters form refusing a bad value next to its field and saving a good one (which shows in Label
Studio's extra params), "train now" with its progress, a deliberately worse training kept as a
candidate, and promotion / rollback by button changing what /predict answers.

Screenshots go to $TASVEER_SCREENSHOT_DIR (or the test's tmp dir): model-page-1-batch.png ...
Needs Debian's chromium and the playwright package: a missing one fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from playwright.sync_api import sync_playwright

import scenes
from lsfixture import backend_on, poll
from sync.importer import import_images
from sync.project import connect_backend, ensure_project
from test_params_promotion import wait_idle_version

pytestmark = pytest.mark.labelstudio
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CLASSES = ["forest", "sea", "street"]
MS = 60_000


def test_model_page_in_a_real_browser(label_studio, shared_data, tmp_path):
    shots = Path(os.environ.get("TASVEER_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    ls, client = label_studio, label_studio.client()
    with backend_on(ls, tmp_path / "backend") as backend:
        project = ensure_project(client, "model-page", CLASSES)
        connect_backend(client, project, backend.url)
        pid = project.id
        page_url = f"{backend.url}/projects/{pid}/page"
        assert page_url in client.projects.get(id=pid).description  # linked from Label Studio
        paths, labels = scenes.sample(2, seed=31, classes=CLASSES)  # six labels
        tree = tmp_path / "labeled"
        for path, label in zip(paths, labels):
            (tree / label).mkdir(parents=True, exist_ok=True)
            (tree / label / path.name).symlink_to(path)
        import_images(client, pid, [tree], labels_from_folders=True, wait=False, progress=False, log=lambda m: None)
        first = wait_idle_version(backend.url, pid)["model_version"]
        batch = tmp_path / "batch"
        batch.mkdir()
        for path in scenes.sample(2, seed=31, classes=CLASSES, skip=2)[0]:
            (batch / path.name).symlink_to(path)
        import_images(client, pid, [batch], wait=False, progress=False, log=lambda m: None)

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.set_default_timeout(MS)
            # the page runs under a policy without inline script (its script is /static/page.js): any
            # violation (an inline handler or script left behind) shows on the console
            refused = []
            page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)

            # 1. the latest batch: the 12 newest tasks, each with a predicted label and a confidence
            policy = page.goto(page_url).headers["content-security-policy"]
            assert "script-src 'self';" in policy and "unsafe" not in policy, policy
            cards = page.locator("#gallery .card")
            assert cards.count() == 12
            # polled from here: the page's Content-Security-Policy allows no eval, which wait_for_function uses
            poll(
                lambda: page.evaluate(
                    "[...document.querySelectorAll('#gallery img')].every(i => i.complete && i.naturalWidth > 0)"
                ),
                "every photo of the batch shown",
                MS / 1000,
            )
            texts = [cards.nth(i).locator(".lab").inner_text() for i in range(12)]
            assert all(any(c in t for c in CLASSES) and "%" in t for t in texts), texts
            confs = [float(c) for c in page.eval_on_selector_all("#gallery .card", "cs => cs.map(c => c.dataset.conf)")]
            assert confs == sorted(confs)  # least confident first
            assert f"{ls.url}/projects/{pid}/data?task=" in cards.first.get_attribute("href")
            page.select_option("#gallery-filter", CLASSES[0])
            shown = page.eval_on_selector_all(
                "#gallery .card", "cs => cs.filter(c => c.style.display !== 'none').map(c => c.dataset.label)"
            )
            assert shown and set(shown) == {CLASSES[0]}
            page.select_option("#gallery-filter", "")
            page.screenshot(path=shots / "model-page-1-batch.png", full_page=True)

            # 2. the version trained on six labels has a metric, not a dash
            acc = page.locator(f"#versions tr[data-version='{first}'] td.acc").inner_text()
            assert "%" in acc, acc

            # 3. the form refuses a bad value next to its field, then saves good ones
            page.fill("#p-lr", "-1")
            page.click("#params button[type=submit]")
            message = page.locator(".msg[data-for='lr']")
            message.filter(has_text="lr must be > 0").wait_for()
            page.locator("#params").screenshot(path=shots / "model-page-2-refused.png")
            worse = {"mode": "finetune", "lr": 5, "epochs": 1, "image_size": 64}
            page.select_option("#p-mode", "finetune")
            for name in ("lr", "epochs", "image_size"):
                page.fill(f"#p-{name}", str(worse[name]))
            page.click("#params button[type=submit]")
            page.locator("#params-msg", has_text="saved").wait_for()
            ml = requests.get(f"{ls.url}/api/ml", params={"project": pid}, headers=ls.headers, timeout=30).json()
            assert [m["extra_params"] for m in ml] == [{**worse, "lr": 5.0}]

            # 4. "train now": the job's progress shows, and the worse version stays a candidate
            page.evaluate("""() => { window.SEEN = [];
                new MutationObserver(() => SEEN.push(document.getElementById('train-state').textContent + ': '
                    + document.getElementById('train-progress').textContent)).observe(
                    document.getElementById('training'), {subtree: true, childList: true, characterData: true}); }""")
            page.click("#train-now")
            page.locator("#train-msg", has_text="job").wait_for()
            page.locator("#train-last", has_text="(candidate), trained 1/1 epochs").wait_for()
            seen = page.evaluate("SEEN")
            assert any(s.startswith("running: ") and len(s) > len("running: ") for s in seen), seen
            page.screenshot(path=shots / "model-page-3-trained.png", full_page=True)
            assert not refused, refused  # the form, the filter and "train now" ran without a violation
            info = wait_idle_version(backend.url, pid, not_in=(first,))
            candidate = info["versions"][-1]
            assert info["model_version"] == first, info

            # 5. promote the candidate, then roll back to the older version: /predict follows
            task = requests.get(f"{ls.url}/api/tasks", params={"project": pid}, headers=ls.headers, timeout=30).json()[
                "tasks"
            ][0]
            body = {"tasks": [task], "project": str(pid), "label_config": project.label_config}

            def predicted():
                answer = requests.post(f"{backend.url}/predict", json=body, timeout=60).json()
                return answer["results"][0]["model_version"]

            assert predicted() == first
            page.reload()
            row = page.locator(f"#versions tr[data-version='{candidate}']")
            assert "candidate" in row.inner_text()
            with page.expect_navigation():  # the page reloads after a promotion
                row.get_by_role("button", name="promote").click()
            poll(lambda: predicted() == candidate, f"/predict answering {candidate}", 30)
            assert "serving" in page.locator(f"#versions tr[data-version='{candidate}']").inner_text()
            with page.expect_navigation():
                page.locator(f"#versions tr[data-version='{first}']").get_by_role("button", name="serve this").click()
            poll(lambda: predicted() == first, f"/predict answering {first} again", 30)
            page.goto(f"{page_url}?version={candidate}")
            page.screenshot(path=shots / "model-page-4-rolled-back.png", full_page=True)
            assert not refused, refused
            browser.close()
