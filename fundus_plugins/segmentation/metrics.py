"""Segmentation metrics, registered in mmseg's METRICS. Two measures, two names:

``LesionPixelMetric`` (keys ``pixel_*``): pixels pooled over the whole test split, then
precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2TP / (2TP + FP + FN) per
class; mmseg's IoUMetric underneath, so its ``mIoU`` / ``mFscore`` / ``mPrecision`` /
``mRecall`` (means over all classes, BG and RET included) are returned too.

``LesionImageMetric`` (keys ``image_*``): the paper's measure. The same three scores per
test image and class, then averaged over images. Rule for empty images, per image
and class: precision is left out of the class's mean when nothing of the class is
predicted on the image, recall when the image has no true pixel of it, F1 when it has
neither. So an image with true pixels and no prediction scores recall 0 and F1 0; one
with a prediction and no truth scores precision 0 and F1 0; one with neither (a correct
"absent") does not enter the class's means. A class left out on every image is NaN.

Both return, in percent (as mmseg does), ``<kind>_<score>/<CLASS>`` for every class and
``<kind>_mean_<score>``: the mean over the config's selected classes (OD and the
lesions), background (BG) and retina (RET) excluded.
"""
from __future__ import annotations

import warnings

from typing import Dict, Sequence

import numpy as np
import torch
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS

SCORES = ('precision', 'recall', 'f1')
NOT_SCORED = ('BG', 'RET')


def _scores(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> Dict[str, np.ndarray]:
    with np.errstate(divide='ignore', invalid='ignore'):
        return {'precision': np.where(tp + fp > 0, tp / (tp + fp), np.nan),
                'recall': np.where(tp + fn > 0, tp / (tp + fn), np.nan),
                'f1': np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)}


def _named(kind: str, per_class: Dict[str, np.ndarray], classes: Sequence[str]) -> dict:
    out = {}
    selected = [i for i, c in enumerate(classes) if c not in NOT_SCORED]
    for score, values in per_class.items():
        for i, c in enumerate(classes):
            out[f'{kind}_{score}/{c}'] = float(np.round(values[i] * 100, 2))
        chosen = values[selected]
        mean = np.nanmean(chosen) if np.isfinite(chosen).any() else np.nan
        out[f'{kind}_mean_{score}'] = float(np.round(mean * 100, 2))
    return out


def _counts(results):
    """(tp, fp, fn) arrays (N images, C) from IoUMetric's per-image results."""
    inter, _, pred, label = (torch.stack([torch.as_tensor(r[k]) for r in results]).double()
                             .numpy() for k in range(4))
    return inter, pred - inter, label - inter


@METRICS.register_module()
class LesionPixelMetric(IoUMetric):
    """mmseg's IoUMetric (mIoU and mFscore by default) plus per-class pixel-level
    precision, recall and F1 in the returned metrics."""

    def __init__(self, iou_metrics=('mIoU', 'mFscore'), **kwargs):
        super().__init__(iou_metrics=list(iou_metrics), **kwargs)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        tp, fp, fn = (a.sum(0) for a in _counts(results))
        metrics.update(_named('pixel', _scores(tp, fp, fn), self.dataset_meta['classes']))
        return metrics


@METRICS.register_module()
class LesionImageMetric(IoUMetric):
    """The paper's per-image precision, recall and F1, averaged over test images."""

    def __init__(self, **kwargs):
        super().__init__(iou_metrics=['mIoU'], **kwargs)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        tp, fp, fn = _counts(results)
        per_image = _scores(tp, fp, fn)  # (N, C) each, NaN where not defined
        with warnings.catch_warnings():  # all-NaN columns: NaN, said in the docstring
            warnings.simplefilter('ignore', RuntimeWarning)
            per_class = {k: np.nanmean(v, axis=0) for k, v in per_image.items()}
        metrics = _named('image', per_class, self.dataset_meta['classes'])
        metrics['image_count'] = int(tp.shape[0])
        return metrics
