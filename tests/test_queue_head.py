"""A refresh makes the rows of the queue's top only before the head's write (backend/writeback/ranked.py):
they must be exactly the first rows of the whole arranged queue, whatever the duplicates among the
most useful tasks. Real scoring, real queue order and a real curation store; no Label Studio (the
write itself is tested with one in test_open_tasks.py and test_scale_labelstudio.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from backend.collection.curationstore import Curation, CurationStore
from backend.collection.rowprep import arrange
from backend.inference.scoring import score_rows
from backend.writeback.ranked import Ranked, RestRows, queue_head
from lsproto.config import build_label_config, parse_label_config
from lsproto.notes import WHY_UNCERTAIN

LABELS = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
CFG = parse_label_config(build_label_config(LABELS))
COLUMNS = [(label, i) for i, label in enumerate(LABELS)]


def probabilities(n: int, seed: int = 0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(scale=2.0, size=(n, len(LABELS)))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    proba[[3, 17]] = np.nan  # photos that could not be scored get no row
    return proba


def ranked(proba: np.ndarray, ids: list[int]) -> Ranked:
    return Ranked(CFG, "v0002", proba, COLUMNS, "margin", ids, WHY_UNCERTAIN)


def test_rows_are_the_scored_rows_most_useful_first():
    proba = probabilities(500)
    ids = list(range(1000, 1500))
    scored = score_rows(CFG, "v0002", proba, COLUMNS, "margin")
    before = [
        {"task": t, **s.prediction, "why": WHY_UNCERTAIN, "priority": s.priority}
        for t, s in zip(ids, scored)
        if s is not None
    ]
    before.sort(key=lambda r: r["priority"])
    made = ranked(proba, ids)
    assert len(made) == 498
    assert made.rows() == before
    assert made.rows(10, 20) == before[10:20]


def curated(tmp_path, groups: list[list[int]]):
    curation = Curation(backbone="b", held=0, groups=[{"id": min(g), "tasks": g, "exact": False} for g in groups])
    curator = SimpleNamespace(store=lambda pid: CurationStore(tmp_path))
    return lambda rows: arrange(curator, "1", curation, rows, [], set())


def arrange_both(arranging, rows, checks):
    """The rows arranged by `arranging`, and the checks as they are (no marks in this curation)."""
    prep = arranging(rows)
    prep.checks = list(checks)
    return prep


def useful_last_ids(proba: np.ndarray) -> list[int]:
    """Task ids that grow with usefulness: a group's keeper (its lowest id) is its least useful member."""
    order = [r["task"] for r in ranked(proba, list(range(len(proba)))).rows()]
    ids = [0] * len(proba)
    for rank, position in enumerate(order):
        ids[position] = 5000 - rank
    return ids


def pairs(order: list[int], count: int) -> list[list[int]]:
    """The `count` most useful tasks, each a twin of one of the least useful: they all wait."""
    return [[low, high] for low, high in zip(order[::-1][:count], order[:count])]


@pytest.mark.parametrize(
    "grouping",
    [
        lambda order: [],
        lambda order: pairs(order, 20),
        lambda order: pairs(order, 150),  # more than the first candidates (4 x 32) wait: they grow
        lambda order: [order[10:]],  # 11 tasks keep a place: the head ends with waiting twins
    ],
    ids=["no duplicates", "20 waiting", "150 waiting", "all but 11 waiting"],
)
def test_the_head_is_the_top_of_the_whole_arranged_queue(tmp_path, grouping):
    proba = probabilities(500)
    made = ranked(proba, useful_last_ids(proba))
    order = [r["task"] for r in made.rows()]
    arranging = curated(tmp_path, grouping(order))
    whole = arranging(made.rows())
    head = queue_head(made, arranging, 32)
    assert [r["task"] for r in head.rows] == [r["task"] for r in whole.rows[:32]]
    assert head.rows == whole.rows[:32]
    waiting = sum(1 for r in head.rows if r["priority"] > 1.0)
    assert waiting == (21 if len(grouping(order)) == 1 else 0)


def test_the_rest_made_batch_by_batch_is_the_rest_of_the_whole_queue(tmp_path):
    proba = probabilities(500)
    made = ranked(proba, useful_last_ids(proba))
    order = [r["task"] for r in made.rows()]
    arranging = curated(tmp_path, pairs(order, 150))
    head = queue_head(made, arranging, 32)
    whole = arranging(made.rows())
    checks = [{**made.rows(0, 1)[0], "task": 1, "why": "label check"}, {**made.rows(1, 2)[0], "task": 2}]
    rest = RestRows(
        made, lambda rows, checks: arrange_both(arranging, rows, checks), checks, [r["task"] for r in head.rows]
    )
    batches = []
    for size in [1, 60, 250, 60, 250]:
        if not rest.done():
            batches.append(rest.take(size))
    assert rest.done() and [len(b) for b in batches] == [1, 60, 250, 60, 97]
    written = [r for b in batches for r in b]
    assert [r["task"] for r in written[:2]] == [1, 2]  # the label checks first
    by_task = {r["task"]: r for r in whole.rows}
    assert written[2:] == [by_task[r["task"]] for r in written[2:]]  # each row as in the whole queue
    assert {r["task"] for r in head.rows} | {r["task"] for r in written[2:]} == set(order)
    assert len(head.rows) + len(written) - 2 == len(order)  # no task twice
    assert rest.waiting == 150
