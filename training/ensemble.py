"""An ensemble of a fine-tuned network and a linear head (params `ensemble_head`).

After fine-tuning, the same labelled photos are embedded by the default head backbone (pretrained
EfficientNet-Lite2 at 260 px, the embeddings head mode caches) and by pretrained Lite1 at 240 px
(the `balanced` preset's second network, so its cached embeddings serve both),
and a head is fitted on both networks' features side by side. The two models' probabilities are
combined by their geometric mean, with one temperature on top:

    p = softmax((0.5 * z_ft + 0.5 * z_head / t_head) / T)

z_ft: the fine-tuned network's (already temperature-scaled) logits; z_head: the head's logits,
t_head its own temperature. That is one linear layer over the three networks' concatenated features
(pair.PairBackbone), so the version is served like any other. The head is first fitted on the
fine-tune's training split, so that t_head and T are chosen on the validation split it never saw;
then it is refitted on every labelled photo (the temperatures are kept).
bench/HISTORY.md ("Ensemble of the fine-tuned network and the default head" and the two sections
after it) has the measurements behind each choice; bench/RESULTS.md ("`accurate`: ...") has today's.
"""

from __future__ import annotations

import numpy as np

from .classifier import Classifier
from .head import fit_linear, fit_temperature, softmax
from .pair import PairBackbone
from .params import TrainParams

WEIGHT = 0.5  # of the fine-tuned network (chosen weights on the validation split did no better)
# the head reads Lite1's features beside the default head's: the head alone 94.1 % on all labels against
# 93.5 % with Lite0 beside Lite2; beside one fine-tune 95.03 % against 94.85 % (bench/HISTORY.md,
# "The ensemble's head on Lite2 and Lite0 side by side")
HEAD_SECOND_MODEL = "efficientnet_lite1"
T_BOUNDS = (0.1, 10.0)


def head_params(params: TrainParams) -> TrainParams:
    """The ensemble head's backbones: the default head's (model, native size, no flip) and
    HEAD_SECOND_MODEL side by side, with this training's C and seed."""
    return TrainParams(head_c=params.head_c, seed=params.seed, second_model=HEAD_SECOND_MODEL)


def fit_ensemble(
    tuned: Classifier,
    partner,
    blobs: list[bytes],
    y: np.ndarray,
    val_idx: np.ndarray,
    val_proba: np.ndarray,
    params: TrainParams,
    cache=None,
    progress: bool = False,
    names: list[str] | None = None,
    report=None,
) -> tuple[Classifier, np.ndarray, dict]:
    """Combine the fine-tuned classifier `tuned` (calibrated) with a head on `partner`'s features
    of the same `blobs` (labels `y`; `val_idx`/`val_proba`: the fine-tune's validation rows and its
    calibrated probabilities there). Returns the ensemble classifier, its calibrated validation
    probabilities and what was chosen (temperatures)."""
    report = report or (lambda **fields: None)
    n_classes = len(tuned.labels)
    report(phase="embedding for the ensemble head", step=0, steps=len(blobs))
    X = partner.embed(
        blobs,
        cache=cache,
        progress=progress,
        names=names,
        report=lambda **f: report(phase="embedding for the ensemble head", **f),
    )
    train = np.setdiff1d(np.arange(len(y)), val_idx)
    report(phase="fitting the ensemble head")
    W, b = fit_linear(X[train], y[train], n_classes, params.head_c, params.seed)
    z_head = X[val_idx] @ W.T + b
    t_head = fit_temperature(z_head, y[val_idx])
    z_ft = np.log(np.clip(val_proba, 1e-38, 1.0))
    mixed = WEIGHT * z_ft + (1 - WEIGHT) * z_head / t_head
    t = fit_temperature(mixed, y[val_idx], bounds=T_BOUNDS)
    W, b = fit_linear(X, y, n_classes, params.head_c, params.seed)  # every label, temperatures kept
    weight = np.concatenate([WEIGHT * tuned.weight, (1 - WEIGHT) * W / t_head], axis=1) / t
    bias = (WEIGHT * tuned.bias + (1 - WEIGHT) * b / t_head) / t
    clf = Classifier(PairBackbone(tuned.backbone, partner), weight, bias, tuned.labels, mode=tuned.mode)
    info = {"weight": WEIGHT, "head_temperature": t_head, "temperature": t, "head_backbone": partner.id}
    return clf, softmax(mixed / t), info
