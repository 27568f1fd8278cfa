"""Segmentation scores from confusion matrices: the one place precision, recall and F1
are computed, for the mmseg metrics (:mod:`fundus_plugins.segmentation.metrics`) and the
label-consistency measure.

``confusion[t, p]`` counts pixels of true class t predicted as p (pixels whose truth is
the ignore index are left out). For class c, TP = confusion[c, c], FP = column sum - TP,
FN = row sum - TP; precision = TP / (TP + FP), recall = TP / (TP + FN),
F1 = 2TP / (2TP + FP + FN), IoU = TP / (TP + FP + FN); a score whose denominator is 0 is
NaN (no evidence either way), so it does not enter means.

Per-image counts can be masked by ``annotated`` (N images x C classes): a class an image's
source does not annotate contributes nothing on that image (its TP, FP and FN are 0).

:func:`paper_image_scores` is Son et al.'s measure (``test_unet.py`` and
``src/metrics/dice.py`` of semantic-retina-generation), exactly: per image, the lesion
classes are pooled; a pixel is a TP when prediction and truth are the same lesion class,
an FP when the truth is no lesion and the prediction a lesion, an FN when the truth is a
lesion and the prediction none; a pixel whose truth and prediction are different lesion
classes counts nowhere. An image with no TP, FP and FN scores precision = recall = F1 = 1;
one with no TP (and some FP or FN) scores 0, 0, 0; otherwise the usual ratios. The paper
averages these over the test images. Its code also loses one class: after the background
channel is dropped, ``argmax`` gives index 0 both to "no lesion" and to the first of its
scored classes, so that class's pixels count as no lesion in truth and prediction
(``class0_bug``). Its channels come in a fixed order, ``PAPER_ORDER`` (retina, OD, MA, HE,
EX, SE, NV, IRMA), and it scores the classes it is given (by default the lesions, no
disc), so the class lost is the first of the pooled classes in that order, whatever
order a config lists them in: OD when the disc is pooled with the lesions, else the
first lesion (MA where it is pooled). A disc reported on its own is not among them: the
paper's Table 1(c) scores the lesions only. :func:`class0_dropped` finds it.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

SCORES = ('precision', 'recall', 'f1')
#: The order of the classes (output channels) in Son et al.'s code, retina first.
PAPER_ORDER = ('RET', 'OD', 'MA', 'HE', 'EX', 'SE', 'NV', 'IRMA')
#: Classes that are never scored (background, retina).
UNSCORED = ('BG', 'RET')


def class0_dropped(classes: Sequence[str], scored: Optional[np.ndarray] = None
                   ) -> Optional[int]:
    """The index (in ``classes``) of the class Son et al.'s code loses (``class0_bug``):
    the first of the scored classes in ``PAPER_ORDER``; classes outside that order come
    after it, in their own order. ``scored`` (C,) bool: the classes its score pools
    (default: all but BG and RET). None when nothing is scored."""
    if scored is None:
        scored = np.array([c not in UNSCORED for c in classes])
    scored_idx = [i for i, c in enumerate(classes) if scored[i]]
    if not scored_idx:
        return None

    def rank(i):
        code = classes[i]
        return (PAPER_ORDER.index(code), i) if code in PAPER_ORDER else (len(PAPER_ORDER), i)
    return min(scored_idx, key=rank)


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_classes: int,
                     ignore_index: int = 255) -> np.ndarray:
    """(C, C) int64 counts of (truth, prediction) pixels; ignored truth left out."""
    truth = np.asarray(truth).ravel().astype(np.int64)
    pred = np.asarray(pred).ravel().astype(np.int64)
    if truth.shape != pred.shape:
        raise ValueError(f'truth and prediction sizes differ: {truth.shape} vs {pred.shape}')
    keep = truth != ignore_index
    truth, pred = truth[keep], pred[keep]
    if truth.size and (truth.max() >= num_classes or pred.max() >= num_classes
                       or min(truth.min(), pred.min()) < 0):
        raise ValueError(f'class index outside 0..{num_classes - 1} (truth max '
                         f'{truth.max()}, prediction max {pred.max()})')
    idx = truth * num_classes + pred
    return np.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def counts(confusion: np.ndarray, annotated: Optional[np.ndarray] = None):
    """(TP, FP, FN) per class from one (C, C) or N (N, C, C) confusion matrices, each of
    shape (..., C); classes an image does not annotate (``annotated`` False) get 0."""
    conf = np.asarray(confusion, dtype=np.float64)
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    fp = conf.sum(-2) - tp
    fn = conf.sum(-1) - tp
    if annotated is not None:
        mask = np.asarray(annotated, dtype=bool)
        tp, fp, fn = tp * mask, fp * mask, fn * mask
    return tp, fp, fn


def prf(tp, fp, fn) -> Dict[str, np.ndarray]:
    """Precision, recall, F1 and IoU (NaN where undefined) of count arrays."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    with np.errstate(divide='ignore', invalid='ignore'):
        return {'precision': np.where(tp + fp > 0, tp / (tp + fp), np.nan),
                'recall': np.where(tp + fn > 0, tp / (tp + fn), np.nan),
                'f1': np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan),
                'iou': np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)}


def scores_from_confusion(confusion: np.ndarray, names: Sequence[str]) -> Dict[str, Dict]:
    """{class name: {precision, recall, f1, iou, support}} for every class."""
    tp, fp, fn = counts(confusion)
    scores = prf(tp, fp, fn)
    return {name: {**{k: float(v[i]) for k, v in scores.items()},
                   'support': int(np.asarray(confusion)[i].sum())}
            for i, name in enumerate(names)}


def paper_counts(confusion: np.ndarray, lesion: np.ndarray):
    """Pooled (TP, FP, FN) of one image's (C, C) confusion for the lesion classes marked
    in ``lesion`` (C,) bool, counted as Son et al. do (see the module docstring)."""
    conf = np.asarray(confusion, dtype=np.float64)
    lesion = np.asarray(lesion, dtype=bool)
    tp = float(np.trace(conf * np.outer(lesion, lesion)))
    fp = float(conf[~lesion][:, lesion].sum())
    fn = float(conf[lesion][:, ~lesion].sum())
    return tp, fp, fn


def paper_rule(tp: float, fp: float, fn: float):
    """Son et al.'s per-image (precision, recall, F1) with its empty-image rules."""
    if tp == 0 and fp == 0 and fn == 0:
        return 1.0, 1.0, 1.0
    if tp == 0:
        return 0.0, 0.0, 0.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return precision, recall, 2 * precision * recall / (precision + recall)


def paper_image_scores(confusions: np.ndarray, lesion: np.ndarray,
                       annotated: Optional[np.ndarray] = None,
                       class0_bug: bool = False,
                       classes: Optional[Sequence[str]] = None) -> np.ndarray:
    """(N, 3) per-image (precision, recall, F1) of Son et al.'s measure.

    ``confusions`` (N, C, C); ``lesion`` (C,) the pooled classes; ``annotated`` (N, C):
    a class is pooled on an image only where its source annotates it (elsewhere its
    predictions count as no lesion); ``class0_bug`` leaves out of the pool the class the
    paper's code loses (:func:`class0_dropped` of ``classes``, the C class codes, which it
    then needs, among the pooled ones).
    """
    confusions = np.asarray(confusions)
    lesion = np.asarray(lesion, dtype=bool).copy()
    if class0_bug:
        if classes is None or len(classes) != len(lesion):
            raise ValueError('paper_image_scores: class0_bug needs the class codes '
                             '(classes), one per column of lesion')
        dropped = class0_dropped(classes, lesion)
        if dropped is not None:
            lesion[dropped] = False
    out = np.empty((len(confusions), 3))
    for i, conf in enumerate(confusions):
        pooled = lesion if annotated is None else lesion & np.asarray(annotated[i], bool)
        out[i] = paper_rule(*paper_counts(conf, pooled))
    return out


def weighted_lesion_scores(kind: str, confusions: np.ndarray, annotated: np.ndarray,
                           lesion: np.ndarray, weights: np.ndarray) -> Dict[str, np.ndarray]:
    """A test split's lesion precision, recall and F1 (fractions, not percent) under
    image weights: each row of ``weights`` (R, N) says how often each of the N test images
    counts (a bootstrap resample; a row of ones is the split as it is). Returns
    {score: (R,)}.

    ``kind`` is one of the three measures of :mod:`fundus_plugins.segmentation.metrics`,
    computed as they compute it from the per-image ``confusions`` (N, C, C) and
    ``annotated`` (N, C): ``'paper'`` pools the classes of ``lesion`` (C,) per image
    (:func:`paper_image_scores`) and averages the images; ``'image'`` averages each class's
    per-image scores over the images where they are defined, then the ``lesion`` classes;
    ``'pixel'`` pools each class's counts over the images, then averages the ``lesion``
    classes. A score with no defined value is NaN.
    """
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    conf = np.asarray(confusions)
    annotated = np.asarray(annotated, dtype=bool)
    lesion = np.asarray(lesion, dtype=bool)
    if w.shape[1] != len(conf):
        raise ValueError(f'weights for {w.shape[1]} images, confusions of {len(conf)}')
    if kind == 'paper':
        per_image = paper_image_scores(conf, lesion, annotated)
        total = w.sum(1)
        return {s: (w @ per_image[:, k]) / total for k, s in enumerate(SCORES)}
    with np.errstate(divide='ignore', invalid='ignore'):
        if kind == 'pixel':
            tp, fp, fn = (w @ a for a in counts(conf, annotated))
            per_class = prf(tp, fp, fn)
        elif kind == 'image':
            per_class = {}
            for s, v in prf(*counts(conf)).items():
                v = np.where(annotated, v, np.nan)
                ok = np.isfinite(v)
                den = w @ ok
                per_class[s] = np.where(den > 0, (w @ np.where(ok, v, 0.0)) / den, np.nan)
        else:
            raise ValueError(f"kind must be 'paper', 'image' or 'pixel', got {kind!r}")
        out = {}
        for s in SCORES:
            chosen = per_class[s][:, lesion]
            some = np.isfinite(chosen).any(1)
            out[s] = np.where(some, np.nansum(chosen, 1) / np.maximum(
                1, np.isfinite(chosen).sum(1)), np.nan)
        return out
