"""One check shared by the tests of versions over several backbones: the same version served by
ONNX Runtime and by PyTorch, a bad image included."""

import numpy as np

from training.cache import EmbeddingCache
from training.pair import PairBackbone
from training.serving import load_classifier


def both_engines(store, vid: str, blobs: list[bytes], cache_root) -> list[np.ndarray]:
    """[ONNX Runtime's, PyTorch's] probabilities of `blobs` + one non-image (its row is NaN and
    dropped), each engine from a cold cache of its own."""
    out = []
    for engine in ("onnx", "torch"):
        clf = load_classifier(store, vid=vid, engine=engine)
        assert isinstance(clf.backbone, PairBackbone) and clf.backbone.engine == engine
        errors = {}
        proba = clf.predict_proba(blobs + [b"not an image"], errors=errors, cache=EmbeddingCache(cache_root / engine))
        assert list(errors) == [len(blobs)] and np.isnan(proba[-1]).all()
        out.append(proba[:-1])
    return out
