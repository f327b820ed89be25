"""A new user's first hour in a real headless Chromium at 1440x900, following the README word for
word: a plain `tasveer up` with nothing imported, log in, open the project in every tab tasveer
makes (no error), import 128 photos through the import dialog, then in "Needs review" the photos
with their predicted label, confidence and why, in the order of the project's strategy; the labeling
view shows the same confidence; "Label All Tasks" and "Label tasks as displayed" serve the first
medoid; keyboard labels (corrections among them) train a version, and the same checks hold for it.

Screenshots go to $TASVEER_SCREENSHOT_DIR (or the test's tmp dir): first-open-*.png; the ones the
README shows are written to docs/img/labelstudio-*.png as well (kept current by this test). Needs
Debian's chromium and the playwright package: a missing one fails."""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

import scenes
from lsfixture import poll
from lsproto.notes import NOTE_COLUMN, QUEUE, QUEUE_COLUMN, WHY_FIRST_BATCH, WHY_UNCERTAIN, read_note
from lsproto.views import AUTO_ACCEPTED, DUPLICATES, LABEL_ERRORS, NEEDS_REVIEW, SPOT_CHECKS, UNUSUAL_PHOTOS, views
from upbrowser import CHROMIUM, FLAGS, MS, ROWS_JS, SCREEN, Up, no_error, open_tab, shot, start_up, stop_up

pytestmark = pytest.mark.labelstudio
N_NEW = 128


def first_open(page, up: Up, shots: Path):
    """Log in; the new project opens on "Needs review" without an error, and so does every tab
    tasveer makes (the auto-accept ones too, made here as auto-accept makes them). Returns the
    client that made them."""
    page.goto(f"{up.state['url']}/user/login/")
    page.fill("input[name=email]", up.state["username"])
    page.fill("input[name=password]", up.state["password"])
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda u: "/user/login" not in u)
    page.goto(f"{up.state['url']}/projects/{up.pid}")
    page.get_by_text(re.compile(r"Tasks: \d+ / \d+")).first.wait_for()
    page.wait_for_timeout(1500)  # a late error modal would show by now
    no_error(page, "the new project")
    assert "Tasks: 0 / 0" in page.evaluate("document.body.innerText")
    assert set(up.views()) == {NEEDS_REVIEW, LABEL_ERRORS, DUPLICATES, UNUSUAL_PHOTOS}  # what `tasveer up` made
    shot(page, shots, "first-open-1-empty.png", "labelstudio-1-empty.png")
    from lsclient import open_client
    from lsproto.tokens import LSAuth

    client = open_client(LSAuth(up.state["url"], up.state["token"]))
    tabs = client.ensure_views(up.pid, views(client.auto_user(create=True)))
    assert set(tabs) == set(up.views()) and len(tabs) == 6, tabs
    for title, view_id in tabs.items():
        open_tab(page, up, view_id)
        no_error(page, f"the empty project's tab {title!r}")
        assert up.get("/api/tasks", view=view_id, project=up.pid)["total"] == 0
    return client


def import_photos(page, up: Up, shots: Path, files: list[Path]) -> None:
    """The data manager's import dialog: the files dropped on its file input, then "Import"."""
    page.get_by_role("button", name="Import").click()
    page.locator("input[type=file]").set_input_files([str(f) for f in files])
    page.get_by_text(f"{len(files)} files uploaded").wait_for()
    shot(page, shots, "first-open-2-import.png", "labelstudio-2-import.png")
    page.get_by_role("button", name="Finish import").click()
    page.get_by_role("button", name="Finish import").wait_for(state="hidden")
    no_error(page, "after the import")


def check_task_list(page, up: Up, view_id: int, preds: dict[int, dict], kept: frozenset = frozenset()) -> list[int]:
    """The first screen of the tab: >= 10 photos; per row the predicted label, the confidence as a
    percent and why, and "Prediction score" = that confidence, all within 1440 px; rows in queue
    order. The tasks of `kept` (someone may have one open) show the notes they were served with.
    Returns the rows' task ids."""
    open_tab(page, up, view_id)
    page.locator("[data-testid=table-row] img").first.wait_for()
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=table-row] img')].slice(0, 10)"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    no_error(page, "Needs review")
    table = page.evaluate(ROWS_JS)
    head = table["head"]
    col_id, col_note, col_score = head.index("ID"), head.index(NOTE_COLUMN), head.index("Prediction score")
    shown = [r for r in table["rows"] if r["photo"]]
    assert len(shown) >= 10, f"{len(shown)} photos on the first screen: {table}"
    for row in shown:
        assert row["right"] <= table["width"], f"a column past {table['width']} px: {row}"
        if int(row["cells"][col_id]) in kept:
            continue
        pred = preds[int(row["cells"][col_id])]
        label, conf = pred["result"][0]["value"]["choices"][0], pred["result"][0]["score"]
        assert row["cells"][col_note].startswith(f"{label} · {100 * conf:.1f}% · "), (row, pred)
        assert abs(float(row["cells"][col_score]) - conf) < 0.0006, (row, pred)
    ids = [int(r["cells"][col_id]) for r in table["rows"]]
    cached = {t["id"]: t["data"].get(QUEUE_COLUMN) for t in up.tasks()}  # the key the tab orders by
    keys = [cached[t] for t in ids]
    assert keys == sorted(keys), keys  # the tab's order: the queue, the project's strategy
    assert all(cached[t] == read_note(preds[t]["result"], QUEUE) for t in ids if t not in kept)
    assert keys[0] == min(cached[t] for t in set(preds) | set(kept))
    return ids


def check_labeling_view(page, up: Up, view_id: int, task: int, pred: dict) -> None:
    """The task in the labeling view (quick view from the tab): its prediction's tab prints the
    confidence of the label the data manager shows."""
    page.goto(f"{up.state['url']}/projects/{up.pid}/data?tab={view_id}&task={task}")
    score = page.locator("[title^='Prediction score = ']").first
    score.wait_for()
    page.get_by_text("Downloading image").wait_for(state="hidden")
    assert float(score.get_attribute("title").split("= ")[1]) == pytest.approx(pred["score"])
    printed = re.sub(r"\s+", "", score.inner_text())
    assert printed == f"·{100 * pred['score']:.2f}%", printed
    assert f"{100 * pred['score']:.2f}" == f"{100 * pred['result'][0]['score']:.2f}"  # = the confidence
    no_error(page, f"the labeling view of task {task}")


def label_as_displayed(page, up: Up, view_id: int) -> dict:
    """ "Label tasks as displayed" from the tab: the task Label Studio serves (its next_task answer)."""
    open_tab(page, up, view_id)
    with page.expect_response(lambda r: "/api/dm/actions?id=next_task" in r.url and r.ok) as served:
        page.get_by_role("button", name="Toggle open").click()
        page.get_by_text("Label tasks as displayed").click()
    page.locator("input.ant-checkbox-input:checked").first.wait_for()  # the prediction pre-selected
    page.get_by_text("Downloading image").wait_for(state="hidden")
    return served.value.json()


def choose(page, label: str) -> None:
    """A correction with the keyboard: the label's number hotkey."""
    page.keyboard.press(str(scenes.CLASSES.index(label) + 1))
    page.wait_for_function("name => document.querySelector(`input[name=${name}]`).checked", arg=label)


def submit(page, task: int, label: str) -> None:
    """Ctrl+Enter submits the chosen label: Label Studio stores it (201)."""
    checked = [e.get_attribute("name") for e in page.locator("input.ant-checkbox-input:checked").all()]
    assert checked == [label], (checked, label)
    with page.expect_response(
        lambda r: f"/api/tasks/{task}/annotations" in r.url and r.request.method == "POST"
    ) as submitted:
        page.keyboard.press("Control+Enter")
    assert submitted.value.status == 201, submitted.value.text()


def test_a_new_user_from_plain_up_to_a_trained_version(tmp_path):
    shots = Path(os.environ.get("TASVEER_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    photos, labels = (x[:N_NEW] for x in scenes.sample(22, seed=7))
    truth = dict(zip((p.name for p in photos), labels))
    assert len(photos) == len(truth) == N_NEW
    up, proc = start_up(tmp_path)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport=SCREEN)
            page.set_default_timeout(MS)
            client = first_open(page, up, shots)
            cold_start(page, up, shots, photos, truth, client)
            trained(page, up, shots)
            model_page(page, up, shots)
            browser.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0, up.logs()
    finally:
        stop_up(proc)


def cold_start(page, up: Up, shots: Path, photos: list[Path], truth: dict[str, str], client) -> None:
    """The import, its cold-start predictions (representative first batch) in the list and the
    labeling view, and the first photos labeled with the keyboard from "Label tasks as displayed"."""
    tabs = up.views()
    open_tab(page, up, tabs[NEEDS_REVIEW])
    import_photos(page, up, shots, photos)
    ids = {t["id"] for t in up.tasks()}
    assert len(ids) == N_NEW
    preds = up.wait(lambda: up.noted("INITIAL", WHY_FIRST_BATCH, ids), f"cold-start notes of {N_NEW} tasks")
    assert up.model_version() == "INITIAL"
    for title, view_id in tabs.items():  # every tab once more, now with tasks
        open_tab(page, up, view_id)
        no_error(page, f"the tab {title!r} after the import")
    for title in (AUTO_ACCEPTED, SPOT_CHECKS):  # from here on what a plain `tasveer up` shows
        client.views.delete(id=tabs.pop(title))
    first = check_task_list(page, up, tabs[NEEDS_REVIEW], preds)[0]
    shot(page, shots, "first-open-3-cold-start.png")
    check_labeling_view(page, up, tabs[NEEDS_REVIEW], first, preds[first])
    shot(page, shots, "first-open-4-cold-labeling.png")
    # equal confidences (1/C): the tie-break serves the first medoid first here too
    assert label_all(page, up, tabs[NEEDS_REVIEW], preds) == first
    served = label_as_displayed(page, up, tabs[NEEDS_REVIEW])
    assert served["id"] == first, (served["id"], first, served.get("queue"))
    label_in_order(page, up, shots, first, preds, truth)


def label_in_order(
    page, up: Up, shots: Path, task: int, preds: dict[int, dict], truth: dict[str, str], n: int = 8
) -> None:
    """The stream of "Label tasks as displayed" on from `task`, which shows its prediction: each
    photo gets its true label with the keyboard (a correction where the pre-selected label is
    another), then the stream serves the tab's next row (a version trained meanwhile reorders it)."""
    names = {t["id"]: t["data"]["image"].rsplit("/", 1)[-1].split("-", 1)[1] for t in up.tasks()}
    checked = [e.get_attribute("name") for e in page.locator("input.ant-checkbox-input:checked").all()]
    assert checked == [preds[task]["result"][0]["value"]["choices"][0]], (checked, preds[task])
    corrected = []
    for _ in range(n):
        label = truth[names[task]]
        checked = [e.get_attribute("name") for e in page.locator("input.ant-checkbox-input:checked").all()]
        if checked != [label]:
            choose(page, label)
            if not corrected:
                shot(page, shots, "first-open-5-corrected.png")
            corrected.append(task)
        with page.expect_response(lambda r: "/api/dm/actions?id=next_task" in r.url and r.ok) as served:
            submit(page, task, label)
        up.annotated[task] = label
        task = served.value.json()["id"]
        page.locator(".lsf-current-task__task-id", has_text=str(task)).wait_for()
        page.get_by_text("Downloading image").wait_for(state="hidden")
    assert corrected and len(set(up.annotated.values())) >= 2, up.annotated  # a first version can train


def trained(page, up: Up, shots: Path) -> None:
    """The version trained on those labels: its predictions in the list (uncertainty order),
    the grid and the labeling view, and "Label tasks as displayed" serving the first row. ("Label All
    Tasks" would serve the task the stream locked after the last submit: tests/test_active_labelstudio.py
    checks it for a trained version.)"""
    vid = up.wait(up.settled, "a version trained on the corrections, followed by Label Studio")
    # the task the stream served last is open in this page (and those its person may be served):
    # they keep the prediction and the notes they were served with (backend/writeback/opentasks.py)
    kept = set(up.backend("/versions", project=up.pid)["kept_open"])
    open_ids = {t["id"] for t in up.tasks()} - set(up.annotated) - kept
    preds = up.wait(lambda: up.noted(vid, WHY_UNCERTAIN, open_ids), f"notes of {vid}")
    tabs = up.views()
    ids = check_task_list(page, up, tabs[NEEDS_REVIEW], preds, frozenset(kept))
    first, shown = ids[0], next(t for t in ids if t not in kept)  # the first row answering with vid
    shot(page, shots, "first-open-6-task-list.png", "labelstudio-3-task-list.png")
    page.locator("[aria-label='Switch to grid view']").click()
    page.locator("img").nth(12).wait_for()
    grid = page.evaluate("document.body.innerText")
    label, conf = preds[shown]["result"][0]["value"]["choices"][0], preds[shown]["result"][0]["score"]
    assert f"{label} · {100 * conf:.1f}% · {WHY_UNCERTAIN}" in grid, grid[:1500]
    shot(page, shots, "first-open-7-grid.png", "labelstudio-3b-grid.png")
    page.locator("[aria-label='Switch to list view']").click()  # the tab stays a list
    page.locator("[data-testid=table-row]").first.wait_for()
    check_labeling_view(page, up, tabs[NEEDS_REVIEW], shown, preds[shown])
    shot(page, shots, "first-open-8-labeling.png", "labelstudio-4-labeling.png")
    served = label_as_displayed(page, up, tabs[NEEDS_REVIEW])
    assert served["id"] == first, (served["id"], first, served.get("queue"))  # the strategy's order
    print(f"{vid}: Needs review serves {first} ({served.get('queue')})")


def label_all(page, up: Up, view_id: int, preds: dict[int, dict]) -> int:
    """ "Label All Tasks": Label Studio's uncertainty sampling (projects/functions/next_task.py):
    among tasks with a prediction of the project's model_version, the cluster where this annotator
    solved the fewest first, then the lowest score (the least confident)."""
    open_tab(page, up, view_id)
    with page.expect_response(lambda r: "/api/dm/actions?id=next_task" in r.url and r.ok) as served:
        page.get_by_role("button", name="Label All Tasks").click()
    page.get_by_text("Downloading image").wait_for(state="hidden")
    task = served.value.json()["id"]
    everything = up.get("/api/predictions/", project=up.pid)
    everything = everything.get("results", everything) if isinstance(everything, dict) else everything
    solved = Counter(
        max((q.get("cluster") for q in everything if q["task"] == t and q.get("cluster") is not None), default=None)
        for t in up.annotated
    )
    rank = {t: (solved.get(p.get("cluster"), 0), p["score"]) for t, p in preds.items()}
    assert rank[task] == min(rank.values()), (task, rank[task], min(rank.values()), dict(solved))
    return task


def model_page(page, up: Up, shots: Path) -> None:
    """The model page, opened by the link `tasveer up` printed (its CSP forbids the eval that
    wait_for_function needs: polled from here)."""
    link = re.search(r"model page\s*:\s*(\S+)", up.stdout.read_text()).group(1)
    page.goto(link)
    page.locator("#versions").wait_for()
    poll(
        lambda: page.evaluate(
            "[...document.querySelectorAll('#gallery img')].every(i => i.complete && i.naturalWidth > 0)"
        ),
        "the batch's photos on the model page",
        60,
    )
    shot(page, shots, "first-open-9-model-page.png", "labelstudio-5-model-page.png")
