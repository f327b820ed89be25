"""The promotion rule: a new version serves only if it is not worse than the serving one by more than
the project's `promotion_margin` (default 0); otherwise it is kept as a candidate, which a person can
promote by hand (POST /projects/<id>/rollback, `tasveer promote`).

"Worse" is measured on the same photos for both, where possible: the labels added since the serving
version was trained are unseen by it, and the new version's out-of-fold predictions of them are unseen
too, so both accuracies on those photos are honest and comparable. (Comparing each version's own
cross-validation accuracy would punish active learning, which adds the hardest photos.) With fewer
than MIN_NEW new labels, or for a version without out-of-fold predictions (finetune), the two
versions' own evaluations are compared (same data when only the parameters changed) - unless the
parameters are the same: then people corrected or removed labels, and their labels decide (a
version trained without a label someone deleted as wrong must serve, even if it scores lower).
"""

from __future__ import annotations

import numpy as np

from training.params import training_part

MIN_NEW = 10


def decide(
    serving: dict | None, serving_classifier, result, used, blobs, cache, margin: float, params: dict | None = None
) -> tuple[bool, str]:
    """(serve?, why) for a new FitResult trained on `used` examples (their `blobs`) with `params`."""
    if serving is None:
        return True, "served: first version"
    old_tasks = set((serving.get("extra") or {}).get("tasks") or [])
    kept = result.kept
    fresh = [row for row, i in enumerate(kept) if used[i].task_id not in old_tasks]
    labels = result.classifier.labels
    new_acc: float | None
    old_acc: float | None
    if result.oof_proba is not None and serving_classifier is not None and len(fresh) >= MIN_NEW:
        y = np.array([labels.index(used[kept[row]].label) for row in fresh])
        new_acc = float(np.mean(result.oof_proba[fresh].argmax(axis=1) == y))
        proba = serving_classifier.predict_proba([blobs[kept[row]] for row in fresh], cache=cache)
        old_pred = [serving_classifier.labels[int(np.nan_to_num(p, nan=-1).argmax())] for p in proba]
        old_acc = float(np.mean([p == labels[t] for p, t in zip(old_pred, y)]))
        where = f"on the {len(fresh)} labels added since {serving['version']}"
    elif params is not None and training_part(serving.get("params")) == training_part(params):
        return True, (
            f"served: same parameters as {serving['version']}, labels corrected or removed ({len(fresh)} new)"
        )
    else:
        new_acc = result.metrics.get("accuracy")
        old_acc = (serving.get("metrics") or {}).get("accuracy")
        where = "by each version's own evaluation"
        if old_acc is None:
            return True, "served: the serving version was never evaluated"
        if new_acc is None:
            return False, f"candidate: not evaluated (too few labels); {serving['version']} keeps serving"
    verdict = "served" if new_acc >= old_acc - margin else "candidate"
    return verdict == "served", (
        f"{verdict}: accuracy {new_acc:.3f} against {old_acc:.3f} of {serving['version']} {where} (margin {margin:g})"
    )
