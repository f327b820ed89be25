"""`tasveer evaluate`: accuracy, macro F1, per-class metrics, confusion matrix and ECE of a version."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.common import add_json_and_cache, default_cache, fail, open_model, read_images


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a model version on labelled images",
        description="Accuracy, macro F1, per-class metrics, confusion matrix, ECE.",
    )
    add_json_and_cache(p)
    p.add_argument("--model", required=True, type=Path, help="model store (its serving version) or a version directory")
    p.add_argument("--data", required=True, type=Path, help="directory with one sub-folder per class")
    p.add_argument("--limit", type=int, help="evaluate on N images, balanced over classes")
    p.add_argument("--seed", type=int, default=0, help="seed for --limit")
    p.add_argument("--plot", type=Path, help="write the confusion matrix as a PNG here")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from training.cache import EmbeddingCache
    from training.data import balanced_sample, list_folder
    from training.metrics import evaluate, plot_confusion
    from training.store import StoreError

    try:
        clf = open_model(args.model)
        paths, labels, _ = list_folder(args.data)
    except (StoreError, ValueError, FileNotFoundError) as exc:
        return fail("evaluate", str(exc))
    unknown = sorted(set(labels) - set(clf.labels))
    if unknown:
        return fail(
            "evaluate",
            f"folder(s) {', '.join(unknown)} are not labels of model {clf.version} ({', '.join(clf.labels)})",
        )
    if args.limit:
        keep = balanced_sample(labels, args.limit, args.seed)
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    blobs, errors = read_images(paths)
    proba = clf.predict_proba(
        blobs,
        cache=EmbeddingCache(args.cache or default_cache()),
        progress=True,
        names=[str(p) for p in paths],
        errors=errors,
    )
    good = [i for i in range(len(paths)) if i not in errors]
    metrics = evaluate([labels[i] for i in good], proba[good], clf.labels)
    metrics["version"] = clf.version
    metrics["skipped"] = {str(paths[i]): msg for i, msg in errors.items()}
    if args.plot:
        plot_confusion(metrics, args.plot, title=f"{clf.version}")
    if args.json:
        print(json.dumps(metrics))
        return 0
    print(
        f"model {clf.version} on {metrics['n']} images: accuracy {metrics['accuracy']:.1%}, "
        f"macro F1 {metrics['macro_f1']:.3f}, ECE {metrics['ece']:.3f}"
    )
    print(f"{'label':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, row in metrics["per_class"].items():
        print(f"{name:<16}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>10.3f}{row['support']:>10}")
    for why in metrics["skipped"].values():
        print(f"skipped {why}")
    if args.plot:
        print(f"confusion matrix written to {args.plot}")
    return 0
