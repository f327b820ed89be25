"""`tasveer export`: one model version as a self-contained ONNX graph, its labels and a model card."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.common import fail, locate_model

DESCRIPTION = """\
Write one model version as DIR/model.onnx: a single ONNX graph from photos to calibrated
probabilities (every network the version reads, its head, temperature, softmax, and flip TTA when
the version uses it), runnable with onnxruntime, numpy and Pillow alone. Beside it: labels.json
(the labels in output order) and MODEL_CARD.md (metrics, training data and parameters, and five
lines of Python that run it).

Input: uint8 RGB images in NHWC layout (N, S, S, 3), each photo resized with Pillow as the product
does (short side to S, centre crop); normalisation happens inside the graph. A version whose
networks read different sizes (an ensemble) takes one input per size: the graph's metadata `inputs`
names them. Outputs: `probabilities` (N, C) float32 and `label_index` (N,) int64."""


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="write a model version as one ONNX graph (+ labels, model card)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, metavar="STORE|VERSION_DIR",
                   help="model store (its serving version, or --version) or a version directory")
    p.add_argument("--version", default=None, metavar="vNNNN", help="the version to export (default: the serving one)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="directory to write model.onnx, labels.json and MODEL_CARD.md into (created if missing)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from training.exportgraph import ExportError, export_version
    from training.store import StoreError

    try:
        store, vid = locate_model(args.model)
        if vid is not None and args.version not in (None, vid):
            return fail("export", f"{args.model} is version {vid}, not {args.version}")
        vid = vid or args.version or store.serving()
        if vid is None:
            return fail("export", f"no version is serving in {args.model}; name one with --version")
        path = export_version(store, vid, args.out)
    except (StoreError, ExportError) as exc:
        return fail("export", str(exc))
    files = [str(path), str(path.with_name("labels.json")), str(path.with_name("MODEL_CARD.md"))]
    if args.json:
        print(json.dumps({"version": vid, "model": files[0], "files": files, "bytes": path.stat().st_size}))
    else:
        print(f"exported {vid} to {path} ({path.stat().st_size / 2**20:.1f} MiB), with labels.json and MODEL_CARD.md")
    return 0
