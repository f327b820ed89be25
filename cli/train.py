"""`tasveer train`: train on a class-per-folder tree and publish a version to a model store."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from cli.common import add_json_and_cache, default_cache, fail, read_images
from training.params import MODES, PRESETS, TrainParams, help_of

# CLI flags that are training parameters of the same name
PARAM_FLAGS = ("preset", "mode", "model", "lr", "epochs", "image_size", "batch_size", "seed", "tta")


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a classifier on a class-per-folder tree",
        description="Train on DIR/<class>/<image> and publish a new version to STORE.",
    )
    add_json_and_cache(p)
    p.add_argument("--data", required=True, type=Path, help="directory with one sub-folder per class")
    p.add_argument("--out", required=True, type=Path, help="model store directory (created if needed)")
    p.add_argument("--preset", choices=list(PRESETS), help=_help("preset") + "; other flags and --params win")
    p.add_argument("--mode", choices=list(MODES), help=_help("mode"))
    p.add_argument("--model", help=_help("model"))
    p.add_argument("--lr", type=float, help=_help("lr"))
    p.add_argument("--epochs", type=int, help=_help("epochs"))
    p.add_argument("--image-size", type=int, help=_help("image_size"))
    p.add_argument("--batch-size", type=int, help=_help("batch_size"))
    p.add_argument("--seed", type=int, help=_help("seed"))
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None, help=_help("tta"))
    p.add_argument("--limit", type=int, help="use N images, balanced over classes, chosen by seed")
    p.add_argument("--params", help="more hyperparameters as JSON, e.g. '{\"head_c\": 1.0}'")
    p.set_defaults(func=run)
    return p


def _help(name: str) -> str:
    """The parameter's help (training/params.py), `%` escaped for argparse."""
    return help_of(name)["help"].replace("%", "%%")


@dataclass(frozen=True)
class _Inputs:
    """What `train` fits on: the parameters and the photos (paths, label names, class names)."""

    params: TrainParams
    paths: list[Path]
    labels: list[str]
    classes: list[str]


def run(args) -> int:
    from training.cache import EmbeddingCache
    from training.head import TooFewLabels
    from training.params import ParamError
    from training.train import fit

    inputs = _read_inputs(args)
    if isinstance(inputs, str):
        return fail("train", inputs)
    params = inputs.params
    blobs, _ = read_images(inputs.paths)
    print(
        f"training {params.mode} / {params.model} on {len(inputs.paths)} images, {len(inputs.classes)} classes",
        file=sys.stderr,
    )
    try:
        result = fit(
            blobs,
            inputs.labels,
            inputs.classes,
            params,
            cache=EmbeddingCache(args.cache or default_cache()),
            progress=True,
            names=[str(p) for p in inputs.paths],
        )
    except (TooFewLabels, ParamError, ValueError) as exc:
        return fail("train", str(exc))
    vid = _publish(args, inputs, blobs, result)
    _report(args, vid, params, result)
    return 0


def _read_inputs(args) -> _Inputs | str:
    """The parameters (--params, then the flags) and the photos of --data (--limit of them);
    a string says why they cannot be had."""
    from training.data import balanced_sample, list_folder
    from training.params import ParamError

    try:
        values = json.loads(args.params) if args.params else {}
    except json.JSONDecodeError as exc:
        return f"--params is not valid JSON: {exc}"
    if not isinstance(values, dict):
        return "--params must be a JSON object"
    values.update({k: getattr(args, k) for k in PARAM_FLAGS if getattr(args, k) is not None})
    try:
        params = TrainParams.from_dict(values)
        paths, labels, classes = list_folder(args.data)
    except (ParamError, ValueError, FileNotFoundError) as exc:
        return str(exc)
    if args.limit is not None:
        if args.limit < 2:
            return "--limit must be at least 2"
        keep = balanced_sample(labels, args.limit, params.seed)
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    return _Inputs(params, paths, labels, classes)


def _publish(args, inputs: _Inputs, blobs: list[bytes], result) -> str:
    """Publish the fitted version to --out (parent: the version it served); returns its id."""
    from training.images import content_hash
    from training.store import ModelStore, data_fingerprint

    store = ModelStore(args.out)
    fingerprint = data_fingerprint([content_hash(b) for b in blobs], inputs.labels)
    return store.publish(
        result,
        params=inputs.params,
        parent=store.serving(),
        data_fingerprint=fingerprint,
        extra={"source": str(args.data)},
    )


def _report(args, vid: str, params: TrainParams, result) -> None:
    summary = {
        "version": vid,
        "store": str(args.out),
        "mode": params.mode,
        "model": params.model,
        "n_train": result.n_train,
        "seconds": round(result.seconds, 2),
        "metrics_source": result.metrics_source,
        "accuracy": result.metrics.get("accuracy"),
        "macro_f1": result.metrics.get("macro_f1"),
        "skipped": result.skipped,
    }
    if args.json:
        print(json.dumps(summary))
        return
    acc = summary["accuracy"]
    acc_text = f"{acc:.1%} ({result.metrics_source})" if acc is not None else "n/a (too few examples)"
    print(f"published {vid} to {args.out}: {result.n_train} images in {result.seconds:.1f}s, accuracy {acc_text}")
    for why in result.skipped.values():
        print(f"  skipped {why}")
