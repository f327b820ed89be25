"""The finetune mode of `training.train.fit`: decode the labeled images, fine-tune the whole network
(training/finetune.py), fit its temperature on the validation split, add an ensemble head when
asked for (training/ensemble.py), and estimate its accuracy on the validation split."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .classifier import Classifier
from .ensemble import fit_ensemble, head_params
from .finetune import Finetuned, finetune
from .fitjob import Estimate, FitJob, Kept, Trained, backbone_for
from .head import TooFewLabels, fit_temperature, softmax
from .metrics import evaluate
from .tuneimages import prepare_images

if TYPE_CHECKING:
    import torch

MIN_CALIBRATION = 20  # validation photos needed to fit a fine-tuned network's temperature
FINETUNE_T_BOUNDS = (0.1, 10.0)


@dataclass(frozen=True)
class Calibrated:
    """A fine-tuned head divided by its temperature, and the validation split's probabilities by it."""

    W: np.ndarray
    b: np.ndarray
    val_proba: np.ndarray
    temperature: float = 1.0


def fit_finetune(job: FitJob, backbone, errors: dict, partner_backbone=None) -> Trained:
    """Fine-tune `backbone` on the job's images (bad ones go to `errors`); `partner_backbone`: a
    loaded default head backbone to reuse for `ensemble_head`."""
    kept = decoded(job, backbone, errors)
    tuned = finetune(
        backbone,
        kept.inputs,
        kept.y,
        len(job.label_names),
        job.params,
        job.progress,
        probe_features(job, backbone, kept.index),
        report=job.report,
    )
    calibrated = calibrate(tuned, kept.y)
    classifier = Classifier(tuned.backbone, calibrated.W, calibrated.b, job.label_names, mode="finetune")
    val_proba, ensemble = calibrated.val_proba, None
    if job.params.ensemble_head and len(tuned.val_idx) >= MIN_CALIBRATION:
        partner = backbone_for(head_params(job.params), partner_backbone)
        blobs, names = job.rows(kept.index)
        classifier, val_proba, ensemble = fit_ensemble(
            classifier,
            partner,
            blobs,
            kept.y,
            tuned.val_idx,
            val_proba,
            job.params,
            cache=job.cache,
            progress=job.progress,
            names=names,
            report=job.report,
        )
    estimate = validation_estimate(job, kept, tuned.val_idx, val_proba, calibrated.temperature, ensemble)
    return Trained(
        classifier, kept.index, estimate, val_index=[int(i) for i in kept.index[tuned.val_idx]], val_proba=val_proba
    )


def decoded(job: FitJob, backbone, errors: dict) -> Kept[torch.Tensor]:
    """The labeled images decoded once, at the network's size (training.finetune.prepare_images)."""
    images, good = prepare_images(backbone, job.blobs, job.names, backbone.image_size, errors)
    keep = np.array(good, dtype=int)
    y = job.y[keep]
    if len(np.unique(y)) < 2:
        raise TooFewLabels("need annotated examples of at least 2 labels to train")
    return Kept(keep, y, images)


def probe_features(job: FitJob, backbone, keep: np.ndarray) -> np.ndarray | None:
    """The pretrained network's embeddings of the kept images, for the linear probe that starts
    fine-tuning (usually from the cache); None for a network without pretrained weights."""
    if backbone.weights == "random":
        return None
    plain = backbone
    if backbone.tta:  # the probe only starts training: one view per photo is enough
        plain = copy.copy(backbone)
        plain.tta = False
    blobs, names = job.rows(keep)
    return plain.embed(blobs, cache=job.cache, progress=job.progress, names=names)


def calibrate(tuned: Finetuned, y: np.ndarray) -> Calibrated:
    """Temperature scaling on the validation split (with >= MIN_CALIBRATION photos): label smoothing
    and early stopping leave a fine-tuned network's scores off (ECE 0.07-0.1 measured);
    log-probabilities are its logits up to a per-row constant, which softmax ignores."""
    if len(tuned.val_idx) < MIN_CALIBRATION:
        return Calibrated(tuned.W, tuned.b, tuned.val_proba)
    val_logits = np.log(np.clip(tuned.val_proba, 1e-38, 1.0))
    temperature = fit_temperature(val_logits, y[tuned.val_idx], bounds=FINETUNE_T_BOUNDS)
    return Calibrated(tuned.W / temperature, tuned.b / temperature, softmax(val_logits / temperature), temperature)


def validation_estimate(
    job: FitJob,
    kept: Kept[torch.Tensor],
    val_idx: np.ndarray,
    val_proba: np.ndarray,
    temperature: float,
    ensemble: dict | None,
) -> Estimate:
    """Metrics on the validation split, or why there are none (or why they are rough)."""
    params = job.params
    metrics, source, note = {}, "none", ""
    if len(val_idx):
        source, metrics = "validation split", evaluate(kept.y[val_idx], val_proba, job.label_names)
        metrics["temperature"] = temperature
        if ensemble:
            metrics["ensemble"] = ensemble
        if len(val_idx) < 10:
            note = f"validation split of only {len(val_idx)} image(s): a rough estimate"
    else:
        note = (
            f"too few labels ({len(kept.index)}) for a validation split of {params.val_fraction:g}; "
            "mode 'head' estimates accuracy from the first labels"
        )
    if params.ensemble_head and ensemble is None:
        note = "; ".join(
            filter(None, [note, f"no ensemble head: its calibration needs >= {MIN_CALIBRATION} validation photos"])
        )
    return Estimate(metrics, source, note)
