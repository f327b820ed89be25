"""Auto-accept, the product side: after every publish and rollback (refresh.py), the tasks the
serving version is confident enough about become labels in Label Studio without a person.

1. The threshold is fitted on the serving version's OUT-OF-FOLD probabilities of human labels
   (the manifest's extra.oof) and the version's confidences of the tasks it may accept, never on
   their labels (training/autoaccept.fit_pool_threshold). Tasks imported later are judged by the
   same threshold until the next publish or rollback.
2. A task without a human label whose predicted label's confidence is >= the threshold gets an
   annotation by the auto-accept user (lsproto/autoaccept.py) with the version and confidence.
   Training never uses them (lsclient's `annotated_examples` skips that user).
3. A stable random share (`spot_check`) of those tasks is left to people as spot checks, marked and
   served first; their answers are compared with the prediction, and auto-accept pauses itself while
   they fall below the target beyond chance (autoaccept_state.check_status).
4. When the model changes, an auto-accepted label the serving version would no longer give (below
   the threshold, another label, a spot check, paused, or auto-accept turned off) is deleted: the
   task is back in "Needs review". A task a person labeled too loses its auto-accepted label.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from backend.accept.decisions import AutoAcceptStore, check_status, is_spot_check
from lsproto.autoaccept import auto_result, is_auto, mark_spot_check
from lsproto.notes import WHY_AUTO_ACCEPTED, WHY_SPOT_CHECK
from lsproto.views import views
from training.autoaccept import Threshold, fit_pool_threshold
from training.params import ParamError, TrainParams

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a refresh needs to know before it predicts: the auto-accept user and its tasks."""

    params: TrainParams
    auto_user: int | None
    tasks: list[dict] = field(default_factory=list)  # tasks whose only annotations are auto-accepted
    current: dict = field(default_factory=dict)  # task id -> (annotation id, label) of those
    stale: list[int] = field(default_factory=list)  # auto annotations on tasks a person labeled too


def threshold_of(manifest: dict, target: float, pool_confidence) -> Threshold | None:
    """The version's threshold for `target` from its out-of-fold probabilities and the confidences
    of the tasks it may accept (None without out-of-fold probabilities: finetune versions)."""
    oof = (manifest.get("extra") or {}).get("oof") or {}
    labels = list(manifest.get("labels") or [])
    if not oof.get("tasks") or not labels:
        return None
    proba = np.asarray(oof["proba"], dtype=np.float64)
    given = np.array([labels.index(g) for g in oof["labels"]])
    return fit_pool_threshold(proba, given, pool_confidence, target=target)


def human_labels(manifest: dict) -> dict[int, str]:
    """task id -> the human label a version was trained on (from its out-of-fold record)."""
    oof = (manifest.get("extra") or {}).get("oof") or {}
    return {int(t): label for t, label in zip(oof.get("tasks") or [], oof.get("labels") or [])}


class AutoAccept:
    def __init__(self, projects_root):
        self.store = AutoAcceptStore(projects_root)
        self._lock = threading.Lock()  # one refresh of auto-accept at a time in this process

    def prepare(self, pid: str, state, api, listing: bool = True) -> Context | None:
        """None when auto-accept is off and has written nothing; else the auto-accept user (created
        when it is on) and (with `listing`) the tasks it labeled."""
        try:
            params = TrainParams.from_dict(state.params or None)
        except ParamError:
            params = TrainParams()
        data = self.store.load(pid)
        if params.auto_accept is None and not data["accepted"]:
            return None
        auto_user = api.auto_user(create=params.auto_accept is not None)
        ctx = Context(params, auto_user)
        if auto_user is None or not listing:
            return ctx
        for task in api.iter_tasks(int(pid), annotator=auto_user):
            anns = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
            mine = [a for a in anns if is_auto(a, auto_user)]
            if len(mine) < len(anns):
                ctx.stale += [a["id"] for a in mine]
            elif mine:
                ctx.tasks.append(task)
                label = ((mine[-1].get("result") or [{}])[0].get("value") or {}).get("choices") or [None]
                ctx.current[task["id"]] = (mine[-1]["id"], label[0])
                ctx.stale += [a["id"] for a in mine[:-1]]
        return ctx

    def apply(
        self, pid: str, ctx: Context, cfg, vid: str, manifest: dict, rows: list[dict], api, new_tasks: bool = False
    ) -> dict:
        """Decide for every predicted row (tasks without a human label), adjust the rows in place
        (spot checks marked and served first; accepted ones out of the label-error view), write and
        delete the auto-accepted annotations, and record the outcome. `new_tasks`: the rows are
        just-imported tasks only (the others keep their labels)."""
        with self._lock:
            return self._apply(pid, ctx, cfg, vid, manifest, rows, api, new_tasks)

    def _apply(self, pid, ctx, cfg, vid, manifest, rows, api, new_tasks=False) -> dict:
        data = self.store.load(pid)
        data["auto_user"] = ctx.auto_user
        target, share = ctx.params.auto_accept, ctx.params.spot_check
        confidences = [float(r["result"][0].get("score") or 0.0) for r in rows]
        stored = (data["versions"].get(vid) or {}).get("rule")
        if target is None:
            rule = None
        elif new_tasks and stored and stored.get("target") == target:  # new tasks: the version's threshold
            rule = Threshold(**stored)
        else:
            rule = threshold_of(manifest, target, confidences)
        answered = human_labels(manifest)
        for task, spot in list(data["spot_pending"].items()):
            if int(task) in answered:  # a person labeled a spot check: compare with what was predicted
                data["checks"].append(
                    {
                        "task": int(task),
                        "predicted": spot["label"],
                        "human": answered[int(task)],
                        "confidence": spot["confidence"],
                        "version": spot["version"],
                    }
                )
                del data["spot_pending"][task]
        status = check_status(data["checks"], target)
        threshold = rule.threshold if rule is not None else None

        create, keep, spots = [], {}, 0
        for row in rows:
            task, label = row["task"], row["result"][0]["value"]["choices"][0]
            conf = float(row["result"][0].get("score") or 0.0)
            would = threshold is not None and conf >= threshold
            if would and is_spot_check(task, share):
                spots += 1
                mark_spot_check(row, conf)
                row["why"], row["priority"] = WHY_SPOT_CHECK, 0.0  # first in "Needs review": people answer it next
                data["spot_pending"][str(task)] = {"label": label, "confidence": round(conf, 4), "version": vid}
                continue
            data["spot_pending"].pop(str(task), None)
            if not would or status["paused"]:
                continue
            row["why"] = WHY_AUTO_ACCEPTED  # its note says so (never "possible label error")
            held = ctx.current.get(task)
            if held is not None and held[1] == label:
                keep[task] = data["accepted"].get(str(task)) or {
                    "annotation": held[0],
                    "label": label,
                    "confidence": round(conf, 4),
                    "version": vid,
                }
            else:
                create.append((task, label, conf))
        drop = list(ctx.stale) + [ann for task, (ann, _) in ctx.current.items() if task not in keep]
        # unpredicted auto tasks (image unreachable) are dropped too: nothing vouches for them now
        if new_tasks:
            keep = {int(t): v for t, v in data["accepted"].items()}
        return self._write(pid, data, ctx, cfg, vid, rule, status, rows, create, keep, drop, spots, api, new_tasks)

    def _write(self, pid, data, ctx, cfg, vid, rule, status, rows, create, keep, drop, spots, api, new_tasks) -> dict:
        def make(item):
            task, label, conf = item
            ann = api.create_annotation(int(pid), task, auto_result(cfg, label, conf, vid), ctx.auto_user)
            return task, {"annotation": ann, "label": label, "confidence": round(conf, 4), "version": vid}

        data["accepted"] = {str(t): v for t, v in keep.items()} | {
            str(t): {"annotation": a, "label": None, "confidence": None, "version": vid}
            for t, (a, _) in ctx.current.items()
            if t not in keep
        }  # still listed while deleted
        self.store.save(pid, data)  # webhooks of the deletions below are recognised as ours
        errors = []
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="auto-accept") as pool:
            for result in pool.map(lambda a: _try(api.delete_annotation, a), drop):
                if result is not None:
                    errors.append(result)
            made = [r for r in pool.map(lambda i: _try(make, i, value=True), create)]
        accepted = {str(t): v for t, v in keep.items()}
        for result in made:
            if isinstance(result, tuple):
                accepted[str(result[0])] = result[1]
            else:
                errors.append(result)
        data["accepted"] = accepted
        if ctx.auto_user is not None and ctx.params.auto_accept is not None:
            try:
                api.ensure_views(int(pid), views(ctx.auto_user))
            except Exception as exc:  # the labels are written; the tabs catch up next time
                errors.append(f"views: {exc}")
        old = data["versions"].get(vid) or {}
        pool_size = len(rows) + (old.get("pool", 0) if new_tasks else 0)
        summary = {
            "version": vid,
            "at": time.time(),
            "target": ctx.params.auto_accept,
            "spot_share": ctx.params.spot_check,
            "rule": rule.to_dict() if rule is not None else None,
            "pool": pool_size,
            "accepted": len(accepted),
            "spot_checks": spots + (old.get("spot_checks", 0) if new_tasks else 0),
            "coverage": (len(accepted) / pool_size) if pool_size else 0.0,
            "created": len(create),
            "removed": len(drop),
            "paused": status["paused"],
        }
        data["versions"][vid] = summary
        data["status"] = status
        self.store.save(pid, data)
        report = {**summary, "errors": errors[:10], "message": status["message"]}
        log.info("project %s: auto-accept with %s: %s", pid, vid, report)
        return report


def _try(fn, arg, value: bool = False):
    """fn(arg); an exception becomes its message (one failed call does not stop the others)."""
    try:
        out = fn(arg)
        return out if value else None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
