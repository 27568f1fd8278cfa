"""Pixel-level segmentation scores from a confusion matrix.

``confusion[t, p]`` counts pixels of true class t predicted as p. For class c:
precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R),
IoU = TP / (TP + FP + FN); a class with neither truth nor prediction gets NaN (no
evidence either way), so it does not enter the means.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_classes: int,
                     ignore_index: int = 255) -> np.ndarray:
    truth = np.asarray(truth).ravel().astype(np.int64)
    pred = np.asarray(pred).ravel().astype(np.int64)
    if truth.shape != pred.shape:
        raise ValueError(f'truth and prediction sizes differ: {truth.shape} vs {pred.shape}')
    keep = truth != ignore_index
    idx = truth[keep] * num_classes + pred[keep]
    return np.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def scores_from_confusion(confusion: np.ndarray, names: Sequence[str]) -> Dict[str, Dict]:
    """{class name: {precision, recall, f1, iou, support}} for every class."""
    tp = np.diag(confusion).astype(np.float64)
    fp = confusion.sum(0) - tp
    fn = confusion.sum(1) - tp
    out = {}
    with np.errstate(divide='ignore', invalid='ignore'):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
    for i, name in enumerate(names):
        out[name] = {'precision': float(precision[i]), 'recall': float(recall[i]),
                     'f1': float(f1[i]), 'iou': float(iou[i]),
                     'support': int(confusion[i].sum())}
    return out
