"""Segmentation metrics, registered in mmseg's METRICS. Three measures, three prefixes,
all in percent (as mmseg reports), all built on per-image confusion matrices
(:mod:`fundus_plugins.evaluation.seg_scores`):

``PaperLesionMetric`` (keys ``paper_*``): Son et al.'s measure, the one of their Table 1(c).
Per test image, the lesion classes are pooled (a TP needs the exact class; a pixel of one
lesion predicted as another counts nowhere); an image with neither lesion nor prediction
scores 1 / 1 / 1 and one with no TP 0 / 0 / 0; the scores are averaged over images. As in
their code a lesion counts as predicted where its softmax probability exceeds
``threshold`` (0.5; see the class for other values). ``class0_bug=True`` reproduces their
code's loss of one class: the first of the pooled classes in their code's fixed order
(RET, OD, MA, HE, EX, SE, NV, IRMA), whatever order the config lists them in: the first
lesion in that order (MA with the paper's classes), or OD where the disc is pooled with
the lesions (``separate_classes=()``); a disc reported on its own is not pooled, as their
Table 1(c) scores the lesions only (off by default; on in the "as published" config). ``score_size=512`` scores at 512 x 512 as their
code does, the labels resized nearest-neighbour (default: at the label's own size).
``paper_{score}`` is the lesion score; ``paper_{score}/<C>`` applies the same rules to
class C alone (the disc is reported that way, on its own; ``class0_bug`` leaves these
as they are).

``LesionImageMetric`` (keys ``image_*``): per test image and class, precision, recall and
F1, averaged over images per class. Empty cases are left out: precision when nothing of the
class is predicted on the image, recall when the image has none of it, F1 when neither
(a correct "absent" does not enter the class's mean); a class left out on every image is
NaN. ``image_images/<C>``: the images that entered the class's F1 mean.

``LesionPixelMetric`` (keys ``pixel_*``): pixels pooled over the whole test split, then
precision, recall, F1 and IoU per class; with mmseg's ``aAcc`` and ``mIoU`` (mean IoU over
all classes, BG and RET included, mmseg's definition). ``pixel_images/<C>``: the images
the class was scored on.

Common to all three: ``<kind>_lesion_mean_<score>`` (pixel, image) is the mean over the
lesion classes, which are the selected classes except BG, RET and ``separate_classes``
(default ``('OD',)``: the optic disc is anatomy, reported on its own); a class is scored on
an image only when the image's source annotates it (the ``annotated`` metainfo that
``FundusDataset`` sets and ``PackSegInputs(meta_keys=...)`` passes on; without it every
class counts as annotated, and a log line says so); pixels whose truth is the ignore index
(255) are left out.

``per_image_dir``: each metric also writes its per-image confusion matrices to
``<dir>/per_image_<kind>.npz`` (``confusion`` (N, C, C), ``annotated`` (N, C), ``names``,
``classes``, ``lesion``: the classes its lesion score pools or averages), from which
:func:`~fundus_plugins.evaluation.seg_scores.weighted_lesion_scores` recomputes its lesion
score on any resample of the test images (the ablation's bootstrap intervals).
"""
from __future__ import annotations

import warnings
import os
from pathlib import Path
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmseg.registry import METRICS

from ..evaluation.seg_scores import (SCORES, class0_dropped, confusion_matrix, counts,
                                     paper_image_scores, paper_rule, paper_counts, prf)

NOT_SCORED = ('BG', 'RET')


def _pct(value) -> float:
    return float(np.round(float(value) * 100, 2))


class _ConfusionMetric(BaseMetric):
    """Stores one (C, C) confusion matrix and one annotated mask (C,) per test image."""

    default_prefix: Optional[str] = ''  # keys carry their own prefix (pixel_, ...)
    kind: str = ''  # paper, image or pixel: the measure (and its per-image file's name)

    def __init__(self, ignore_index: int = 255, separate_classes: Sequence[str] = ('OD',),
                 per_image_dir: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ignore_index = ignore_index
        self.separate_classes = tuple(separate_classes)
        self.per_image_dir = per_image_dir
        self._said_no_annotated = False

    # ------------------------------------------------------------------------------------
    @property
    def classes(self) -> tuple:
        return tuple(self.dataset_meta['classes'])

    def lesion_mask(self) -> np.ndarray:
        """(C,) True for the classes pooled / averaged as lesions."""
        return np.array([c not in NOT_SCORED and c not in self.separate_classes
                         for c in self.classes])

    def scored_mask(self) -> np.ndarray:
        """(C,) True for every selected class (lesions and separate ones)."""
        return np.array([c not in NOT_SCORED for c in self.classes])

    def _annotated(self, sample: dict) -> np.ndarray:
        codes = sample.get('annotated')
        if codes is None:
            if not self._said_no_annotated:
                print_log(f'{type(self).__name__}: the data samples carry no "annotated" '
                          'metainfo (add it to PackSegInputs meta_keys); every class is '
                          'scored on every image', logger='current')
                self._said_no_annotated = True
            return np.ones(len(self.classes), bool)
        return np.array([c in NOT_SCORED or c in codes for c in self.classes])

    def _prediction(self, sample: dict) -> torch.Tensor:
        return sample['pred_sem_seg']['data'].squeeze(0)

    def _scored_pair(self, sample: dict):
        """(prediction, truth) of one sample as numpy arrays, as they are scored."""
        pred = self._prediction(sample).cpu().numpy()
        truth = sample['gt_sem_seg']['data'].squeeze(0).cpu().numpy()
        return pred, truth

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.classes)
        for sample in data_samples:
            pred, truth = self._scored_pair(sample)
            if pred.shape != truth.shape:
                raise ValueError(f'{sample.get("img_path", "a test image")}: prediction '
                                 f'{pred.shape} and truth {truth.shape} differ in size')
            self.results.append(dict(
                confusion=confusion_matrix(truth, pred, num_classes, self.ignore_index),
                annotated=self._annotated(sample),
                name=sample.get('name') or Path(sample.get('img_path', '')).stem))

    def _stack(self, results):
        conf = np.stack([r['confusion'] for r in results])
        annotated = np.stack([r['annotated'] for r in results])
        if self.per_image_dir:
            self.save_per_image(results, conf, annotated)
        return conf, annotated

    def pooled_mask(self) -> np.ndarray:
        """(C,) the classes this metric's lesion score pools or averages."""
        return self.lesion_mask()

    def save_per_image(self, results, conf, annotated) -> Path:
        """``per_image_<kind>.npz`` in ``per_image_dir`` (module docstring), written
        whole or not at all."""
        out = Path(self.per_image_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f'per_image_{self.kind}.npz'
        tmp = path.with_name(f'.{path.stem}.partial.npz')
        np.savez_compressed(tmp, confusion=conf, annotated=annotated,
                            names=np.array([r['name'] for r in results]),
                            classes=np.array(self.classes), lesion=self.pooled_mask(),
                            kind=np.array(self.kind))
        os.replace(tmp, path)
        return path


def _class_keys(kind: str, scores: Dict[str, np.ndarray], classes, selected) -> dict:
    out = {}
    for score, values in scores.items():
        for i, c in enumerate(classes):
            if selected[i]:
                out[f'{kind}_{score}/{c}'] = _pct(values[i])
    return out


def _lesion_means(kind: str, scores: Dict[str, np.ndarray], lesion: np.ndarray) -> dict:
    out = {}
    for score, values in scores.items():
        chosen = values[lesion]
        mean = np.nanmean(chosen) if np.isfinite(chosen).any() else np.nan
        out[f'{kind}_lesion_mean_{score}'] = _pct(mean)
    return out


@METRICS.register_module()
class LesionPixelMetric(_ConfusionMetric):
    """Pixel-level precision, recall, F1 and IoU per class (see the module docstring)."""

    kind = 'pixel'

    def compute_metrics(self, results: list) -> Dict[str, float]:
        conf, annotated = self._stack(results)
        tp, fp, fn = (a.sum(0) for a in counts(conf, annotated))
        scores = prf(tp, fp, fn)
        classes, scored = self.classes, self.scored_mask()
        total = conf.sum(0)
        out = {'aAcc': _pct(np.trace(total) / max(1, total.sum())),
               'mIoU': _pct(np.nanmean(prf(*counts(total))['iou']))}
        out.update(_class_keys('pixel', scores, classes, scored))
        out.update(_lesion_means('pixel', {k: v for k, v in scores.items() if k != 'iou'},
                                 self.lesion_mask()))
        for i, c in enumerate(classes):
            if scored[i]:
                out[f'pixel_images/{c}'] = int(annotated[:, i].sum())
        return out


@METRICS.register_module()
class LesionImageMetric(_ConfusionMetric):
    """Per-image, per-class precision, recall and F1, averaged over images."""

    kind = 'image'

    def compute_metrics(self, results: list) -> Dict[str, float]:
        conf, annotated = self._stack(results)
        tp, fp, fn = counts(conf)
        per_image = {k: v for k, v in prf(tp, fp, fn).items() if k != 'iou'}
        for v in per_image.values():
            v[~annotated] = np.nan  # a class is scored only where it is annotated
        with warnings.catch_warnings():  # all-NaN columns: NaN, said in the docstring
            warnings.simplefilter('ignore', RuntimeWarning)
            per_class = {k: np.nanmean(v, axis=0) for k, v in per_image.items()}
        classes, scored = self.classes, self.scored_mask()
        out = _class_keys('image', per_class, classes, scored)
        out.update(_lesion_means('image', per_class, self.lesion_mask()))
        for i, c in enumerate(classes):
            if scored[i]:
                out[f'image_images/{c}'] = int(np.isfinite(per_image['f1'][:, i]).sum())
        out['image_count'] = int(conf.shape[0])
        return out


@METRICS.register_module()
class PaperLesionMetric(_ConfusionMetric):
    """Son et al.'s per-image pooled-lesion precision, recall and F1 (module docstring).

    Args:
        threshold: a scored class is predicted at a pixel where it is the argmax of the
            softmax probabilities and its probability exceeds ``threshold``; where the
            argmax is a scored class at or below it, the most probable unscored class
            (BG or RET) is predicted instead. At 0.5 (the paper) and above, exceeding the
            threshold implies being the argmax (the probabilities sum to 1), so this is
            the paper's per-class "probability > 0.5"; below 0.5 two classes can exceed
            it at one pixel, and only the argmax counts. Needs the model's
            ``seg_logits`` in the data samples (mmseg's segmentors put them there), else
            the argmax prediction is used and a log line says so. ``None``: the argmax
            prediction.
        class0_bug: leave out of the pooled score the class the paper's code loses: the
            first of the pooled classes in its fixed order, RET, OD, MA, HE, EX, SE, NV,
            IRMA (:func:`~fundus_plugins.evaluation.seg_scores.class0_dropped`; the
            config's class order does not matter; OD only where it is pooled). Off by
            default.
        score_size: score at ``score_size`` x ``score_size`` pixels, as the paper's code
            does at 512: the truth is resized nearest-neighbour, the logits bilinearly
            (then thresholded), or the prediction nearest-neighbour without logits.
            ``None`` (default): at the size of the label.
    """

    kind = 'paper'

    def __init__(self, threshold: Optional[float] = 0.5, class0_bug: bool = False,
                 score_size: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        if threshold is not None and not 0 <= threshold < 1:
            raise ValueError(f'PaperLesionMetric.threshold must be in [0, 1) or None, got '
                             f'{threshold}')
        if score_size is not None and (int(score_size) != score_size or score_size < 1):
            raise ValueError(f'PaperLesionMetric.score_size must be a whole number >= 1 or '
                             f'None, got {score_size!r}')
        self.threshold = threshold
        self.class0_bug = bool(class0_bug)
        self.score_size = None if score_size is None else int(score_size)
        self._said_no_logits = False

    def _scored_pair(self, sample: dict):
        if self.score_size is None:
            return super()._scored_pair(sample)
        size = (self.score_size, self.score_size)
        truth = sample['gt_sem_seg']['data'].squeeze(0).cpu().numpy()
        truth = cv2.resize(truth.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        logits = sample.get('seg_logits')
        if self.threshold is not None and logits is not None:
            resized = F.interpolate(logits['data'][None].float(), size=size, mode='bilinear',
                                    align_corners=False)[0]
            pred = paper_prediction(resized, self.threshold, self.scored_mask())
            return pred.cpu().numpy(), truth
        pred = self._prediction(sample).cpu().numpy()
        return cv2.resize(pred.astype(np.uint8), size,
                          interpolation=cv2.INTER_NEAREST), truth

    def _prediction(self, sample: dict) -> torch.Tensor:
        pred = sample['pred_sem_seg']['data'].squeeze(0)
        if self.threshold is None:
            return pred
        logits = sample.get('seg_logits')
        if logits is None:
            if not self._said_no_logits:
                print_log('PaperLesionMetric: no seg_logits in the data samples; the '
                          'argmax prediction is scored without the 0.5 threshold',
                          logger='current')
                self._said_no_logits = True
            return pred
        return paper_prediction(logits['data'], self.threshold, self.scored_mask())

    def dropped_class(self) -> Optional[str]:
        """The class ``class0_bug`` loses (the first pooled one in the paper's order), or
        None without the bug."""
        if not self.class0_bug:
            return None
        i = class0_dropped(self.classes, self.lesion_mask())
        return None if i is None else self.classes[i]

    def pooled_mask(self) -> np.ndarray:
        """The lesion classes pooled, less the one ``class0_bug`` loses."""
        lesion = self.lesion_mask()
        dropped = self.dropped_class()
        if dropped is not None:
            lesion[self.classes.index(dropped)] = False
        return lesion

    def compute_metrics(self, results: list) -> Dict[str, float]:
        conf, annotated = self._stack(results)
        per_image = paper_image_scores(conf, self.pooled_mask(), annotated)
        out = {f'paper_{s}': _pct(per_image[:, k].mean()) for k, s in enumerate(SCORES)}
        out['paper_images'] = int(len(conf))
        for i, c in enumerate(self.classes):
            if not self.scored_mask()[i]:
                continue
            only = np.zeros(len(self.classes), bool)
            only[i] = True
            rows = np.flatnonzero(annotated[:, i])
            scores = np.array([paper_rule(*paper_counts(conf[j], only)) for j in rows]
                              ).reshape(-1, 3)
            for k, s in enumerate(SCORES):
                out[f'paper_{s}/{c}'] = _pct(scores[:, k].mean()) if len(rows) else np.nan
            out[f'paper_images/{c}'] = int(len(rows))
        out['paper_class0_bug'] = int(self.class0_bug)
        if self.score_size is not None:
            out['paper_score_size'] = self.score_size
        return out


def paper_prediction(logits: torch.Tensor, threshold: float,
                     selected: np.ndarray) -> torch.Tensor:
    """(H, W) prediction from (C, H, W) logits as the paper thresholds it: a selected class
    where its softmax probability exceeds ``threshold``, else the best of the others
    (``BG`` / ``RET``, neither of which is scored)."""
    prob = logits.float().softmax(0)
    best = prob.argmax(0)
    sel = torch.as_tensor(selected, device=prob.device)
    keep = prob.max(0).values > threshold
    unselected = prob.clone()
    unselected[sel] = -1
    return torch.where(sel[best] & ~keep, unselected.argmax(0), best)
