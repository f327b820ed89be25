"""Which member of a duplicate group keeps its place in the queue (backend/collection/queueorder.py):
the same one whatever rows a write holds and however a version ranks the members. Plain rows and
groups: no Label Studio needed to decide, tests/test_curation_labelstudio.py test_6b serves them."""

from __future__ import annotations

from backend.collection.curationstore import Curation
from backend.collection.queueorder import demote_duplicates
from lsproto.notes import WHY_UNCERTAIN, is_waiting_version

GROUPS = [{"id": 3, "tasks": [3, 9], "exact": False}, {"id": 5, "tasks": [5, 7, 11], "exact": False}]


def rows_of(priorities: dict[int, float], version: str = "v0002") -> list[dict]:
    return [
        {"task": t, "priority": p, "why": WHY_UNCERTAIN, "model_version": version, "score": 0.5}
        for t, p in priorities.items()
    ]


def waiting(rows: list[dict]) -> dict[int, str]:
    return {r["task"]: r["why"] for r in rows if is_waiting_version(r["model_version"])}


def test_the_first_imported_keeps_its_place_however_the_version_ranks_them():
    curation = Curation("b", 6, GROUPS)
    ranked_one_way = rows_of({3: 0.1, 9: 0.2, 5: 0.3, 7: 0.4, 11: 0.5, 4: 0.05})
    ranked_other_way = rows_of({3: 0.2, 9: 0.1, 5: 0.5, 7: 0.4, 11: 0.3, 4: 0.05}, "v0003")
    assert demote_duplicates(ranked_one_way, curation, set()) == 3
    assert demote_duplicates(ranked_other_way, curation, set()) == 3
    expected = {9: "duplicate of #3", 7: "duplicate of #5", 11: "duplicate of #5"}
    assert waiting(ranked_one_way) == waiting(ranked_other_way) == expected
    assert all(1 < r["priority"] <= 1.5 for r in ranked_other_way if r["task"] in expected)
    kept = {r["task"]: r["priority"] for r in ranked_other_way if r["task"] not in expected}
    assert kept == {3: 0.2, 5: 0.5, 4: 0.05}


def test_a_write_of_some_members_only_still_makes_them_wait():
    """The collection rewrites the tasks whose marks changed: a twin alone in a write waits behind the
    member the write does not hold (before, it became its group's keeper and was served)."""
    curation = Curation("b", 6, GROUPS)
    alone = rows_of({9: 0.01, 11: 0.02})
    assert demote_duplicates(alone, curation, set()) == 2
    assert waiting(alone) == {9: "duplicate of #3", 11: "duplicate of #5"}
    first = rows_of({3: 0.9})
    assert demote_duplicates(first, curation, set()) == 0 and waiting(first) == {}


def test_a_labeled_member_keeps_the_place_and_every_other_waits():
    """Also a member labeled since the version's training, whose row a write still holds."""
    curation = Curation("b", 6, GROUPS)
    rows = rows_of({3: 0.1, 9: 0.2, 5: 0.3, 11: 0.5})  # 7 labeled: not among the rows
    assert demote_duplicates(rows, curation, {7}) == 3
    assert waiting(rows) == {9: "duplicate of #3", 5: "duplicate of #7", 11: "duplicate of #7"}
    rows = rows_of({3: 0.1, 9: 0.2, 5: 0.3, 7: 0.4, 11: 0.5})  # 11 labeled a moment ago
    assert demote_duplicates(rows, curation, {11}) == 3
    assert waiting(rows) == {9: "duplicate of #3", 5: "duplicate of #11", 7: "duplicate of #11"}
