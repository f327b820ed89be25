"""Backbones read as one: features = [first's features | second's features | ...].

A head over two pretrained backbones (params `second_model`) reads these features directly.
An ensemble version (params `ensemble_head`, see ensemble.py) is a fine-tuned network and a
head over pretrained ones whose logits add up: the geometric mean of the two models'
probabilities is softmax(a * z1 + (1 - a) * z2), one linear layer over the concatenated features.
So a pair is served by the ordinary Classifier: predict_proba, the backend's embedding cache (each
network keeps its own cache key) and `proba_from_features` work unchanged.

Torch-free: the parts are either PyTorch `Backbone`s or ONNX Runtime `OrtBackbone`s.
"""

from __future__ import annotations

import numpy as np


class PairBackbone:
    """Backbones read side by side; nested pairs are flattened (an ensemble whose head reads two
    backbones is one PairBackbone of three parts)."""

    def __init__(self, *parts):
        flat = tuple(q for p in parts for q in getattr(p, "parts", (p,)))
        if len(flat) < 2:
            raise ValueError("a PairBackbone needs at least two backbones")
        self.parts = flat
        first = flat[0]
        self.engine = first.engine
        self.name, self.weights = first.name, first.weights
        self.image_size = first.image_size
        self.tta = first.tta
        self.num_features = sum(p.num_features for p in flat)

    @property
    def id(self) -> str:
        return "|".join(p.id for p in self.parts)

    @property
    def device(self):
        return self.parts[0].device

    def embed(
        self,
        blobs: list[bytes],
        cache=None,
        batch_size: int = 64,
        progress: bool = False,
        names: list[str] | None = None,
        errors: dict | None = None,
        report=None,
    ) -> np.ndarray:
        """(N, sum of the parts' num_features); a bad image is a NaN row (with `errors`) or raises,
        as with one backbone. `report`: progress of PyTorch parts (Backbone.embed)."""
        more = {} if report is None else {"report": report}
        return np.concatenate(
            [
                p.embed(
                    blobs, cache=cache, batch_size=batch_size, progress=progress, names=names, errors=errors, **more
                )
                for p in self.parts
            ],
            axis=1,
        )
