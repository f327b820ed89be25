"""What an exported version (exportgraph.py) says about itself: the graph's metadata_props and
MODEL_CARD.md, both from the version's manifest (training/storeformat.py). Plain text, no torch.
"""

from __future__ import annotations

import json

from .storeformat import partners

LAYOUT = "NHWC"
RESIZE = (
    "each photo upright (EXIF orientation) and RGB, its short side resized with Pillow to the input's "
    "size and interpolation, then centre-cropped to a square"
)

# How to run model.onnx with onnxruntime, numpy and Pillow alone: the product's resize (short side,
# centre crop) to each input the graph reads, then one run. tests/test_export.py runs it.
SNIPPET = (
    "\n".join(
        [
            "import json, numpy as np, onnxruntime as ort; from PIL import Image, ImageOps",
            'session = ort.InferenceSession("model.onnx"); meta = session.get_modelmeta().custom_metadata_map',
            'img = ImageOps.exif_transpose(Image.open("photo.jpg")).convert("RGB"); w, h = img.size',
            "def fit(size, interpolation): k = size / min(w, h); "
            "W, H = max(size, round(w * k)), max(size, round(h * k)); "
            "return np.asarray(img.resize((W, H), Image.Resampling[interpolation.upper()])"
            ".crop(((W - size) // 2, (H - size) // 2, (W + size) // 2, (H + size) // 2)))[None]",
            "proba, index = session.run(None, "
            '{name: fit(**spec) for name, spec in json.loads(meta["inputs"]).items()}); '
            'print(json.loads(meta["labels"])[index[0]], proba[0, index[0]])',
        ]
    )
    + "\n"
)


def networks_of(manifest: dict) -> list[dict]:
    """The backbone specs of the networks the version reads, in the head's column order."""
    return [manifest["backbone"], *(p["backbone"] for p in partners(manifest))]


def metadata(vid: str, manifest: dict, inputs: dict) -> dict[str, str]:
    """The graph's metadata_props (strings): what a caller needs to feed it and read its output,
    and where it comes from. `inputs`: {input name: {"size", "interpolation"}}."""
    metrics = manifest.get("metrics") or {}
    props = {
        "labels": json.dumps(manifest["labels"]),
        "version": vid,
        "image_size": str(manifest["image_size"]),
        "input_layout": LAYOUT,
        "input_dtype": "uint8",
        "inputs": json.dumps(inputs),
        "resize": RESIZE,
        "mode": manifest["mode"],
        "parent": manifest.get("parent") or "",
        "networks": json.dumps([spec["name"] for spec in networks_of(manifest)]),
        "n_train": str(manifest.get("n_train", "")),
        "n_eval": str(manifest.get("n_eval", "")),
        "metrics_source": manifest.get("metrics_source") or "",
        "created_at": manifest.get("created_at", ""),
    }
    for key in ("accuracy", "macro_f1", "ece"):
        if metrics.get(key) is not None:
            props[key] = repr(float(metrics[key]))
    return props


def model_card(vid: str, manifest: dict, inputs: dict) -> str:
    """MODEL_CARD.md of the exported version."""
    labels = manifest["labels"]
    lines = [
        f"# Model card: version {vid}",
        "",
        f"An image classifier over {len(labels)} labels: {', '.join(labels)} (`labels.json`, the order of the "
        "probabilities). Exported by `tasveer export` as one ONNX graph (`model.onnx`): from the image to "
        "calibrated probabilities, no PyTorch and no tasveer needed to run it.",
        "",
        f"- parent version: {manifest.get('parent') or 'none'}",
        f"- created: {manifest.get('created_at', 'unknown')}",
        f"- mode: {manifest['mode']}",
        "",
        "## Networks",
        "",
        "| network | weights | input size | interpolation | flip TTA |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {s['name']} | {s['weights']} | {s['image_size']} | {s['interpolation']} | {bool(s.get('tta'))} |"
        for s in networks_of(manifest)
    ]
    lines += ["", "## Training", "", training_text(manifest), "", "| parameter | value |", "| --- | --- |"]
    lines += [f"| `{k}` | `{json.dumps(v)}` |" for k, v in sorted((manifest.get("params") or {}).items())]
    lines += [
        "",
        "## Evaluation",
        "",
        *metrics_text(manifest),
        "",
        "## Input and output",
        "",
        input_text(inputs),
        "",
        "## Running it",
        "",
        "With onnxruntime, numpy and Pillow alone (`pip install onnxruntime pillow`), beside `model.onnx`:",
        "",
        "```python",
        SNIPPET.rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(lines)


def training_text(manifest: dict) -> str:
    n_train, labels = manifest.get("n_train"), manifest["labels"]
    text = f"Trained on {n_train} labelled photos of {len(labels)} classes ({', '.join(labels)})"
    if manifest.get("data_fingerprint"):
        text += f", data fingerprint `{manifest['data_fingerprint']}`"
    text += f", in {manifest.get('train_seconds', '?')} s."
    ensemble = (manifest.get("metrics") or {}).get("ensemble")
    if ensemble:
        text += (
            f" An ensemble: the fine-tuned network (weight {ensemble.get('weight')}) and a head on "
            f"{ensemble.get('head_backbone')} (its temperature {ensemble.get('head_temperature'):.3f}), "
            f"combined by their geometric mean at temperature {ensemble.get('temperature'):.3f}."
        )
    return text


def metrics_text(manifest: dict) -> list[str]:
    """Overall metrics, calibration error and the per-class table; or why there are none."""
    metrics = manifest.get("metrics") or {}
    if metrics.get("accuracy") is None:
        return ["No evaluation was possible (too few labelled photos)."]
    source = manifest.get("metrics_source") or "evaluation"
    out = [
        f"On {metrics.get('n', manifest.get('n_eval'))} photos ({source}): accuracy {metrics['accuracy']:.4f}, "
        f"macro F1 {metrics.get('macro_f1', float('nan')):.4f}, expected calibration error (ECE, 15 bins) "
        f"{metrics.get('ece', float('nan')):.4f}."
    ]
    if manifest.get("metrics_note"):
        out += ["", str(manifest["metrics_note"])]
    per_class = metrics.get("per_class") or {}
    if per_class:
        out += ["", "| label | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |"]
        out += [
            f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
            for name, m in per_class.items()
        ]
    return out


def input_text(inputs: dict) -> str:
    """What the graph reads and gives."""
    described = "; ".join(
        f"`{name}` (N, {s['size']}, {s['size']}, 3) at {s['size']} px, {s['interpolation']}"
        for name, s in inputs.items()
    )
    return (
        f"Inputs, uint8 RGB in NHWC layout (as `np.asarray` of a Pillow image, N photos stacked): {described}. "
        f"Each is {RESIZE}: exactly what the product does before its networks, so the probabilities are "
        "the ones it serves. Normalisation, flip averaging and any further step happen inside the graph. "
        "Outputs: `probabilities` (N, C) float32, columns in `labels.json` order, and `label_index` (N,) "
        "int64, the most probable label. The graph's metadata (`session.get_modelmeta().custom_metadata_map`) "
        "holds `labels`, `inputs`, `version`, `image_size`, `input_layout`, the training-set size and metrics."
    )
