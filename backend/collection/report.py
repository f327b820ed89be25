"""The collection's JSON answers (api/curation_routes.py), read from the stored result of the last
update (curationstore.py): a request never computes groups or scores, it reads one small file."""

from __future__ import annotations

from backend.collection.curationstore import Curation
from backend.errors import NotFound, RequestError

MAX_LIMIT = 1000  # the unusual scores kept (curator.UNUSUAL_KEPT)


def latest(service, pid: str) -> Curation:
    """The project's stored result; NotFound before its /setup or before the first update."""
    if service.projects.state(pid) is None:
        raise NotFound(f"project {pid} is not set up (no /setup yet)")
    curation = service.curator.latest(pid)
    if curation is None:
        raise NotFound(f"project {pid}: the collection has not been updated yet (no photo predicted)")
    return curation


def duplicates(curation: Curation, pid: str) -> dict:
    """Every group (task ids, exact or near, the labels known of its members) and the leaky
    evaluation report: groups with two labeled members or more, whose copies would sit on both
    sides of the cross-validation's folds (training/ evaluates out of fold) and flatter it."""
    groups = []
    for group in curation.groups:
        labels = {str(t): curation.labels[t] for t in group["tasks"] if t in curation.labels}
        groups.append({**group, "size": len(group["tasks"]), "labels": labels})
    leaky = [
        {
            "id": g["id"],
            "tasks": [int(t) for t in g["labels"]],
            "labels": g["labels"],
            "agree": len(set(g["labels"].values())) == 1,
        }
        for g in groups
        if len(g["labels"]) >= 2
    ]
    return {
        "project": pid,
        "photos": curation.held,
        "groups": groups,
        "in_groups": sum(g["size"] for g in groups),
        "leaky_evaluation": {
            "groups": leaky,
            "labeled_copies": sum(len(g["tasks"]) - 1 for g in leaky),
            "why": "labeled copies of one photo in different cross-validation folds: an optimistic estimate",
        },
        "updated_at": curation.updated_at,
    }


def unusual(curation: Curation, pid: str, limit: str | None) -> dict:
    """The `limit` most unusual photos, strongest first, with the score's two parts."""
    try:
        n = 50 if limit is None else int(limit)
    except ValueError:
        raise RequestError("limit must be a whole number") from None
    if not 1 <= n <= MAX_LIMIT:
        raise RequestError(f"limit must be between 1 and {MAX_LIMIT}")
    return {
        "project": pid,
        "photos": curation.held,
        "parts": {
            "rest": "robust z of the mean cosine distance to the 10 nearest other photos",
            "known": "robust z of the distance from every labeled class (null before any label)",
            "score": "the larger of the two",
        },
        "unusual": [{**u, "label": curation.labels.get(int(u["task"]))} for u in curation.unusual[:n]],
        "updated_at": curation.updated_at,
    }
