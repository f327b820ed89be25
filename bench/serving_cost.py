"""What each head feature choice and preset costs at serving time: ONNX Runtime (the serving engine)
on 128 shared photos, decode included, nothing cached, 2 threads; the configurations take turns in
each round and the best of the rounds is kept (compare within one run: the VM's load varies).

    .venv/bin/python bench/serving_cost.py [--rounds 3] [--quick]

A fine-tuned version runs the same graph shape as its pretrained backbone at the same size, so
the `accurate` preset's cost is measured on the pretrained network at its size and flip setting;
with `ensemble_head` (on in the preset) a version runs that network and the ensemble head's two
(training/pair.PairBackbone: Lite2 260 px and training.ensemble.HEAD_SECOND_MODEL at its own size),
all three measured together; the last rows are heads over two backbones: with flip TTA (params
`second_model`, `tta`), and the `balanced` preset's Lite2 and Lite1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.data import balanced_sample, list_folder  # noqa: E402
from training.ensemble import HEAD_SECOND_MODEL  # noqa: E402
from training.images import read_image_file  # noqa: E402
from training.params import PRESETS  # noqa: E402

DATA = Path(os.environ.get("TASVEER_SHARED") or REPO.parent / "shared") / "data" / "intel-scenes" / "train"
# name -> (model, image size or None for the backbone's own, flip TTA)
CONFIGS = {
    "lite0 224 px (head default before this change)": ("efficientnet_lite0", None, False),
    "lite0 224 px + flip": ("efficientnet_lite0", None, True),
    "lite2 260 px": ("efficientnet_lite2", None, False),
    "lite2 260 px + flip": ("efficientnet_lite2", None, True),
    "lite1 240 px": ("efficientnet_lite1", None, False),
    "accurate fine-tune alone": (
        PRESETS["accurate"].get("model", "efficientnet_lite0"),
        PRESETS["accurate"].get("image_size"),
        PRESETS["accurate"].get("tta", False),
    ),
}
ENSEMBLE = (
    "accurate preset as served (fine-tune + head on Lite2 and "
    f"{HEAD_SECOND_MODEL.replace('efficientnet_l', 'L')}, ensemble_head)"
)
# the pretrained network (no flip) of each model among CONFIGS, for the ensemble head's second one
PLAIN = {spec[0]: name for name, spec in CONFIGS.items() if spec[1] is None and not spec[2]}
PAIR = "head on Lite2 + flip and Lite0 + flip (`second_model`, `tta`)"
BALANCED = "`balanced` preset: head on Lite2 and Lite1 (`second_model`)"


def ort_backbone(model: str, size: int | None, tta: bool, graphs: Path):
    from training.backbones import create_backbone
    from training.onnx_export import ensure_backbone_onnx
    from training.ort import OrtBackbone

    torch_backbone = create_backbone(model, image_size=size, tta=tta)
    path = ensure_backbone_onnx(graphs, torch_backbone)
    return OrtBackbone(path, torch_backbone.spec(), torch_backbone.id, threads=2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--photos", type=int, default=128)
    ap.add_argument("--quick", action="store_true", help="16 photos, one round, two configurations")
    args = ap.parse_args()
    configs = dict(CONFIGS)
    if args.quick:
        args.rounds, args.photos = 1, 16
        configs = dict(list(configs.items())[:2])
    paths, labels, _ = list_folder(DATA)
    blobs = [read_image_file(paths[i]) for i in balanced_sample(labels, args.photos, 5)]
    graphs = Path(tempfile.mkdtemp())
    backbones = {name: ort_backbone(*spec, graphs) for name, spec in configs.items()}
    if not args.quick and PRESETS["accurate"].get("ensemble_head"):
        from training.pair import PairBackbone

        backbones[ENSEMBLE] = PairBackbone(
            backbones["accurate fine-tune alone"], backbones["lite2 260 px"], backbones[PLAIN[HEAD_SECOND_MODEL]]
        )
        configs[ENSEMBLE] = None
        backbones[PAIR] = PairBackbone(backbones["lite2 260 px + flip"], backbones["lite0 224 px + flip"])
        configs[PAIR] = None
        backbones[BALANCED] = PairBackbone(backbones["lite2 260 px"], backbones["lite1 240 px"])
        configs[BALANCED] = None
    best = {name: float("inf") for name in configs}
    for _ in range(args.rounds):
        for name, backbone in backbones.items():
            start = time.perf_counter()
            backbone.embed(blobs)
            best[name] = min(best[name], time.perf_counter() - start)
    base = next(iter(best.values()))
    print(f"\n| features (ORT, {len(blobs)} photos, decode included) | seconds | img/s | vs first row |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.2f} | {len(blobs) / seconds:.1f} | {seconds / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
