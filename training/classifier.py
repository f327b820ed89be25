"""A trained classifier: a backbone (features) plus a linear head, with the sklearn-style
`predict_proba` contract over image bytes.

Torch-free itself: the backbone is either a PyTorch `Backbone` or an ONNX Runtime `OrtBackbone`
(ort.py); both have `num_features`, `id`, `image_size` and the same `embed` contract."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .head import softmax


class Features(Protocol):
    """What a Classifier reads of its backbone: `Backbone` (backbones.py), `OrtBackbone` (ort.py)
    and `PairBackbone` (pair.py) all have it."""

    num_features: int
    image_size: int

    @property
    def id(self) -> str: ...

    @property
    def device(self) -> object: ...

    def embed(
        self,
        blobs: list[bytes],
        cache=None,
        batch_size: int = 64,
        progress: bool = False,
        names: list[str] | None = None,
        errors: dict | None = None,
    ) -> np.ndarray: ...


class Classifier:
    def __init__(
        self,
        backbone: Features,
        weight: np.ndarray,
        bias: np.ndarray,
        labels: list[str],
        mode: str = "head",
        version: str | None = None,
    ):
        if weight.shape != (len(labels), backbone.num_features) or bias.shape != (len(labels),):
            raise ValueError(
                f"head shape {weight.shape}/{bias.shape} does not fit {len(labels)} labels and "
                f"{backbone.num_features} features"
            )
        self.backbone = backbone
        self.weight = np.asarray(weight, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.labels = list(labels)
        self.mode = mode
        self.version = version

    def proba_from_features(self, features: np.ndarray) -> np.ndarray:
        return softmax(features @ self.weight.T + self.bias)

    def predict_proba(
        self,
        blobs: list[bytes],
        cache=None,
        batch_size: int = 64,
        progress: bool = False,
        names: list[str] | None = None,
        errors: dict | None = None,
    ) -> np.ndarray:
        """Class probabilities (N, C), columns in `self.labels` order. With an `errors` dict, a
        bad image gives a NaN row and its message in errors[index] instead of raising."""
        feats = self.backbone.embed(
            blobs, cache=cache, batch_size=batch_size, progress=progress, names=names, errors=errors
        )
        return self.proba_from_features(feats)

    def predict(self, blobs: list[bytes], cache=None, **kwargs) -> list[tuple[str, float]]:
        proba = self.predict_proba(blobs, cache=cache, **kwargs)
        top = np.nanargmax(np.nan_to_num(proba, nan=-1.0), axis=1)
        return [(self.labels[i], float(p[i])) for i, p in zip(top, proba)]
