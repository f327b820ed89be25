"""The similar-photos panel of the model page in a real headless Chromium: a click on a photo of
the latest batch shows its nearest neighbours (photos, labels, predictions), two ticked
neighbours get a label with "Label these like this one", the page says so and shows them labeled,
and Label Studio holds the two annotations in the chosen person's name.

The screenshot is written to docs/img/model-page-similar.png (and $TASVEER_SCREENSHOT_DIR or the
test's tmp dir). Needs Debian's chromium and the playwright package: a missing one fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from playwright.sync_api import sync_playwright

import scenes
from lsfixture import poll
from sync.importer import import_images
from sync.project import connect_backend, ensure_project
from test_params_promotion import wait_idle_version
from upbrowser import CHROMIUM, FLAGS, MS, shot

pytestmark = pytest.mark.labelstudio
CLASSES = ["forest", "sea", "street"]


def test_label_neighbours_like_the_clicked_photo(label_studio, shared_backend, shared_data, tmp_path):
    shots = Path(os.environ.get("TASVEER_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    ls, client, url = label_studio, label_studio.client(), shared_backend.url
    project = ensure_project(client, "similar-in-browser", CLASSES)
    connect_backend(client, project, url)
    pid = project.id
    quiet = {"wait": False, "progress": False, "log": lambda m: None}
    paths, labels = scenes.sample(2, seed=51, classes=CLASSES)
    for path, label in zip(paths, labels):
        (tmp_path / "labeled" / label).mkdir(parents=True, exist_ok=True)
        (tmp_path / "labeled" / label / path.name).symlink_to(path)
    import_images(client, pid, [tmp_path / "labeled"], labels_from_folders=True, **quiet)
    wait_idle_version(url, pid)
    (tmp_path / "batch").mkdir()
    for path in scenes.sample(4, seed=51, classes=CLASSES, skip=2)[0]:
        (tmp_path / "batch" / path.name).symlink_to(path)
    tasks = import_images(client, pid, [tmp_path / "batch"], **quiet).task_ids
    poll(
        lambda: (
            requests.get(f"{url}/projects/{pid}/tasks/{max(tasks)}/similar", timeout=60).json().get("collection")
            == len(paths) + len(tasks)
        ),
        "every task predicted (in the collection)",
        300,
        1.0,
    )

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.set_default_timeout(MS)
        refused = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{url}/projects/{pid}/page")
        card = page.locator("#gallery .card", has_text="not labeled").first
        query = int(card.get_attribute("data-task"))
        card.locator("img").click()  # a plain click: the panel, not Label Studio
        cards = page.locator("#similar-cards .card")
        cards.nth(8).wait_for()  # the photo and its 8 neighbours
        assert page.locator("#similar-title").inner_text() == f"Similar to task {query}"
        assert int(cards.first.get_attribute("data-task")) == query and len(page.context.pages) == 1
        poll(
            lambda: page.evaluate(
                "[...document.querySelectorAll('#similar-cards img')].every(i => i.complete && i.naturalWidth > 0)"
            ),
            "every neighbour's photo shown",
            MS / 1000,
        )
        free = cards.filter(has_text="not labeled")
        picked = [int(free.nth(i).get_attribute("data-task")) for i in (1, 2)]  # two neighbours (0 is the photo)
        for task in picked:
            page.locator(f"#similar-cards .card[data-task='{task}'] input.pick").check()
        label = page.locator("#similar-label").input_value()
        person = page.locator("#similar-annotator option:checked").inner_text()
        assert label in CLASSES and person == ls.username
        page.click("#label-like")
        message = page.locator("#similar-msg", has_text="Labeled 2 photos")
        message.wait_for()
        assert f"as {label} in Label Studio, as {ls.username}" in message.inner_text()
        for task in picked:
            page.locator(f"#similar-cards .card[data-task='{task}']", has_text=f"labeled: {label}").wait_for()
        page.locator("#similar").scroll_into_view_if_needed()
        shot(page, shots, "model-page-similar.png", readme="model-page-similar.png")
        assert not refused, refused
        browser.close()

    admin = client.whoami().id
    for task in picked:
        got = requests.get(f"{ls.url}/api/tasks/{task}/annotations/", headers=ls.headers, timeout=60).json()
        assert [(a["completed_by"], a["result"][0]["value"]["choices"]) for a in got] == [(admin, [label])]
