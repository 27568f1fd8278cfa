"""How good are synthetic (image, label) pairs? Label consistency and FID / KID.

Label consistency is the SPADE paper's test: a segmentation model trained on real images
only segments the synthetic images, and its per-class scores against the label maps the
images were made from are set beside the same model's scores on the real test split
(the ceiling: what the model reaches on real images). FID / KID compare the synthetic
images with the real test images through StyleGAN's Inception (a local file, or mmagic's
cache with ``'auto'``; see :mod:`.inception_metrics`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import UserFileNotFoundError, UserValueError
from .inception_metrics import fid_kid
from .seg_scores import confusion_matrix, counts, prf


def segment_and_score(model, cfg, root, split: Optional[str], batch_size: int = 8,
                      progress: bool = True, desc: Optional[str] = None):
    """(per-class scores, class names) of ``model`` on ``root`` (``split``; None: all
    rows) through the config's test pipeline, scored at the label maps' own size: pixels
    pooled over the images, a class counted only on images whose source annotates it
    (the pixels of a class an image lacks are ignored, as in segmentation training).
    ``progress``: a bar of the images segmented, described by ``desc`` (default
    'segmenting <root's folder name>')."""
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope

    from ..apis import progress_bar
    from ..datasets import FundusDataset

    pipeline = cfg.test_dataloader.dataset.pipeline
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = FundusDataset(str(root), classes=cfg.get('lesion_classes'), split=split,
                           pipeline=pipeline, unannotated='ignore')
    if len(ds) == 0:
        raise UserValueError(f'{root}: no images in split {split!r} to segment')
    names = list(ds.metainfo['classes'])
    tp = np.zeros(len(names))
    fp, fn, support = tp.copy(), tp.copy(), tp.copy()
    bar = progress_bar(desc=desc or f'segmenting {Path(root).name}', unit='img',
                       total=len(ds), progress=progress)
    with bar, torch.no_grad():
        for start in range(0, len(ds), batch_size):
            idx = range(start, min(len(ds), start + batch_size))
            outs = model.test_step(pseudo_collate([ds[i] for i in idx]))
            for i, out in zip(idx, outs):
                pred = out.pred_sem_seg.data[0].cpu().numpy()
                truth = out.gt_sem_seg.data[0].cpu().numpy()
                codes = ds.get_data_info(i)['annotated']
                annotated = np.array([c in ('BG', 'RET') or c in codes for c in names])
                conf = confusion_matrix(truth, pred, len(names))
                for total, part in zip((tp, fp, fn), counts(conf, annotated)):
                    total += part
                support += conf.sum(1) * annotated
            bar.update(len(idx))
    scores = prf(tp, fp, fn)
    return {name: {**{k: float(v[i]) for k, v in scores.items()}, 'support': int(support[i])}
            for i, name in enumerate(names)}, names


def _images(root, split=None, progress: bool = False, desc: str = 'reading images'):
    """Yield the RGB images of ``root``'s rows (``split``; None: all) in meta.csv order,
    with a bar of the files read (``desc``) when ``progress``."""
    import cv2

    from ..apis import progress_bar
    from ..datasets.layout import image_path, read_meta
    rows = [row for row in read_meta(root) if split is None or row.split == split]
    for row in progress_bar(rows, desc=desc, unit='img', progress=progress):
        path = image_path(root, row.name)
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise UserFileNotFoundError(f'{path}: missing or unreadable image')
        yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class _CountedImages(Sequence):
    """A list of images whose iteration (the Inception feature pass of
    :func:`~.inception_metrics.fid_kid`) shows a progress bar; the bar starts with the
    iteration, so nothing is shown when FID / KID are not computed."""

    def __init__(self, images: list, desc: str, progress: bool):
        self.images, self.desc, self.progress = images, desc, progress

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index]

    def __iter__(self):
        from ..apis import progress_bar
        return iter(progress_bar(self.images, desc=self.desc, unit='img',
                                 progress=self.progress))


def measure_synthetic(seg_cfg, seg_checkpoint: str, synthetic: str, real: str,
                      inception_path: Optional[str] = None, device: str = 'cpu',
                      batch_size: int = 8, progress: bool = True) -> dict:
    """Label consistency (per class: precision, recall, F1, IoU on the synthetic images
    and on the real test split) and FID / KID against the real test images
    (``inception_path``: a local file, ``'auto'`` or a URL; without a network they are
    reported as not computed, with where to put its file).

    ``progress``: one bar after another on stderr, each over the images of one set
    ('synthetic', 'real test'): segmenting them, reading them for FID / KID and, when the
    network is there, their Inception features.
    """
    from ..apis import init_model

    model = init_model(seg_cfg, seg_checkpoint, device=device)
    result = {'label_consistency': {}}
    sets = (('synthetic', 'synthetic', synthetic, None),
            ('real_test', 'real test', real, 'test'))
    for key, label, root, split in sets:
        scores, _ = segment_and_score(model, seg_cfg, root, split, batch_size, progress,
                                      desc=f'segmenting {label}')
        result['label_consistency'][key] = scores
    images = [_CountedImages(list(_images(root, split, progress, f'reading {label}')),
                             f'Inception {label}', progress)
              for _, label, root, split in sets]
    result['image'] = fid_kid(*images, inception_path, device)
    return result


def _fmt(v):
    return '-' if v is None or (isinstance(v, float) and math.isnan(v)) else f'{v:.3f}'


def format_quality(result: dict) -> str:
    """Markdown tables of :func:`measure_synthetic`'s result."""
    syn = result['label_consistency']['synthetic']
    real = result['label_consistency']['real_test']
    lines = ['Label consistency: a segmenter trained on real images only, scored on the '
             'synthetic images against their label maps, and on the real test split.', '',
             '| class | synthetic P | synthetic R | synthetic F1 | synthetic IoU '
             '| real test F1 (ceiling) | real test IoU |',
             '|---|---|---|---|---|---|---|']
    for c in syn:
        s, r = syn[c], real[c]
        lines.append(f"| {c} | {_fmt(s['precision'])} | {_fmt(s['recall'])} | "
                     f"{_fmt(s['f1'])} | {_fmt(s['iou'])} | {_fmt(r['f1'])} | "
                     f"{_fmt(r['iou'])} |")
    img = result['image']
    lines.append('')
    if img.get('fid') is None:
        lines.append(f"FID / KID: {img['note']}.")
    else:
        lines.append(f"FID {img['fid']:.2f}, KID {img['kid'] * 1000:.2f} x 1e-3 "
                     f"({img['num_fake']} synthetic vs {img['num_real']} real test images).")
    return '\n'.join(lines) + '\n'
