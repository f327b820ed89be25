"""`tasveer train | evaluate | predict`: the training core from the command line, no Label Studio."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def default_cache() -> Path:
    base = os.environ.get("TASVEER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tasveer")
    return Path(base)


def register(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    common.add_argument("--cache", type=Path, default=None,
                        help="embedding cache directory (default $TASVEER_CACHE or ~/.cache/tasveer)")

    p = sub.add_parser("train", parents=[common], help="train a classifier on a class-per-folder tree",
                       description="Train on DIR/<class>/<image> and publish a new version to STORE.")
    p.add_argument("--data", required=True, type=Path, help="directory with one sub-folder per class")
    p.add_argument("--out", required=True, type=Path, help="model store directory (created if needed)")
    p.add_argument("--mode", choices=["head", "finetune"], help="head: linear head on cached "
                   "embeddings (seconds); finetune: whole network (minutes)")
    p.add_argument("--model", help="backbone: efficientnet_lite0 (offline weights), smallcnn, or any timm name")
    p.add_argument("--lr", type=float, help="learning rate (finetune)")
    p.add_argument("--epochs", type=int, help="epochs (finetune)")
    p.add_argument("--image-size", type=int, help="input size in pixels (default: the backbone's)")
    p.add_argument("--batch-size", type=int, help="batch size")
    p.add_argument("--seed", type=int, help="random seed (sampling, splits, training)")
    p.add_argument("--limit", type=int, help="use N images, balanced over classes, chosen by seed")
    p.add_argument("--params", help="more hyperparameters as JSON, e.g. '{\"head_c\": 1.0}'")
    p.set_defaults(func=run_train)

    p = sub.add_parser("evaluate", parents=[common], help="evaluate a model version on labelled images",
                       description="Accuracy, macro F1, per-class metrics, confusion matrix, ECE.")
    p.add_argument("--model", required=True, type=Path, help="model store (its serving version) or a version directory")
    p.add_argument("--data", required=True, type=Path, help="directory with one sub-folder per class")
    p.add_argument("--limit", type=int, help="evaluate on N images, balanced over classes")
    p.add_argument("--seed", type=int, default=0, help="seed for --limit")
    p.add_argument("--plot", type=Path, help="write the confusion matrix as a PNG here")
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser("predict", parents=[common], help="label images with a model version",
                       description="Print the predicted label and its confidence for each image.")
    p.add_argument("--model", required=True, type=Path, help="model store (its serving version) or a version directory")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.set_defaults(func=run_predict)


def _fail(message: str, code: int = 2) -> int:
    print(f"tasveer: error: {message}", file=sys.stderr)
    return code


def _open_model(path: Path):
    from training.store import ModelStore, StoreError

    if (path / "manifest.json").exists():
        store, vid = ModelStore(path.parent.parent), path.name
    elif (path / "versions").is_dir():
        store, vid = ModelStore(path), None
    else:
        raise StoreError(f"{path}: neither a model store nor a version directory")
    return store.load(vid)


def _read_many(paths):
    from training.images import ImageError, read_image_file

    blobs, errors = [], {}
    for i, p in enumerate(paths):
        try:
            blobs.append(read_image_file(p))
        except ImageError as exc:
            errors[i] = str(exc)
            blobs.append(b"")
    return blobs, errors


def run_train(args) -> int:
    from training.cache import EmbeddingCache
    from training.data import balanced_sample, list_folder
    from training.head import TooFewLabels
    from training.params import ParamError, TrainParams
    from training.store import ModelStore, data_fingerprint
    from training.images import content_hash
    from training.train import fit

    try:
        values = json.loads(args.params) if args.params else {}
    except json.JSONDecodeError as exc:
        return _fail(f"--params is not valid JSON: {exc}")
    for key in ("mode", "model", "lr", "epochs", "image_size", "batch_size", "seed"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    try:
        params = TrainParams.from_dict(values)
        paths, labels, classes = list_folder(args.data)
    except (ParamError, ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    if args.limit is not None:
        if args.limit < 2:
            return _fail("--limit must be at least 2")
        keep = balanced_sample(labels, args.limit, params.seed)
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    blobs, unreadable = _read_many(paths)
    names = [str(p) for p in paths]
    print(f"training {params.mode} / {params.model} on {len(paths)} images, {len(classes)} classes",
          file=sys.stderr)
    try:
        result = fit(blobs, labels, classes, params, cache=EmbeddingCache(args.cache or default_cache()),
                     progress=True, names=names)
    except (TooFewLabels, ParamError, ValueError) as exc:
        return _fail(str(exc))
    store = ModelStore(args.out)
    fingerprint = data_fingerprint([content_hash(b) for b in blobs], labels)
    vid = store.publish(result, params=params, parent=store.serving(), data_fingerprint=fingerprint,
                        extra={"source": str(args.data)})
    summary = {"version": vid, "store": str(args.out), "mode": params.mode, "model": params.model,
               "n_train": result.n_train, "seconds": round(result.seconds, 2),
               "metrics_source": result.metrics_source, "accuracy": result.metrics.get("accuracy"),
               "macro_f1": result.metrics.get("macro_f1"), "skipped": result.skipped}
    if args.json:
        print(json.dumps(summary))
    else:
        acc = summary["accuracy"]
        acc_text = f"{acc:.1%} ({result.metrics_source})" if acc is not None else "n/a (too few examples)"
        print(f"published {vid} to {args.out}: {result.n_train} images in {result.seconds:.1f}s, accuracy {acc_text}")
        for name, why in result.skipped.items():
            print(f"  skipped {why}")
    return 0


def run_evaluate(args) -> int:
    from training.cache import EmbeddingCache
    from training.data import balanced_sample, list_folder
    from training.metrics import evaluate, plot_confusion
    from training.store import StoreError

    try:
        clf = _open_model(args.model)
        paths, labels, _ = list_folder(args.data)
    except (StoreError, ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    unknown = sorted(set(labels) - set(clf.labels))
    if unknown:
        return _fail(f"folder(s) {', '.join(unknown)} are not labels of model {clf.version} "
                     f"({', '.join(clf.labels)})")
    if args.limit:
        keep = balanced_sample(labels, args.limit, args.seed)
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    blobs, errors = _read_many(paths)
    proba = clf.predict_proba(blobs, cache=EmbeddingCache(args.cache or default_cache()), progress=True,
                              names=[str(p) for p in paths], errors=errors)
    good = [i for i in range(len(paths)) if i not in errors]
    metrics = evaluate([labels[i] for i in good], proba[good], clf.labels)
    metrics["version"] = clf.version
    metrics["skipped"] = {str(paths[i]): msg for i, msg in errors.items()}
    if args.plot:
        plot_confusion(metrics, args.plot, title=f"{clf.version}")
    if args.json:
        print(json.dumps(metrics))
        return 0
    print(f"model {clf.version} on {metrics['n']} images: accuracy {metrics['accuracy']:.1%}, "
          f"macro F1 {metrics['macro_f1']:.3f}, ECE {metrics['ece']:.3f}")
    print(f"{'label':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, row in metrics["per_class"].items():
        print(f"{name:<16}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>10.3f}{row['support']:>10}")
    for why in metrics["skipped"].values():
        print(f"skipped {why}")
    if args.plot:
        print(f"confusion matrix written to {args.plot}")
    return 0


def run_predict(args) -> int:
    from training.cache import EmbeddingCache
    from training.store import StoreError

    try:
        clf = _open_model(args.model)
    except StoreError as exc:
        return _fail(str(exc))
    blobs, errors = _read_many(args.images)
    proba = clf.predict_proba(blobs, cache=EmbeddingCache(args.cache or default_cache()),
                              names=[str(p) for p in args.images], errors=errors)
    rows = []
    for i, path in enumerate(args.images):
        if i in errors:
            rows.append({"image": str(path), "error": errors[i]})
        else:
            top = int(proba[i].argmax())
            rows.append({"image": str(path), "label": clf.labels[top], "confidence": float(proba[i][top])})
    if args.json:
        print(json.dumps({"version": clf.version, "predictions": rows}))
    else:
        for row in rows:
            if "error" in row:
                print(f"{row['image']}\tERROR\t{row['error']}")
            else:
                print(f"{row['image']}\t{row['label']}\t{row['confidence']:.3f}")
    return 1 if errors else 0
