"""What a person sees in Label Studio (lsproto/notes.py, lsproto/views.py): a prediction's score is
the calibrated confidence, the queue key and a readable note reach the task data in bulk, and every
tab opens on a project without tasks (no tab orders or filters by `predictions_score`, which Label
Studio 1.23.2 cannot resolve there)."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from backend.inference.scoring import score_rows
from backend.writeback.lswrite import notes_of, tidy_parts, with_notes, write_head, write_rows
from lsproto.config import build_label_config, parse_label_config
from lsproto.notes import (
    NOTE,
    NOTE_COLUMN,
    QUEUE,
    QUEUE_COLUMN,
    TIE_BREAK,
    WHY_UNCERTAIN,
    confidence_score,
    note_items,
    note_text,
    queue_key,
    read_note,
    without_notes,
)
from lsproto.results import choice_result, prediction
from lsproto.views import COLUMNS, NEEDS_REVIEW, views
from sync.project import ensure_project

CLASSES = ["forest", "sea", "street"]


def test_the_score_is_the_confidence_and_ties_follow_the_priority():
    assert confidence_score(0.8765, 0.3) == pytest.approx(0.8765, abs=2 * TIE_BREAK)
    assert f"{100 * confidence_score(0.8765, 1.0):.2f}" == "87.65"  # what the labeling view prints
    ranks = [confidence_score(1 / 6, p) for p in (0.0, 0.25, 0.5, 1.0)]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4  # the more useful, the lower
    assert all(r < 1 / 6 for r in ranks)  # below an answer /predict gives at the same confidence
    assert confidence_score(0.0, 0.0) == 0.0 and confidence_score(1.3, 0.5) <= 1.0


def test_queue_keys_sort_as_text_like_numbers():
    values = [0.0, 0.000001, 0.0123, 0.1, 0.5, 0.99, 1.0, 1.7, -0.2]
    keys = [queue_key(v) for v in values]
    assert len({len(k) for k in keys}) == 1
    assert sorted(keys) == [queue_key(v) for v in sorted(values)]


def test_note_items_travel_with_the_result_and_come_off_again():
    result = choice_result("choice", "image", "sea") + note_items("image", note_text("sea", 0.875, WHY_UNCERTAIN), 0.02)
    assert read_note(result) == "sea · 87.5% · uncertain"
    assert read_note(result, QUEUE) == "0.020000"
    assert without_notes(result) == choice_result("choice", "image", "sea")
    assert [i["from_name"] for i in note_items("image", "x", None)] == [NOTE]


def test_scored_rows_carry_confidence_and_priority():
    cfg = parse_label_config(build_label_config(CLASSES))
    proba = np.array([[0.5, 0.45, 0.05], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [np.nan, 0.5, 0.5]])
    rows = score_rows(cfg, "v0001", proba, [(c, i) for i, c in enumerate(CLASSES)], "margin")
    assert rows[3] is None
    first, second, third = rows[:3]
    assert (first.label, first.confidence, first.priority) == ("forest", 0.5, pytest.approx(0.05))
    assert first.prediction["result"][0]["score"] == 0.5
    assert abs(first.prediction["score"] - 0.5) <= 2 * TIE_BREAK
    assert second.priority > third.priority > first.priority  # margin: 0.85, 0.2, 0.05
    # the least confident (third, 0.5 = first's 0.5) is not the most useful by margin: the queue decides
    assert third.prediction["score"] > first.prediction["score"]


def test_a_row_with_a_why_carries_its_note_inside_its_result():
    cfg = parse_label_config(build_label_config(CLASSES))
    row = {"task": 7, **prediction(cfg, "sea", 0.8, "v0001", cluster=3), "why": WHY_UNCERTAIN, "priority": 0.25}
    row["result"][0]["score"] = 0.8
    plain = {"task": 8, **prediction(cfg, "sea", 0.9, "v0001")}
    assert read_note(notes_of(row)) == "sea · 80.0% · uncertain"
    assert read_note(notes_of(row), QUEUE) == "0.250000"
    sent = with_notes(row)
    assert set(sent) == {"task", "result", "score", "model_version"}  # no cluster, why or priority
    assert sent["result"][0] == row["result"][0] and read_note(sent["result"]) == "sea · 80.0% · uncertain"
    assert notes_of(plain) == [] and with_notes(plain)["result"] == plain["result"]


def test_no_tab_needs_a_task_to_order_or_filter():
    for title, data in views(5).items():
        used = data["ordering"] + [f["filter"] for f in data["filters"]["items"]]
        assert not any("predictions_score" in u for u in used), (title, used)
        hidden = data["hiddenColumns"]["explore"]
        assert "tasks:id" not in hidden and f"tasks:data.{NOTE_COLUMN}" not in hidden, title
        assert f"tasks:data.{QUEUE_COLUMN}" in hidden and set(hidden) <= set(COLUMNS), title
    assert views()[NEEDS_REVIEW]["ordering"] == [f"tasks:data.{QUEUE_COLUMN}"]
    assert "tasks:predictions_score" not in views()[NEEDS_REVIEW]["hiddenColumns"]["explore"]  # sortable


@pytest.fixture
def postgres_label_studio(tmp_path):
    """Label Studio on PostgreSQL (as docker-compose runs it): JSON fields are jsonb there."""
    from lsfixture import LabelStudioInstance
    from pgls import label_studio_on_postgres

    with label_studio_on_postgres(tmp_path) as server:
        yield LabelStudioInstance(server.url, server.token, server.username, server.password, server.data_dir, server)


@pytest.mark.labelstudio
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_tabs_open_empty_and_notes_reach_the_task_data(database, request):
    label_studio = request.getfixturevalue("label_studio" if database == "sqlite" else "postgres_label_studio")
    client = label_studio.client()
    project = ensure_project(client, "notes-and-tabs", CLASSES)
    tabs = client.ensure_views(project.id, views(client.auto_user(create=True)))

    def listed(view: int) -> requests.Response:
        return requests.get(
            f"{label_studio.url}/api/tasks",
            params={"view": view, "project": project.id},
            headers=label_studio.headers,
            timeout=60,
        )

    for title, view in tabs.items():  # no "Cannot resolve keyword 'predictions_score'" (500)
        r = listed(view)
        assert r.status_code == 200 and r.json()["total"] == 0, (title, r.status_code, r.text[:300])
    client.cache_notes(project.id, [])  # nothing to copy: no request (the action fails on none)

    ids = label_studio.url_tasks(project.id, 3)
    cfg = parse_label_config(project.label_config)
    rows = []
    for task, (label, conf, prio) in zip(ids, [("sea", 0.9, 0.6), ("forest", 0.5, 0.1), ("street", 0.7, 0.3)]):
        row = {
            "task": task,
            **prediction(cfg, label, confidence_score(conf, prio), "v0001", cluster=1),
            "why": WHY_UNCERTAIN,
            "priority": prio,
        }
        row["result"][0]["score"] = conf
        rows.append(row)
    assert write_rows(client, project.id, rows) == 3  # notes inside the import: no PATCH
    assert write_rows(client, project.id, rows) == 3  # again: each task still has one prediction
    stored = client.project_predictions(project.id)
    assert sorted(p["task"] for p in stored) == sorted(ids)
    assert all(read_note(p["result"]) for p in stored)
    tasks = listed(tabs[NEEDS_REVIEW]).json()["tasks"]
    assert [t["id"] for t in tasks] == [ids[1], ids[2], ids[0]]  # queue order, not confidence
    assert [t["data"][NOTE_COLUMN] for t in tasks] == [
        "forest · 50.0% · uncertain",
        "street · 70.0% · uncertain",
        "sea · 90.0% · uncertain",
    ]
    assert [t["data"][QUEUE_COLUMN] for t in tasks] == ["0.100000", "0.300000", "0.600000"]
    for title, view in tabs.items():
        assert listed(view).status_code == 200, title


def test_the_head_is_tidied_half_by_half_lower_half_first_and_open_tasks_are_left():
    rows = [{"task": t} for t in [5, 1, 4, 2, 3]]
    assert tidy_parts(rows) == [[{"task": 2}, {"task": 3}], [{"task": 5}, {"task": 1}, {"task": 4}]]
    assert tidy_parts(rows, keep={1: "v0001", 2: "v0001"}) == [[{"task": 3}], [{"task": 5}, {"task": 4}]]
    assert tidy_parts([], keep={1: "v0001"}) == []


@pytest.mark.labelstudio
def test_a_head_serves_before_its_tasks_lose_their_old_predictions(label_studio):
    """lswrite.write_head: the new version's rows go in beside the old ones and the version switch
    follows at once (Label Studio serves the head's most useful task); the tidy then leaves each
    task one prediction with its note, but for a task someone has open (kept as it was)."""
    client = label_studio.client()
    project = ensure_project(client, "head-first", CLASSES)
    cfg = parse_label_config(project.label_config)
    ids = label_studio.url_tasks(project.id, 4)

    def rows_of(version: str, confidences: list[float]) -> list[dict]:
        out = []
        for task, conf in zip(ids, confidences):
            row = {"task": task, **prediction(cfg, "sea", confidence_score(conf), version), "why": WHY_UNCERTAIN}
            row["priority"] = conf
            out.append(row)
        return out

    write_rows(client, project.id, rows_of("v0001", [0.9, 0.8, 0.7, 0.6]))
    client.set_model_version(project.id, "v0001")
    head = sorted(rows_of("v0002", [0.4, 0.5, 0.6, 0.35]), key=lambda r: r["score"])
    switched = []
    assert write_head(client, project.id, head, written=lambda: switched.append(True)) == 4
    assert switched == [True]
    client.set_model_version(project.id, "v0002")
    versions = sorted((p["task"], p["model_version"]) for p in client.project_predictions(project.id))
    assert versions == sorted([(t, v) for t in ids for v in ("v0001", "v0002")])  # beside, not instead
    served = requests.get(
        f"{label_studio.url}/api/projects/{project.id}/next/", headers=label_studio.headers, timeout=60
    )
    assert served.json()["id"] == ids[3]  # the new version's lowest score

    kept = {ids[0]: "v0001"}  # someone has it open
    for part in tidy_parts(head, keep=kept):
        write_rows(client, project.id, part, keep=kept)
    stored = client.project_predictions(project.id)
    versions = sorted((p["task"], p["model_version"]) for p in stored)
    assert versions == sorted([(ids[0], "v0001"), (ids[0], "v0002")] + [(t, "v0002") for t in ids[1:]])
    assert all(read_note(p["result"]) for p in stored)
    for task, conf in zip(ids[1:], [0.5, 0.6, 0.35]):  # the tidy copied the new notes into the task data
        data = requests.get(f"{label_studio.url}/api/tasks/{task}", headers=label_studio.headers, timeout=60).json()
        assert data["data"][NOTE_COLUMN] == f"sea · {100 * conf:.1f}% · uncertain"
