"""Label efficiency: accuracy on a fixed held-out 20 % of the shared scene photos for growing
numbers of training labels, head mode and finetune mode, with the wall time of each run.

    .venv/bin/python bench/accuracy.py                      # everything (about 30 min on 2 cores)
    .venv/bin/python bench/accuracy.py --modes head         # head mode only (about 5 min)

Each head run starts from an empty embedding cache, so its time includes embedding its own
training images in PyTorch (the held-out embeddings are computed once, with ONNX Runtime, and
shared; `--unlabeled` photos are embedded with ONNX Runtime before the clock starts). Prints a markdown table
and writes bench/out/accuracy.json. CPU time is the process's (all threads): on a machine whose
2 cores other work shares, CPU time / 2 is what the run would take on 2 cores of its own.

    .venv/bin/python bench/accuracy.py --modes finetune --sizes all --ft-params '{"preset": "accurate"}'
    .venv/bin/python bench/accuracy.py --modes head --sizes 600 --unlabeled 2000 \
        --head-params '{"second_model": "efficientnet_lite0", "tta": true}'
    .venv/bin/python bench/accuracy.py --modes head --sizes 60,600 --unlabeled 2000 --warm \
        --head-params '{"preset": "balanced"}'      # the head's fit alone: photos embedded first

`--save-proba DIR` keeps what an ensemble needs to be evaluated offline (bench/ensemble.py): DIR/
classes.json, held.npy (held-out rows, `list_folder` order), and per run <mode>-<labels>.npy (held-out
probabilities, rows in held.npy order), <mode>-<labels>-train.npy (its training rows) and, for a
finetune, <mode>-<labels>-val.npy / -val_proba.npy (its validation rows and their calibrated
probabilities: what a weight or temperature may be chosen on without the test set).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.cache import EmbeddingCache  # noqa: E402
from training.data import balanced_sample, list_folder, stratified_split  # noqa: E402
from training.head import softmax  # noqa: E402
from training.images import read_image_file  # noqa: E402
from training.metrics import evaluate  # noqa: E402
from training.params import TrainParams  # noqa: E402
from training.train import backbone_for, fit  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="60,300,1200,all")
    ap.add_argument("--modes", default="head,finetune")
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ft-image-size", type=int, default=128)
    ap.add_argument("--ft-epochs", default="12,6,3,2", help="finetune epochs per size, in --sizes order")
    ap.add_argument("--ft-lr", type=float, default=5e-4)
    ap.add_argument(
        "--head-params",
        default="{}",
        help='head mode TrainParams as JSON, e.g. \'{"preset": "fast"}\' (default: the product\'s defaults)',
    )
    ap.add_argument(
        "--ft-params",
        default=None,
        help="finetune TrainParams as JSON, e.g. "
        '\'{"preset": "accurate"}\'; replaces --ft-image-size/--ft-epochs/--ft-lr',
    )
    ap.add_argument(
        "--unlabeled",
        type=int,
        default=0,
        help="head mode: N other pool photos for the "
        "semi-supervised head (params `unlabeled`), embedded before the clock starts, as the "
        "backend has them embedded from predicting them",
    )
    ap.add_argument(
        "--warm",
        action="store_true",
        help="head mode: embed the labelled photos too (ONNX "
        "Runtime) before the clock starts, as the backend has every imported task embedded from "
        "predicting it: the time is then the head's fit alone (graph, fits, cross-validation)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "accuracy.json")
    ap.add_argument(
        "--save-proba",
        type=Path,
        default=None,
        metavar="DIR",
        help="save held-out (and validation) probabilities and row indices to DIR",
    )
    ap.add_argument("--quick", action="store_true", help="a small run that checks the benchmark works (make bench)")
    args = ap.parse_args()
    if args.quick:
        args.holdout, args.sizes, args.ft_epochs, args.ft_image_size = 0.02, "60", "1", 64

    paths, labels, classes = list_folder(DATA)
    rest, held = stratified_split(labels, args.holdout, args.seed)
    test_blobs = [read_image_file(paths[i]) for i in held]
    test_labels = [labels[i] for i in held]
    rest_labels = [labels[i] for i in rest]
    sizes = [len(rest) if s == "all" else int(s) for s in args.sizes.split(",")]
    ft_epochs = [int(e) for e in args.ft_epochs.split(",")]
    print(f"{len(paths)} photos, {len(classes)} classes; held out {len(held)}, training pool {len(rest)}", flush=True)

    if args.save_proba is not None:
        args.save_proba.mkdir(parents=True, exist_ok=True)
        (args.save_proba / "classes.json").write_text(json.dumps(classes))
        np.save(args.save_proba / "held.npy", np.array(held, dtype=np.int64))
    rows = []
    head_values = json.loads(args.head_params)
    modes = args.modes.split(",")
    if "head" in modes:
        head_backbone = backbone_for(TrainParams.from_dict(head_values))
        serving_twin = ort_twin(head_backbone)
        shared = EmbeddingCache(Path(tempfile.mkdtemp()) / "eval")
        t = time.perf_counter()
        serving_twin.embed(test_blobs, cache=shared, progress=True)
        print(f"held-out embeddings: {time.perf_counter() - t:.1f}s", flush=True)
    for mode in modes:
        for k, n in enumerate(sizes):
            pick = [rest[i] for i in balanced_sample(rest_labels, n, args.seed)]
            blobs = [read_image_file(paths[i]) for i in pick]
            ys = [labels[i] for i in pick]
            cpu = time.process_time()
            if mode == "head":
                params = TrainParams.from_dict(head_values)
                cache = EmbeddingCache(Path(tempfile.mkdtemp()) / "train")
                unlabeled = None
                if args.unlabeled:
                    taken = set(pick)
                    others = np.array([i for i in rest if i not in taken])
                    chosen = np.random.default_rng(args.seed).choice(others, args.unlabeled, replace=False)
                    unlabeled = [read_image_file(paths[i]) for i in chosen]
                    serving_twin.embed(unlabeled, cache=cache, progress=True)
                if args.warm:
                    serving_twin.embed(blobs, cache=cache, progress=True)
                cpu = time.process_time()
                t = time.perf_counter()
                result = fit(
                    blobs,
                    ys,
                    classes,
                    params,
                    cache=cache,
                    backbone=head_backbone,
                    progress=True,
                    unlabeled_blobs=unlabeled,
                )
                seconds = time.perf_counter() - t
                cpu = time.process_time() - cpu
                proba = result.classifier.predict_proba(test_blobs, cache=shared)
            else:
                if args.ft_params is not None:
                    params = TrainParams.from_dict({"seed": args.seed, **json.loads(args.ft_params)})
                else:
                    params = TrainParams(
                        mode="finetune",
                        image_size=args.ft_image_size,
                        lr=args.ft_lr,
                        epochs=ft_epochs[min(k, len(ft_epochs) - 1)],
                        seed=args.seed,
                    )
                cache = EmbeddingCache(Path(tempfile.mkdtemp()) / "train")  # cold, like head runs
                t = time.perf_counter()
                result = fit(blobs, ys, classes, params, cache=cache, progress=True)
                seconds = time.perf_counter() - t
                cpu = time.process_time() - cpu
                t = time.perf_counter()
                proba = result.classifier.predict_proba(test_blobs, progress=True)
                print(f"held-out prediction: {time.perf_counter() - t:.1f}s", flush=True)
            m = evaluate(test_labels, proba, classes)
            temperature = result.metrics.get("temperature")
            if (
                mode == "finetune" and temperature and "ensemble" not in result.metrics
            ):  # the same scores before temperature scaling
                raw = softmax(np.log(np.clip(proba, 1e-38, 1.0)) * temperature)
                m["ece_before_scaling"] = evaluate(test_labels, raw, classes)["ece"]
            row = {
                "mode": mode,
                "labels": n,
                "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"],
                "ece": m["ece"],
                "train_seconds": round(seconds, 1),
                "cpu_seconds": round(cpu, 1),
                "n_test": m["n"],
                "temperature": temperature,
                "ece_before_scaling": m.get("ece_before_scaling"),
                "params": {
                    k2: v
                    for k2, v in params.to_dict().items()
                    if k2 in ("model", "image_size", "epochs", "lr", "head_c", "tta", "preset", "second_model")
                },
                "unlabeled": len(unlabeled or []) if mode == "head" else 0,
                "warm": bool(args.warm and mode == "head"),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.save_proba is not None:
                save_run(args.save_proba / f"{mode}-{n}", proba, pick, result, row)

    print("\n| mode | labels | held-out accuracy | macro F1 | ECE | wall time (s) | CPU time (s) | settings |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        s = r["params"]
        model = s["model"].replace("efficientnet_", "")
        setting = (
            f"{model}, image {s['image_size'] or 'native'}px"
            if r["mode"] == "head"
            else f"{model}, {s['epochs']} epochs, {s['image_size']}px, lr {s['lr']}"
        )
        setting += f" + {s['second_model'].replace('efficientnet_', '')}" if s.get("second_model") else ""
        setting += ", flip TTA" if s.get("tta") else ""
        setting += f", {r['unlabeled']} unlabeled" if r.get("unlabeled") else ""
        setting += ", labelled photos embedded before the clock" if r.get("warm") else ""
        print(
            f"| {r['mode']} | {r['labels']} | {r['accuracy']:.1%} | {r['macro_f1']:.3f} | {r['ece']:.3f} "
            f"| {r['train_seconds']} | {r['cpu_seconds']} | {setting} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    return 0


def ort_twin(backbone):
    """`backbone`'s features from ONNX Runtime (the same cache keys; what the backend serves with):
    for photos a project has embedded before it trains (held-out and unlabeled photos here)."""
    from training.onnx_export import ensure_backbone_onnx
    from training.ort import OrtBackbone
    from training.pair import PairBackbone

    root = Path(tempfile.mkdtemp())
    parts = [
        OrtBackbone(ensure_backbone_onnx(root, part), part.spec(), part.id)
        for part in getattr(backbone, "parts", (backbone,))
    ]
    return parts[0] if len(parts) == 1 else PairBackbone(*parts)


def save_run(stem: Path, proba: np.ndarray, pick: list[int], result, row: dict) -> None:
    """One run's probabilities and row indices (all rows in `list_folder` order), see --save-proba."""
    np.save(f"{stem}.npy", proba.astype(np.float32))
    np.save(f"{stem}-train.npy", np.array(pick, dtype=np.int64))
    if result.val_index:
        np.save(f"{stem}-val.npy", np.array([pick[i] for i in result.val_index], dtype=np.int64))
        np.save(f"{stem}-val_proba.npy", result.val_proba.astype(np.float32))
    Path(f"{stem}.json").write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    sys.exit(main())
