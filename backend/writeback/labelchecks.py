"""Label checks: every annotated task a version was trained on gets a row from its out-of-fold
probabilities (written by the refresh like any prediction); a suspected label error's row carries the
note "possible label error" and a queue key below SUSPECT_BELOW (lsproto/views.py), strongest lowest.
The training keeps those probabilities in the version's manifest (`out_of_fold`)."""

from __future__ import annotations

import numpy as np

from backend.inference.scoring import label_columns, score_rows
from lsproto.notes import WHY_LABEL_ERROR
from lsproto.views import label_check_score
from training.labelerrors import label_errors_from_proba


def label_check_rows(manifest: dict, vid: str, cfg) -> list[dict]:
    """Rows for the annotated tasks the version `manifest` has out-of-fold probabilities of; a
    suspected label error's row has a note (`why`) and its queue key (`priority`)."""
    oof = (manifest.get("extra") or {}).get("oof") or {}
    labels = list(manifest.get("labels") or [])
    if not oof.get("tasks") or not labels:
        return []
    proba = np.asarray(oof["proba"], dtype=np.float64)
    given = np.array([labels.index(g) for g in oof["labels"]])
    suspects = {s["index"]: s["strength"] for s in label_errors_from_proba(proba, given, labels)}
    columns = label_columns(cfg, labels)
    rows = []
    for i, task_id in enumerate(oof["tasks"]):
        scored = score_rows(cfg, vid, proba[i : i + 1], columns, "margin")[0]
        if scored is None:
            continue
        row = {"task": task_id, **scored.prediction}
        if i in suspects:
            row["why"] = f"{WHY_LABEL_ERROR} (labeled {labels[given[i]]})"
            row["priority"] = label_check_score(suspects[i], float(proba[i, given[i]]))
        rows.append(row)
    return rows


def out_of_fold(result, used) -> dict:
    """The out-of-fold probabilities of the tasks trained on, for label checks (`Refresher.label_checks`)."""
    if result.oof_proba is None:
        return {}
    kept = [used[i] for i in result.kept]
    return {
        "tasks": [e.task_id for e in kept],
        "labels": [e.label for e in kept],
        "proba": [[round(float(p), 5) for p in row] for row in result.oof_proba],
    }
