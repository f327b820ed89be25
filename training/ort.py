"""A backbone served by ONNX Runtime, torch-free, with the same contract as backbones.Backbone:
`embed(blobs, cache=None, batch_size=64, progress=False, names=None, errors=None)`, `id`,
`image_size`, `num_features`, `spec()`. Wrapped in a classifier.Classifier it predicts exactly
like the PyTorch one, and it reads and fills the same embedding cache under the same backbone id.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .embedder import embed_images, flip_averaged
from .preprocess import Preprocessing

INPUT, OUTPUT = "images", "features"  # the graph's names (onnx_export.py writes them)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def make_session(path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    """CPU session: intra-op threads = the cores this process may use, one operator at a time
    (sequential execution), every graph optimisation on."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or cpu_count()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class OrtBackbone:
    engine = "onnx"
    device = "cpu"

    def __init__(self, path: str | Path, spec: dict, backbone_id: str, threads: int | None = None, run_batch: int = 4):
        """`spec` is a Backbone.spec() (a manifest's "backbone"); `backbone_id` the Backbone.id of
        the network the graph was exported from (the embedding cache key). The session runs at
        most `run_batch` images at a time: ONNX Runtime's arena keeps the largest run's
        activations for the session's life, and on CPU 4 images a run are as fast as 16 with a
        quarter of that memory (Lite2 at 260 px: ~100 MB against ~420 MB; bench/peak_memory.py)."""
        self.path = Path(path)
        self.run_batch = run_batch
        self.id = backbone_id
        self.name, self.weights = spec["name"], spec["weights"]
        self.preprocessing = Preprocessing.from_spec(spec)
        self.image_size = self.preprocessing.image_size
        self.mean, self.std = self.preprocessing.mean, self.preprocessing.std
        self.interpolation = self.preprocessing.interpolation
        self.num_features = int(spec["num_features"])
        self.kwargs = dict(spec.get("kwargs") or {})
        self.tta = bool(spec.get("tta", False))
        self.session = make_session(self.path, threads)
        shape = self.session.get_outputs()[0].shape
        if shape[-1] != self.num_features:
            raise ValueError(f"{self.path}: graph gives {shape[-1]} features, spec says {self.num_features}")

    def spec(self) -> dict:
        return {
            "name": self.name,
            "weights": self.weights,
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "num_features": self.num_features,
            "kwargs": self.kwargs,
            "tta": self.tta,
        }

    def forward_array(self, batch: np.ndarray) -> np.ndarray:
        """(n, 3, S, S) float32, already preprocessed -> (n, num_features) float32."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        parts = [
            self.session.run([OUTPUT], {INPUT: batch[s : s + self.run_batch]})[0]
            for s in range(0, len(batch), self.run_batch)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def embed(
        self,
        blobs: list[bytes],
        cache=None,
        batch_size: int = 64,
        progress: bool = False,
        names: list[str] | None = None,
        errors: dict | None = None,
    ) -> np.ndarray:
        """Pooled features (N, num_features), as Backbone.embed (same cache keys, same errors,
        the same flip averaging when the spec says `tta`)."""
        forward = flip_averaged(self.forward_array) if self.tta else self.forward_array
        return embed_images(
            forward,
            self.preprocessing,
            self.id,
            self.num_features,
            blobs,
            cache=cache,
            batch_size=batch_size,
            progress=progress,
            names=names,
            errors=errors,
        )
