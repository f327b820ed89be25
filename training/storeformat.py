"""The model store's on-disk format, shared by the store (training/store.py), its bucket side
(training/storebucket.py), its writer (training/storepublish.py) and its PyTorch loader
(training/torchload.py). A leaf: it imports nothing of training but atomic.py, and no torch.

    ROOT/versions/<vid>/manifest.json       what the version is (labels, backbone, params, metrics...)
    ROOT/versions/<vid>/weights.safetensors head (and, for finetune, backbone) tensors
    ROOT/versions/<vid>/confusion.png       confusion matrix of its evaluation (may be drawn later)
    ROOT/versions/<vid>/features.onnx       a finetuned version's network as ONNX (features only)
    ROOT/backbones/<backbone id>-<size>.onnx a pretrained backbone as ONNX, shared by head versions
    ROOT/SERVING                            {"version": vid}: the version to serve (labeling)
    ROOT/PRODUCTION                         the entry of the last deploy ({"version": vid, "id", "at",
                                            "by", "via", "metrics", ...}): the version applications get
    ROOT/PRODUCTION_HISTORY.json            [entry, ...]: every deploy and production rollback, oldest
                                            first (written after PRODUCTION: see `history_with`)
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from .atomic import write_json_atomic

MANIFEST, WEIGHTS, CONFUSION, SERVING = "manifest.json", "weights.safetensors", "confusion.png", "SERVING"
FEATURES_ONNX = "features.onnx"
PRODUCTION, PRODUCTION_HISTORY = "PRODUCTION", "PRODUCTION_HISTORY.json"


class StoreError(LookupError):
    pass


def data_fingerprint(hashes: list[str], labels: list[str]) -> str:
    """Identity of a training set: the same (image, label) pairs in any order give the same value."""
    digest = hashlib.sha256()
    for pair in sorted(zip(hashes, labels)):
        digest.update(f"{pair[0]}\t{pair[1]}\n".encode())
    return digest.hexdigest()[:16]


def partners(manifest: dict) -> list[dict]:
    """The backbones after the first of a version over several (an ensemble, a two-backbone head),
    in head.weight's column order: {"backbone": spec, "backbone_id", "onnx"} each. Versions
    published before "partners" have one "partner"."""
    if "partners" in manifest:
        return list(manifest["partners"] or [])
    return [manifest["partner"]] if manifest.get("partner") else []


def shared_graphs(manifest: dict) -> list[str]:
    """The shared backbone graphs (ROOT/backbones/...) a version's manifest names: its own, and its
    other backbones' (an ensemble's head, a two-backbone head: `partners`)."""
    records = [manifest.get("onnx"), *(p.get("onnx") for p in partners(manifest))]
    return [r["path"] for r in records if r and r.get("path", "").startswith("backbones/")]


def own_graph(vid: str) -> str:
    """Where a finetuned version's own ONNX graph lies, relative to ROOT."""
    return f"versions/{vid}/{FEATURES_ONNX}"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_version_id(vid: str) -> str:
    """`vid`, when it can name a version directory (no path, no hidden name); else StoreError."""
    if not vid or "/" in vid or vid.startswith("."):
        raise StoreError(f"bad version id {vid!r}")
    return vid


def read_manifest(folder: Path) -> dict:
    """The manifest of the version directory `folder` (OSError when there is none)."""
    return json.loads((Path(folder) / MANIFEST).read_text())


def is_complete(folder: Path) -> bool:
    """A local version directory is listed once both its manifest and its weights are there."""
    return (folder / MANIFEST).exists() and (folder / WEIGHTS).exists()


def write_manifest(folder: Path, manifest: dict) -> None:
    write_json_atomic(Path(folder) / MANIFEST, manifest)


def serving_record(vid: str) -> dict:
    """The content of SERVING that serves `vid`."""
    return {"version": vid}


def served_version(raw: str | bytes | None) -> str | None:
    """The version a SERVING file's content names (None for no content or no version)."""
    return json.loads(raw).get("version") if raw else None


def production_entry(manifest: dict, *, by: str, via: str, previous: str | None, rollback: bool = False) -> dict:
    """One move of PRODUCTION to the version of `manifest`: who (`by`), how (`via`: "cli", "model
    page", ...), when, from which version, and the version's metrics at that time."""
    metrics = manifest.get("metrics") or {}
    return {
        "id": uuid.uuid4().hex,
        "version": manifest["version"],
        "at": datetime.now(UTC).isoformat(),
        "by": by,
        "via": via,
        "previous": previous,
        "rollback": rollback,
        "metrics": {
            "accuracy": metrics.get("accuracy"),
            "macro_f1": metrics.get("macro_f1"),
            "ece": metrics.get("ece"),
            "n": metrics.get("n"),
            "source": manifest.get("metrics_source"),
        },
    }


def history_with(history: list[dict], pointer: dict | None) -> list[dict]:
    """The production history a reader sees: the file's entries, plus PRODUCTION's own entry when a
    crash came between moving PRODUCTION and appending it to the history."""
    if pointer and pointer.get("id") and all(e.get("id") != pointer["id"] for e in history):
        return [*history, pointer]
    return history


def rollback_target(history: list[dict]) -> str | None:
    """The version a production rollback goes back to: deploys stack up, each rollback takes the top
    one off, so rollbacks in a row walk back through earlier deploys. None when there is none."""
    stack: list[str] = []
    for entry in history:
        if entry.get("rollback"):
            if stack:
                stack.pop()
        elif not stack or stack[-1] != entry.get("version"):
            stack.append(entry["version"])
    return stack[-2] if len(stack) >= 2 else None
