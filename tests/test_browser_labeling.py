"""The Label Studio loop in a real headless Chromium, as a person uses it: a real `tasveer up` with 24
photos labeled from folders (so a trained version exists), log in through the login form, drop 128
photos into the import dialog, see them pre-annotated by the serving version ("Needs review" in queue
order, each row with its label and confidence), "Label All Tasks" opens the task Label Studio's
uncertainty sampling picks (lowest score), fix its label with the keyboard (number hotkey,
Ctrl+Enter), and the backend trains a new version that Label Studio follows.

Screenshots go to $TASVEER_SCREENSHOT_DIR (or the test's tmp dir): browser-1-login.png ...
browser-6-retrained.png. Needs Debian's chromium and the playwright package: a missing one fails."""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

import scenes
from lsproto.notes import NOTE_COLUMN, QUEUE, QUEUE_COLUMN, read_note
from upbrowser import CHROMIUM, FLAGS, MS, start_up, stop_up

pytestmark = pytest.mark.labelstudio

N_NEW = 128
# the first screen's photos in the data manager have loaded
THUMBNAILS = (
    "[...document.querySelectorAll('[data-testid=table-row] img')].slice(0, 10)"
    ".every(i => i.complete && i.naturalWidth > 0)"
)


def dm_table(page) -> dict:
    """Column titles and the visible rows' cell texts of the data manager's table."""
    return page.evaluate("""() => ({
        head: [...document.querySelectorAll('.lsf-table-head .lsf-table__cell')].map(c => c.innerText.trim()),
        rows: [...document.querySelectorAll('[data-testid=table-row]')].map(
            r => [...r.querySelectorAll('.lsf-table__cell')].map(c => c.innerText.trim()))})""")


def test_label_studio_loop_in_a_real_browser(tmp_path):
    shots = Path(os.environ.get("TASVEER_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    labeled, labels = scenes.sample(4, seed=3)
    new = scenes.sample(22, seed=3, skip=10)[0][:N_NEW]
    assert len(labeled) == 24 and len(new) == N_NEW and not {p.name for p in labeled} & {p.name for p in new}
    tree = tmp_path / "labeled"
    for path, label in zip(labeled, labels):
        (tree / label).mkdir(parents=True, exist_ok=True)
        (tree / label / path.name).symlink_to(path)

    # Label Studio's database already migrated: this test is about the loop, not Label Studio's cold
    # start (test_up starts from nothing)
    up, proc = start_up(
        tmp_path, "--labels", ",".join(scenes.CLASSES), "--images", str(tree), "--labels-from-folders", migrated=True
    )
    try:
        pid, url = up.pid, up.state["url"]
        first_version = up.wait(up.settled, "trained version followed by Label Studio")
        old_ids = {t["id"] for t in up.tasks()}
        assert len(old_ids) == 24

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1000})  # wide: every column shows
            page.set_default_timeout(MS)

            # 1. log in through the real login form
            page.goto(f"{url}/user/login/")
            page.fill("input[name=email]", up.state["username"])
            page.fill("input[name=password]", up.state["password"])
            page.locator("button[type=submit]").click()
            page.wait_for_url(lambda u: "/user/login" not in u)
            page.get_by_text("tasveer").first.wait_for()
            page.screenshot(path=shots / "browser-1-login.png")

            # 2. the data manager's import dialog: 128 files dropped on its file input, then "Import"
            page.goto(f"{url}/projects/{pid}/data")
            page.get_by_role("button", name="Import").click()
            page.locator("input[type=file]").set_input_files([str(f) for f in new])
            page.get_by_text(f"{N_NEW} files uploaded").wait_for()
            page.screenshot(path=shots / "browser-2-import.png")
            page.get_by_role("button", name="Finish import").click()
            page.get_by_role("button", name="Finish import").wait_for(state="hidden")

            # 3. every new task pre-annotated by the serving version, and the table shows the scores
            def predicted():
                new_ids = {t["id"] for t in up.tasks()} - old_ids
                vid = up.model_version()
                preds = [q for q in up.all_predictions() if q["task"] in new_ids and q["model_version"] == vid]
                # the notes travel inside the predictions, then are copied into the task data: wait for both
                data = {t["id"]: t["data"] for t in up.tasks() if t["id"] in new_ids}
                return (
                    (vid, new_ids, preds)
                    if len(new_ids) == N_NEW
                    and {q["task"] for q in preds} == new_ids
                    and all(q.get("cluster") is None for q in preds)  # none written: sampling follows the score
                    and all(data[q["task"]].get(QUEUE_COLUMN) == read_note(q["result"], QUEUE) for q in preds)
                    else None
                )

            vid, new_ids, preds = up.wait(predicted, f"predictions of the serving version for {N_NEW} new tasks")
            assert vid == first_version
            per_task = {}
            for q in preds:
                per_task.setdefault(q["task"], []).append(q)
            duplicated = {t: len(qs) for t, qs in per_task.items() if len(qs) > 1}
            assert not duplicated, f"tasks with more than one prediction of {vid}: {duplicated}"
            score = {t: min(q["score"] for q in qs) for t, qs in per_task.items()}
            lowest = min(score.values())
            queue = {t: read_note(qs[0]["result"], QUEUE) for t, qs in per_task.items()}
            page.reload()
            page.get_by_text(f"Tasks: {N_NEW} / {N_NEW + 24}").wait_for()  # "Needs review": unlabeled
            page.locator("[data-testid=table-row]").first.wait_for()
            page.wait_for_function(THUMBNAILS)
            page.screenshot(path=shots / "browser-3-predicted.png")
            table = dm_table(page)
            assert "Prediction score" in table["head"], table["head"]
            col_id, col_score = table["head"].index("ID"), table["head"].index("Prediction score")
            first_row = table["rows"][0]
            top = int(first_row[col_id])
            assert top in new_ids and queue[top] == min(queue.values()), (first_row, queue)  # the tab's queue order
            assert abs(float(first_row[col_score]) - score[top]) < 0.0006, (first_row, score[top])  # confidence
            # the note column: the predicted label and its confidence as a percent
            predicted_label = per_task[top][0]["result"][0]["value"]["choices"][0]
            col_note = next(i for i, h in enumerate(table["head"]) if h.startswith(NOTE_COLUMN))
            confidence = per_task[top][0]["result"][0]["score"]
            assert first_row[col_note].startswith(f"{predicted_label} · {100 * confidence:.1f}%"), first_row
            assert all(r[col_score] for r in table["rows"]), table["rows"]  # no empty score cell

            # 4. "Label All Tasks" opens what Label Studio's uncertainty sampling picks: the lowest score
            # (the least confident) of the serving version
            nexts = []  # every next_task answer: the first one is the sampling's choice
            page.on("response", lambda r: nexts.append(r) if "/api/dm/actions?id=next_task" in r.url else None)
            page.get_by_role("button", name="Label All Tasks").click()
            page.locator("input.ant-checkbox-input:checked").first.wait_for()  # the prediction pre-selected
            page.get_by_text("Downloading image").wait_for(state="hidden")
            # (Label Studio's SQLite can answer one with a 500 "database is locked"; its retry gets the lock)
            queues = [(r.status, r.json().get("id"), r.json().get("queue")) for r in nexts]
            served = next(r.json() for r in nexts if r.ok)
            shown = int(re.match(r"\d+", page.locator(".lsf-current-task__task-id").inner_text()).group())
            page.screenshot(path=shots / "browser-4-most-useful.png")
            assert shown == served["id"], (shown, queues)
            # Label Studio's uncertainty sampling (projects/functions/next_task.py): among tasks with a
            # prediction of the project's model_version, the cluster where this annotator has solved
            # the fewest tasks first, then the lowest score
            everything = up.all_predictions()
            solved = Counter(
                max(
                    (q.get("cluster") for q in everything if q["task"] == t and q.get("cluster") is not None),
                    default=None,
                )
                for t in {q["task"] for q in everything} - new_ids
            )
            cluster = {t: qs[0].get("cluster") for t, qs in per_task.items()}
            rank = {t: (solved.get(cluster[t], 0), score[t]) for t in score}
            best = min(rank.values())
            assert shown in new_ids and rank[shown] == best, (
                f"served task {shown} (cluster {cluster.get(shown)}, score {score.get(shown)}, queue "
                f"{served.get('queue')!r}); expected (solved in its cluster, score) {best} on "
                f"{sorted(t for t in rank if rank[t] == best)}; lowest score {lowest}; "
                f"solved per cluster {dict(solved)}"
            )
            predicted_label = per_task[shown][0]["result"][0]["value"]["choices"][0]
            checked = [e.get_attribute("name") for e in page.locator("input.ant-checkbox-input:checked").all()]
            assert checked == [predicted_label], (checked, predicted_label)

            # 5. a correction with the keyboard: the number hotkey of another label, then Ctrl+Enter
            correction = next(c for c in scenes.CLASSES if c != predicted_label)
            page.keyboard.press(str(scenes.CLASSES.index(correction) + 1))
            page.wait_for_function("name => document.querySelector(`input[name=${name}]`).checked", arg=correction)
            checked = [e.get_attribute("name") for e in page.locator("input.ant-checkbox-input:checked").all()]
            page.screenshot(path=shots / "browser-5-corrected.png")
            assert checked == [correction], (checked, correction)
            with page.expect_response(
                lambda r: f"/api/tasks/{shown}/annotations" in r.url and r.request.method == "POST"
            ) as submitted:
                page.keyboard.press("Control+Enter")
            assert submitted.value.status == 201, submitted.value.text()
            me = up.get("/api/current-user/whoami")
            annotations = up.get(f"/api/tasks/{shown}/annotations/")
            assert [
                (a["completed_by"], a["was_cancelled"], a["result"][0]["value"]["choices"]) for a in annotations
            ] == [(me["id"], False, [correction])], annotations

            # 6. the submission trains a new version; Label Studio's project follows it
            new_version = up.wait(lambda: up.settled(not_version=first_version), "new version after the correction")
            assert up.model_version() == new_version
            page.goto(f"{url}/projects/{pid}/data")
            page.get_by_text(f"Tasks: {N_NEW - 1} / {N_NEW + 24}").wait_for()
            page.locator("[data-testid=table-row]").first.wait_for()
            page.wait_for_function(THUMBNAILS)
            page.screenshot(path=shots / "browser-6-retrained.png")
            browser.close()
        print(
            f"served task {shown} (next_task answers {queues}), {predicted_label} -> {correction}, "
            f"{first_version} -> {new_version}; screenshots in {shots}"
        )

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0, up.logs()
        assert "stopping" in up.stdout.read_text()
    finally:
        stop_up(proc)  # a failed step: let `tasveer up` stop its children, then make sure
