"""`tasveer predict`: the label and confidence a model version gives each image."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.common import add_json_and_cache, default_cache, fail, open_model, read_images


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "predict",
        help="label images with a model version",
        description="Print the predicted label and its confidence for each image.",
    )
    add_json_and_cache(p)
    p.add_argument("--model", required=True, type=Path, help="model store (its serving version) or a version directory")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from training.cache import EmbeddingCache
    from training.store import StoreError

    try:
        clf = open_model(args.model)
    except StoreError as exc:
        return fail("predict", str(exc))
    blobs, errors = read_images(args.images)
    top = clf.predict(
        blobs, cache=EmbeddingCache(args.cache or default_cache()), names=[str(p) for p in args.images], errors=errors
    )
    rows = [
        {"image": str(path), "error": errors[i]}
        if i in errors
        else {"image": str(path), "label": top[i][0], "confidence": top[i][1]}
        for i, path in enumerate(args.images)
    ]
    if args.json:
        print(json.dumps({"version": clf.version, "predictions": rows}))
    else:
        for row in rows:
            if "error" in row:
                print(f"{row['image']}\tERROR\t{row['error']}")
            else:
                print(f"{row['image']}\t{row['label']}\t{row['confidence']:.3f}")
    return 1 if errors else 0
