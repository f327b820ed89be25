"""The embedding map on the model page in a real headless Chromium, on a real Label Studio project
of shared photos trained by a real backend: the map draws every predicted photo (the count the page
shows and the points the chart holds), hovering a point shows its photo, the colour selector
regroups the points, a lasso drag (drawn by map.js on its overlay canvas, not by ECharts) selects the
points inside it and rings exactly those, "clear the selection" drops them, and "Open in Label Studio as a tab"
creates a data-manager tab that Label Studio's own API lists with exactly those task ids. The points
are placed by t-SNE, computed in the background: before it is ready the page shows the principal
components, says so, and redraws once it is. No Content-Security-Policy violation on the way (the
plotting library needs no eval).

Screenshot: docs/img/model-page-map.png (and $TASVEER_SCREENSHOT_DIR or the test's tmp dir)."""

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
PER_CLASS = 4  # labeled, and as many unlabeled: 24 photos
# the chart's points in page pixels (series, index, x, y), and the plot's box; not the series that
# rings the selection (map.js's "selection")
POINTS_JS = """() => {
    const el = document.getElementById('map'), chart = echarts.getInstanceByDom(el);
    const box = el.getBoundingClientRect(), opt = chart.getOption(), data = [];
    opt.series = opt.series.filter(s => s.id !== 'selection');
    opt.series.forEach((s, k) => {
        const xy = s.data;
        for (let j = 0; j < xy.length / 2; j++) {
            const p = chart.convertToPixel({gridIndex: 0}, [xy[2 * j], xy[2 * j + 1]]);
            data.push([k, j, box.left + p[0], box.top + p[1]]);
        }
    });
    return {points: data, names: opt.series.map(s => s.name), box: [box.left, box.top, box.right, box.bottom]};
}"""
# how many points the selection's ring series holds
RINGED_JS = """() => {
    const chart = echarts.getInstanceByDom(document.getElementById('map'));
    return chart.getOption().series.find(s => s.id === 'selection').data.length / 2;
}"""


def inside(x: float, y: float, polygon: list[tuple[float, float]]) -> bool:
    """Ray casting: whether (x, y) is inside `polygon`."""
    hit = False
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def lasso_around_left_part(points: list[list[float]], box: list[float]) -> list[tuple[float, float]]:
    """A lasso (a pentagon) around the points left of the widest gap between the middle points'
    x positions, clear of every point by half that gap."""
    xs = sorted(p[2] for p in points)
    n = len(xs)
    cut = max(range(n // 4, 3 * n // 4), key=lambda i: xs[i + 1] - xs[i])
    right = (xs[cut] + xs[cut + 1]) / 2
    left, top, bottom = box[0] + 3, box[1] + 45, box[3] - 3
    return [(left, top), (right, top), (right, (top + bottom) / 2), (right, bottom), (left, bottom)]


def map_answer(backend_url: str, pid: int) -> dict:
    return requests.get(f"{backend_url}/projects/{pid}/map.json", timeout=120).json()


def test_lasso_on_the_map_becomes_a_label_studio_tab(label_studio, shared_backend, shared_data, tmp_path):
    shots = Path(os.environ.get("TASVEER_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    ls, client, backend = label_studio, label_studio.client(), shared_backend
    project = ensure_project(client, "embedding-map", CLASSES)
    connect_backend(client, project, backend.url)
    pid = project.id
    paths, labels = scenes.sample(PER_CLASS, seed=41, classes=CLASSES)
    tree, batch = tmp_path / "labeled", tmp_path / "batch"
    for path, label in zip(paths, labels):
        (tree / label).mkdir(parents=True, exist_ok=True)
        (tree / label / path.name).symlink_to(path)
    import_images(client, pid, [tree], labels_from_folders=True, wait=False, progress=False, log=lambda m: None)
    wait_idle_version(backend.url, pid)
    batch.mkdir()
    for path in scenes.sample(PER_CLASS, seed=41, classes=CLASSES, skip=PER_CLASS)[0]:
        (batch / path.name).symlink_to(path)
    import_images(client, pid, [batch], wait=False, progress=False, log=lambda m: None)
    total = 2 * PER_CLASS * len(CLASSES)
    answer = poll(
        lambda: (a := map_answer(backend.url, pid)).get("n") == total and a,
        f"the map holding all {total} photos",
        300,
        2,
    )
    assert answer["missing"] == 0 and sorted(answer["task"]) == answer["task"]
    assert sum(c >= 0 for c in answer["label"]) == PER_CLASS * len(CLASSES)
    assert all(c >= 0 for c in answer["predicted"]) and all(0 <= c <= 1000 for c in answer["confidence"])
    # the first answers place the photos by principal components while t-SNE is computed behind them
    assert answer["layout"] == "tsne" or (answer["layout"] == "pca" and answer["layout_pending"])
    answer = poll(lambda: (a := map_answer(backend.url, pid))["layout"] == "tsne" and a, "the t-SNE map", 120, 1)
    assert not answer["layout_pending"] and answer["n"] == total
    kept = backend.data_dir / "projects" / str(pid) / "collection"
    assert len(list(kept.glob("tsne-*.npy"))) == 1 and len(list(kept.glob("map-*.npy"))) == 1  # both are kept

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.set_default_timeout(MS)
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{backend.url}/projects/{pid}/page")
        box = page.locator("#map-box")
        poll(lambda: box.get_attribute("data-state") in ("drawn", "error"), "the map drawn", MS / 1000)
        assert box.get_attribute("data-state") == "drawn", page.locator("#map-info").inner_text()
        assert page.locator("#map-count").inner_text().startswith(f"{total} photos")
        assert box.get_attribute("data-layout") == "tsne"
        assert page.locator("#map-layout").inner_text().startswith("Every photo with an embedding, placed by t-SNE")
        page.locator("#map").scroll_into_view_if_needed()
        drawn = page.evaluate(POINTS_JS)
        assert len(drawn["points"]) == total
        assert drawn["names"] == [*CLASSES, "not labeled"]  # coloured by label first

        # hovering a point shows its photo (the backend's thumbnail of that task)
        _, _, x, y = drawn["points"][0]
        page.mouse.move(x, y)
        tip = page.locator(".map-tip img")
        tip.wait_for()
        poll(lambda: page.evaluate("document.querySelector('.map-tip img').naturalWidth") > 0, "the photo", 60)
        assert f"/projects/{pid}/tasks/" in tip.get_attribute("src")

        # the colour selector regroups the same points
        page.select_option("#map-colour", "confidence")
        assert page.evaluate(POINTS_JS)["names"] == ["< 50%", "50–70%", "70–90%", "≥ 90%", "no prediction"]
        page.select_option("#map-colour", "label")
        drawn = page.evaluate(POINTS_JS)

        # a lasso drag selects exactly the points inside it
        lasso = lasso_around_left_part(drawn["points"], drawn["box"])
        series_rows = [
            [i for i, c in enumerate(answer["label"]) if (c if c >= 0 else len(CLASSES)) == k] for k in range(4)
        ]
        expected = sorted(
            answer["task"][series_rows[k][j]] for k, j, px, py in drawn["points"] if inside(px, py, lasso)
        )
        assert 0 < len(expected) < total
        page.mouse.move(*lasso[0])
        page.mouse.down()
        for vertex in lasso[1:] + lasso[:1]:
            page.mouse.move(*vertex, steps=6)
        page.mouse.up()
        poll(lambda: box.get_attribute("data-selected") == str(len(expected)), f"{len(expected)} selected", 30)
        assert page.locator("#map-selected").inner_text() == f"{len(expected)} selected"
        assert page.evaluate(RINGED_JS) == len(expected)
        page.mouse.move(5, 5)
        shot(page, shots, "model-page-map.png", readme="model-page-map.png")

        # "clear the selection" drops it; the same lasso again selects the same points
        page.click("#map-clear")
        assert box.get_attribute("data-selected") == "0" and page.evaluate(RINGED_JS) == 0
        assert page.locator("#map-open").is_disabled()
        page.mouse.move(*lasso[0])
        page.mouse.down()
        for vertex in lasso[1:] + lasso[:1]:
            page.mouse.move(*vertex, steps=6)
        page.mouse.up()
        poll(lambda: box.get_attribute("data-selected") == str(len(expected)), f"{len(expected)} again", 30)

        # "Open in Label Studio as a tab": a tab of exactly those tasks, by Label Studio's API
        page.click("#map-open")
        link = page.locator("#map-tab")
        link.wait_for()
        url = link.get_attribute("href")
        assert url.startswith(f"{ls.url}/projects/{pid}/data?tab=")
        view = int(url.rsplit("=", 1)[1])
        got = requests.get(
            f"{ls.url}/api/tasks",
            params={"view": view, "project": pid, "page_size": 1000},
            headers=ls.headers,
            timeout=60,
        ).json()
        assert got["total"] == len(expected)
        assert sorted(t["id"] for t in got["tasks"]) == expected
        titles = {
            v["id"]: v["data"]["title"]
            for v in requests.get(
                f"{ls.url}/api/dm/views/", params={"project": pid}, headers=ls.headers, timeout=60
            ).json()
        }
        assert titles[view] == f"Map selection ({len(expected)} tasks)"
        assert not refused, refused

        # without its t-SNE (as right after photos were added) the page shows the components, says
        # so, and redraws with t-SNE once the background has computed it again
        for held in kept.glob("tsne-*.npy"):
            held.unlink()
        page.reload()
        poll(lambda: box.get_attribute("data-state") == "drawn", "the map drawn again", MS / 1000)
        assert box.get_attribute("data-layout") == "pca"
        assert "the t-SNE map, which keeps look-alike photos together, is being computed" in (
            page.locator("#map-layout").inner_text()
        )
        assert len(page.evaluate(POINTS_JS)["points"]) == total
        poll(lambda: box.get_attribute("data-layout") == "tsne", "the page switching to t-SNE", 60)
        assert page.locator("#map-layout").inner_text().startswith("Every photo with an embedding, placed by t-SNE")
        assert len(page.evaluate(POINTS_JS)["points"]) == total
        browser.close()
