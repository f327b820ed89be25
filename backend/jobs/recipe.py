"""Which recipe a training job trains: the project's own parameters (by default the fast head), or
the `accurate` preset, slower and usually better, promoted only if better (promotion.py).

A job trains `accurate` when it was asked for (POST /projects/<id>/train {"preset": "accurate"}, the
model page's "train accurate now") or when the project's `accurate_every` is N > 0, a version
already serves, and N or more labels were added since the last `accurate` training. The first
version of a project is always the fast one, so nobody waits minutes for a first model.

Where the request is recorded: in the job's `reason` (a suffix), which travels with the job in every
runner (threads, a child process, RQ); when requests coalesce, an `accurate` reason is never
replaced by a plain one (`merge_reason`).
"""

from __future__ import annotations

from training.params import TrainParams, with_preset

ACCURATE = "accurate"
TAG = " [accurate]"


def accurate_reason(reason: str) -> str:
    """The reason of a job asked to train the `accurate` preset."""
    return reason if wants_accurate(reason) else reason[:100] + TAG


def wants_accurate(reason: str | None) -> bool:
    return reason is not None and reason.endswith(TAG)


def merge_reason(waiting: str, new: str) -> str:
    """The reason of a pending job that a new request joins: the newest, unless that would drop an
    `accurate` request."""
    return waiting if wants_accurate(waiting) and not wants_accurate(new) else new


def last_accurate_labels(manifests: list[dict]) -> int:
    """How many labels the newest `accurate` version was trained on (0: none yet)."""
    for m in reversed(manifests):
        if (m.get("extra") or {}).get("recipe") == ACCURATE:
            return int(m.get("n_train") or 0)
    return 0


def choose(explicit: dict | None, reason: str | None, store, n_labels: int) -> tuple[TrainParams, str, str]:
    """(params, recipe name, why) for a job about to train on `n_labels` labels. `explicit` is the
    project's own parameters, `store` its ModelStore."""
    params = TrainParams.from_dict(explicit or None)
    if wants_accurate(reason):
        return with_preset(explicit, ACCURATE), ACCURATE, "asked for"
    every = params.accurate_every
    if every <= 0 or store.serving() is None:
        return params, "project", "the project's parameters"
    since = n_labels - last_accurate_labels(store.versions())
    if since >= every:
        return (
            with_preset(explicit, ACCURATE),
            ACCURATE,
            f"{since} labels since the last accurate training (every {every})",
        )
    return params, "project", f"{since} of {every} labels until the next accurate training"
