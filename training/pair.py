"""Two backbones read as one: features = [first's features | second's features].

A head over two pretrained backbones (params `second_model`) reads these features directly.
An ensemble version (params `ensemble_head`, see ensemble.py) is a fine-tuned network and a
pretrained one whose linear heads add their logits: the geometric mean of the two models'
probabilities is softmax(a * z1 + (1 - a) * z2), one linear layer over the concatenated features.
So a pair is served by the ordinary Classifier: predict_proba, the backend's embedding cache (each
network keeps its own cache key) and `proba_from_features` work unchanged.

Torch-free: the parts are either PyTorch `Backbone`s or ONNX Runtime `OrtBackbone`s.
"""
from __future__ import annotations

import numpy as np


class PairBackbone:
    def __init__(self, first, second):
        self.first, self.second = first, second
        self.engine = first.engine
        self.name, self.weights = first.name, first.weights
        self.image_size = first.image_size
        self.tta = first.tta
        self.num_features = first.num_features + second.num_features

    @property
    def id(self) -> str:
        return f"{self.first.id}|{self.second.id}"

    @property
    def device(self):
        return self.first.device

    @property
    def parts(self) -> tuple:
        return self.first, self.second

    def embed(self, blobs: list[bytes], cache=None, batch_size: int = 64, progress: bool = False,
              names: list[str] | None = None, errors: dict | None = None, report=None) -> np.ndarray:
        """(N, first.num_features + second.num_features); a bad image is a NaN row (with `errors`)
        or raises, as with one backbone. `report`: progress of PyTorch parts (Backbone.embed)."""
        more = {} if report is None else {"report": report}
        a = self.first.embed(blobs, cache=cache, batch_size=batch_size, progress=progress, names=names,
                             errors=errors, **more)
        b = self.second.embed(blobs, cache=cache, batch_size=batch_size, progress=progress, names=names,
                              errors=errors, **more)
        return np.concatenate([a, b], axis=1)
