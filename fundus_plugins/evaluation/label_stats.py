"""Measuring label maps: are generated maps like real ones, grade by grade?

Given generated maps with the grades they were asked for, and real maps (train and test
split of a prepared root), all at one size:

* grade accuracy: a grade classifier trained on the real train maps predicts the grade
  of each generated map; its accuracy on the real test maps is the ceiling;
* optic discs per map: the fraction of maps with exactly one OD component, strictly
  (any OD pixel group counts) and counting only disc-sized groups (at least a tenth
  of the median real disc: specks of a few pixels are label noise, several discs
  are the paper's failure);
* lesion load: per class, the distributions of pixel fraction (of the field of view)
  and of connected-component count, generated vs real, and their Wasserstein-1
  distance;
* diversity: the mean pairwise distance (fraction of pixels whose class differs)
  between maps of one grade, generated vs real; mode collapse shows as a low ratio;
* background inside the field of view: the share of maps with ``BG`` pixels inside the
  convex hull of their non-``BG`` pixels (shrunk by 2 px for the rasterised edge):
  holes in the field of view and ragged rims, which the translator paints as black
  holes in the photograph. Real fields of view (circles, maybe cut flat by the frame)
  are convex: the target is 0.

The grade classifier works on lesion-load features (per class: log pixel fraction and
log component count), standardised, with a one-hidden-layer MLP trained full-batch: it is
deterministic, quick on a CPU and says which lesion loads go with which grade, which is
what the label generator must learn.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
from scipy.stats import wasserstein_distance

from ..classes import ClassSet
from ..datasets.layout import label_path, read_classes, read_meta
from ..errors import UserValueError

GRADES = (0, 1, 2, 3, 4)


def component_count(mask: np.ndarray) -> int:
    """Number of 8-connected components of a boolean mask."""
    if not mask.any():
        return 0
    n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return n - 1


def map_features(label: np.ndarray, classes: ClassSet) -> Dict[str, np.ndarray]:
    """Pixel fraction (of the field of view) and component count of each non-base class."""
    counts = np.bincount(label.ravel(), minlength=len(classes))
    fov = max(1, int(counts[1:].sum()))
    frac, comps = [], []
    for i in range(2, len(classes)):
        frac.append(counts[i] / fov)
        comps.append(component_count(label == i) if counts[i] else 0)
    return {'pixel_fraction': np.array(frac, np.float64),
            'components': np.array(comps, np.float64)}


@dataclass
class MapSet:
    """Label maps (N, H, W) uint8 with their grades (N,) and per-map features."""

    maps: np.ndarray
    grades: np.ndarray
    pixel_fraction: np.ndarray   # (N, K) K = non-base classes
    components: np.ndarray       # (N, K)

    @classmethod
    def build(cls, maps: Sequence[np.ndarray], grades: Sequence[int],
              classes: ClassSet) -> 'MapSet':
        maps = np.stack([np.asarray(m, np.uint8) for m in maps]) if len(maps) else \
            np.zeros((0, 1, 1), np.uint8)
        feats = [map_features(m, classes) for m in maps]
        k = len(classes) - 2
        pf = np.stack([f['pixel_fraction'] for f in feats]) if feats else np.zeros((0, k))
        cc = np.stack([f['components'] for f in feats]) if feats else np.zeros((0, k))
        return cls(maps, np.asarray(grades, np.int64), pf, cc)

    def __len__(self):
        return len(self.grades)

    def subset(self, mask: np.ndarray) -> 'MapSet':
        return MapSet(self.maps[mask], self.grades[mask], self.pixel_fraction[mask],
                      self.components[mask])

    def features(self) -> np.ndarray:
        return np.concatenate([np.log10(self.pixel_fraction + 1e-4),
                               np.log1p(self.components)], axis=1)


class GradeClassifier:
    """Lesion-load features -> DR grade (see the module docstring).

    Features are clipped to the range the training maps span (``clip``), then
    standardised with the training mean and standard deviation, the latter raised to at
    least ``min_std``. A feature constant in training (the optic-disc load when the
    graded images come from a source without disc masks, FGADR; a lesion class no
    training map has) would otherwise be divided by ~0 at prediction, and a map that has
    it would get an input of ~1e6 that decides its grade alone. With the floor the
    standardised values stay bounded; with the clip a feature constant in training is
    held at its training value, so it leaves predictions exactly as they are without it.
    The features are log10 pixel fractions and log(1 + component count): the default
    floor 0.1 is a change of about a quarter in pixel fraction, or a seventh of the step
    from no component to one, below what the features resolve.
    """

    def __init__(self, hidden: int = 32, epochs: int = 400, lr: float = 0.02,
                 weight_decay: float = 1e-3, seed: int = 0, min_std: float = 0.1,
                 clip: bool = True):
        if not min_std > 0:
            raise ValueError(f'GradeClassifier: min_std must be > 0, got {min_std}')
        self.hidden, self.epochs, self.lr = hidden, epochs, lr
        self.weight_decay, self.seed = weight_decay, seed
        self.min_std, self.clip = min_std, clip
        self.net = None

    def fit(self, data: MapSet) -> 'GradeClassifier':
        if len(data) == 0:
            raise ValueError('GradeClassifier: no training maps')
        x = data.features()
        self.low, self.high = x.min(0), x.max(0)
        self.mean = x.mean(0)
        self.std = np.maximum(x.std(0), self.min_std)
        xt = torch.tensor(self._standardise(x), dtype=torch.float32)
        yt = torch.tensor(data.grades)
        g = torch.Generator().manual_seed(self.seed)
        net = nn.Sequential(nn.Linear(x.shape[1], self.hidden), nn.ReLU(),
                            nn.Linear(self.hidden, len(GRADES)))
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(xt), yt)
            loss.backward()
            opt.step()
        self.net = net.eval()
        return self

    def scores(self, data: MapSet) -> np.ndarray:
        """(N, 5) grade logits of the maps of ``data``."""
        if self.net is None:
            raise RuntimeError('GradeClassifier.scores before fit')
        if len(data) == 0:
            return np.zeros((0, len(GRADES)), np.float32)
        x = torch.tensor(self._standardise(data.features()), dtype=torch.float32)
        with torch.no_grad():
            return self.net(x).numpy()

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        """Features clipped to the training range (``clip``), then standardised."""
        if self.clip:
            x = np.clip(x, self.low, self.high)
        return (x - self.mean) / self.std

    def predict(self, data: MapSet) -> np.ndarray:
        """The most likely grade of each map of ``data``."""
        if self.net is None:
            raise RuntimeError('GradeClassifier.predict before fit')
        if len(data) == 0:
            return np.zeros(0, np.int64)
        return self.scores(data).argmax(1)


def _accuracy(pred, truth, grades=GRADES) -> Dict[str, float]:
    out = {'all': float(np.mean(pred == truth)) if len(truth) else float('nan')}
    for g in grades:
        sel = truth == g
        out[str(g)] = float(np.mean(pred[sel] == g)) if sel.any() else float('nan')
    return out


def component_areas(mask: np.ndarray) -> np.ndarray:
    """Pixel areas of the 8-connected components of a boolean mask."""
    if not mask.any():
        return np.zeros(0, np.int64)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return stats[1:, cv2.CC_STAT_AREA]


def od_one_fraction(data: MapSet, od_index: Optional[int], min_area: int = 1) -> float:
    """Fraction of maps with exactly one optic-disc component of at least ``min_area``
    pixels (NaN without OD). ``min_area=1`` counts every OD pixel group."""
    if od_index is None or len(data) == 0:
        return float('nan')
    return float(np.mean([(component_areas(m == od_index) >= min_area).sum() == 1
                          for m in data.maps]))


def disc_min_area(real: MapSet, od_index: Optional[int], fraction: float = 0.1) -> int:
    """``fraction`` of the median area of the largest OD component of real maps."""
    if od_index is None:
        return 1
    largest = [a.max() for a in (component_areas(m == od_index) for m in real.maps) if a.size]
    return max(1, int(round(fraction * float(np.median(largest))))) if largest else 1


def background_inside_fov(label: np.ndarray, margin: int = 2) -> int:
    """``BG`` (index 0) pixels of a map inside the convex hull of its other pixels,
    shrunk by ``margin`` pixels."""
    fov = (label != 0).astype(np.uint8)
    points = cv2.findNonZero(fov)
    if points is None:
        return 0
    hull = np.zeros_like(fov)
    cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
    if margin > 0:
        hull = cv2.erode(hull, np.ones((3, 3), np.uint8), iterations=margin,
                         borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return int(((hull > 0) & (fov == 0)).sum())


def bg_inside_fov_share(data: MapSet) -> float:
    """Share of maps with background inside their field of view (NaN for no maps)."""
    if len(data) == 0:
        return float('nan')
    return float(np.mean([background_inside_fov(m) > 0 for m in data.maps]))


def mean_pairwise_distance(maps: np.ndarray, max_maps: int = 64, seed: int = 0) -> float:
    """Mean fraction of differing pixels over pairs of maps (at most ``max_maps``)."""
    if len(maps) < 2:
        return float('nan')
    rng = np.random.default_rng(seed)
    if len(maps) > max_maps:
        maps = maps[rng.choice(len(maps), max_maps, replace=False)]
    flat = maps.reshape(len(maps), -1)
    d = [np.mean(flat[i] != flat[j]) for i in range(len(flat)) for j in range(i + 1, len(flat))]
    return float(np.mean(d))


def compare(generated: MapSet, real_train: MapSet, real_test: MapSet,
            classes: ClassSet, seed: int = 0) -> dict:
    """Every measure of the module docstring, per grade and overall, as a nested dict."""
    if generated.maps.shape[1:] != real_train.maps.shape[1:]:
        raise UserValueError(f'generated maps are {generated.maps.shape[1:]} but real maps are '
                             f'{real_train.maps.shape[1:]}; resize them to one size first')
    clf = GradeClassifier(seed=seed).fit(real_train)
    od = classes.index('OD') if 'OD' in classes.codes else None
    real_all = MapSet(np.concatenate([real_train.maps, real_test.maps]),
                      np.concatenate([real_train.grades, real_test.grades]),
                      np.concatenate([real_train.pixel_fraction, real_test.pixel_fraction]),
                      np.concatenate([real_train.components, real_test.components]))
    res = {
        'size': list(generated.maps.shape[1:]),
        'num_generated': len(generated), 'num_real_train': len(real_train),
        'num_real_test': len(real_test),
        'grade_accuracy': {
            'generated': _accuracy(clf.predict(generated), generated.grades),
            'real_test_ceiling': _accuracy(clf.predict(real_test), real_test.grades),
            'chance': 1.0 / len(GRADES)},
        'od_one': {'generated': {}, 'real': {}},
        'od_one_disc': {'generated': {}, 'real': {}},
        'lesion_load': {},
        'diversity': {'generated': {}, 'real': {}},
        'bg_in_fov': {'generated': {}, 'real': {}},
    }
    min_disc = disc_min_area(real_all, od)
    res['od_disc_min_area'] = min_disc
    groups = [('all', None)] + [(str(g), g) for g in GRADES]
    for key, g in groups:
        gen = generated if g is None else generated.subset(generated.grades == g)
        real = real_all if g is None else real_all.subset(real_all.grades == g)
        res['od_one']['generated'][key] = od_one_fraction(gen, od)
        res['od_one']['real'][key] = od_one_fraction(real, od)
        res['od_one_disc']['generated'][key] = od_one_fraction(gen, od, min_disc)
        res['od_one_disc']['real'][key] = od_one_fraction(real, od, min_disc)
        res['diversity']['generated'][key] = mean_pairwise_distance(gen.maps, seed=seed)
        res['diversity']['real'][key] = mean_pairwise_distance(real.maps, seed=seed)
        res['bg_in_fov']['generated'][key] = bg_inside_fov_share(gen)
        res['bg_in_fov']['real'][key] = bg_inside_fov_share(real)
        for k, code in enumerate(classes.codes[2:]):
            entry = res['lesion_load'].setdefault(code, {})
            for feat in ('pixel_fraction', 'components'):
                gv, rv = getattr(gen, feat)[:, k], getattr(real, feat)[:, k]
                entry.setdefault(feat, {})[key] = {
                    'generated_mean': float(gv.mean()) if len(gv) else float('nan'),
                    'real_mean': float(rv.mean()) if len(rv) else float('nan'),
                    'w1': float(wasserstein_distance(gv, rv)) if len(gv) and len(rv)
                    else float('nan')}
    return res


def summary_scalars(res: dict) -> Dict[str, float]:
    """Flat scalars for logs: grade accuracy, its ceiling, OD-one, diversity ratio, W1s."""
    out = {
        'grade_acc': res['grade_accuracy']['generated']['all'],
        'grade_acc_ceiling': res['grade_accuracy']['real_test_ceiling']['all'],
        'od_one': res['od_one']['generated']['all'],
        'od_one_real': res['od_one']['real']['all'],
        'od_one_disc': res['od_one_disc']['generated']['all'],
        'bg_in_fov': res['bg_in_fov']['generated']['all'],
    }
    ratios = [res['diversity']['generated'][str(g)] / res['diversity']['real'][str(g)]
              for g in GRADES
              if res['diversity']['real'][str(g)] == res['diversity']['real'][str(g)]
              and res['diversity']['real'][str(g)] > 0]
    out['diversity_ratio'] = float(np.nanmean(ratios)) if ratios else float('nan')
    for code, entry in res['lesion_load'].items():
        out[f'w1_frac_{code}'] = entry['pixel_fraction']['all']['w1']
        out[f'w1_comp_{code}'] = entry['components']['all']['w1']
    return out


def _f(v, pct=False):
    if v != v:
        return '-'
    return f'{100 * v:.1f}' if pct else f'{v:.3g}'


def format_report(res: dict) -> str:
    """Markdown tables of :func:`compare`'s result."""
    keys = ['all'] + [str(g) for g in GRADES]
    head = '| | ' + ' | '.join(['all'] + [f'grade {g}' for g in GRADES]) + ' |\n' + \
        '|---' * (len(keys) + 1) + '|'
    ga = res['grade_accuracy']
    lines = [f"Maps compared at {res['size'][0]} x {res['size'][1]}: "
             f"{res['num_generated']} generated, {res['num_real_train']} real train "
             f"(classifier), {res['num_real_test']} real test.", '',
             '**Grade accuracy** (%; chance 20)', '', head,
             '| generated | ' + ' | '.join(_f(ga['generated'][k], True) for k in keys) + ' |',
             '| real test (ceiling) | ' + ' | '.join(
                 _f(ga['real_test_ceiling'][k], True) for k in keys) + ' |', '',
             '**Maps with exactly one optic disc** (%): strictly (one OD pixel group), '
             f"and counting only disc-sized groups (at least {res['od_disc_min_area']} px, "
             'a tenth of the median real disc)', '', head]
    for who in ('generated', 'real'):
        lines.append(f'| {who}, strict | ' + ' | '.join(_f(res['od_one'][who][k], True)
                                                         for k in keys) + ' |')
    for who in ('generated', 'real'):
        lines.append(f'| {who}, disc-sized | ' + ' | '.join(
            _f(res['od_one_disc'][who][k], True) for k in keys) + ' |')
    lines += ['', '**Maps with background inside the field of view** (%; holes and ragged '
              'rims, painted as black holes; target 0)', '', head]
    for who in ('generated', 'real'):
        lines.append(f'| {who} | ' + ' | '.join(_f(res['bg_in_fov'][who][k], True)
                                               for k in keys) + ' |')
    lines += ['', '**Diversity**: mean pairwise fraction of differing pixels', '', head]
    for who in ('generated', 'real'):
        lines.append(f'| {who} | ' + ' | '.join(_f(res['diversity'][who][k]) for k in keys)
                     + ' |')
    lines += ['', '**Lesion load**, all grades: mean generated / mean real (W1)', '',
              '| class | pixel % of FOV | components per map |', '|---|---|---|']
    for code, e in res['lesion_load'].items():
        pf, cc = e['pixel_fraction']['all'], e['components']['all']
        lines.append(f"| {code} | {_f(pf['generated_mean'], True)} / "
                     f"{_f(pf['real_mean'], True)} ({_f(100 * pf['w1'])}) | "
                     f"{_f(cc['generated_mean'])} / {_f(cc['real_mean'])} ({_f(cc['w1'])}) |")
    lines += ['', '**Lesion pixels per grade** (% of FOV, all lesion classes): generated / real',
              '', '| | ' + ' | '.join(f'grade {g}' for g in GRADES) + ' |',
              '|---' * (len(GRADES) + 1) + '|']
    gen_load = []
    for g in GRADES:
        gsum = sum(e['pixel_fraction'][str(g)]['generated_mean']
                   for c, e in res['lesion_load'].items() if c != 'OD')
        rsum = sum(e['pixel_fraction'][str(g)]['real_mean']
                   for c, e in res['lesion_load'].items() if c != 'OD')
        gen_load.append(f'{_f(gsum, True)} / {_f(rsum, True)}')
    lines.append('| lesion load | ' + ' | '.join(gen_load) + ' |')
    return '\n'.join(lines) + '\n'


def load_maps(root, classes: ClassSet, size: int, split: Optional[str] = None,
              grades_required: bool = True) -> MapSet:
    """Label maps of a prepared (or label-only) root, remapped to ``classes`` and resized
    to ``size`` by nearest neighbour; ungraded rows are skipped when grades are required."""

    stored = read_classes(root)
    missing = [c for c in classes.lesion_codes if c not in stored.codes]
    if missing:
        raise UserValueError(f'{root}/classes.json lacks {missing} (has {list(stored.codes)})')
    lut = classes.remap_from(stored)
    maps, grades = [], []
    for row in read_meta(root):
        if split is not None and row.split != split:
            continue
        if row.grade is None and grades_required:
            continue
        path = label_path(root, row.name)
        lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if lab is None or lab.ndim != 2:
            raise UserValueError(f'{path}: missing or not a single-channel label map')
        lab = lut[lab]
        if lab.shape != (size, size):
            lab = cv2.resize(lab, (size, size), interpolation=cv2.INTER_NEAREST)
        maps.append(lab)
        grades.append(-1 if row.grade is None else row.grade)
    if not maps:
        raise UserValueError(f'{root}: no graded label maps' + (f' in split {split!r}' if split else ''))
    return MapSet.build(maps, grades, classes)
