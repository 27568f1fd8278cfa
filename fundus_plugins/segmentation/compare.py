"""Each synthetic fraction against the real-only runs: differences with their intervals,
Holm-adjusted verdicts, and the tables and sentences that show them.

The ablation's runs (``WORK/p{fraction}_s{seed}/``) each leave ``metrics.json`` and, for
each of the three measures, ``per_image_<kind>.npz`` (the test images' confusion
matrices, see :mod:`.metrics`). For every fraction p > 0 and measure, this module pairs
the runs of p with the real-only runs (fraction 0) seed by seed and computes, in F1
points (:mod:`fundus_plugins.evaluation.intervals` says what each interval covers):

* ``paired``: the per-seed differences' mean and t interval (two seeds or more);
* ``bootstrap``: the paired bootstrap over test images of the seed-mean difference;
* ``combined``: the verdict's interval, both sources together;
* ``p_holm`` and ``verdict``: the combined p-value adjusted over the fractions of one
  measure (Holm), and better / worse / not distinguishable at 95 %.
"""
from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import UserValueError
from ..evaluation.intervals import (LEVEL, RESAMPLES, bootstrap_difference,
                                    combined_difference, fmt_interval, holm,
                                    paired_difference, verdict)
from ..evaluation.seg_scores import weighted_lesion_scores

KINDS = ('paper', 'image', 'pixel')


def per_image_file(run_dir, kind: str) -> Path:
    return Path(run_dir) / f'per_image_{kind}.npz'


@dataclass
class PerImage:
    """One run's per-image confusion matrices for one measure (:mod:`.metrics`)."""

    kind: str
    confusion: np.ndarray   # (N, C, C)
    annotated: np.ndarray   # (N, C)
    names: list
    lesion: np.ndarray      # (C,)
    path: Path

    @classmethod
    def load(cls, path) -> 'PerImage':
        path = Path(path)
        try:
            with np.load(path) as z:
                return cls(str(z['kind']), z['confusion'], z['annotated'].astype(bool),
                           [str(n) for n in z['names']], z['lesion'].astype(bool), path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise UserValueError(f'{path}: not a readable per-image score file ({exc}); '
                                 'delete the run folder to train that run again') from None

    def aligned(self, names: Sequence[str]) -> 'PerImage':
        """The same run with its images in the order of ``names`` (the same test images;
        anything else is an error naming both files' counts)."""
        if list(names) == self.names:
            return self
        index = {n: i for i, n in enumerate(self.names)}
        if len(index) != len(self.names) or set(index) != set(names):
            raise UserValueError(f'{self.path}: its {len(self.names)} test images are not the '
                                 f'{len(names)} of the runs it is compared with; every run must '
                                 'be tested on the same split')
        order = [index[n] for n in names]
        return PerImage(self.kind, self.confusion[order], self.annotated[order],
                        list(names), self.lesion, self.path)

    def f1(self, weights: np.ndarray) -> np.ndarray:
        """(R,) lesion F1 in percent under each row of image weights."""
        return 100 * weighted_lesion_scores(self.kind, self.confusion, self.annotated,
                                            self.lesion, weights)['f1']


def load_per_image(run_dir, kind: str) -> Optional[PerImage]:
    path = per_image_file(run_dir, kind)
    return PerImage.load(path) if path.is_file() else None


def score_key(kind: str, score: str) -> str:
    """The metrics key of a kind's lesion score (see :mod:`.ablation`'s KIND_TITLES)."""
    return f'paper_{score}' if kind == 'paper' else f'{kind}_lesion_mean_{score}'


def _value(result: dict, kind: str) -> float:
    v = result.get(score_key(kind, 'f1'))
    return float(v) if v is not None else math.nan


def compare_to_real(results: Sequence[dict], run_dir: Callable[[float, int], Path],
                    resamples: int = RESAMPLES, seed: int = 0, level: float = LEVEL,
                    kinds: Sequence[str] = KINDS) -> List[dict]:
    """One row per (fraction > 0, measure): the fraction's F1 against the real-only runs,
    paired by seed (module docstring). ``results``: the runs' metrics (with ``fraction``
    and ``seed``); ``run_dir(fraction, seed)``: the folder of that run. Rows are in
    fraction order within each measure; a fraction without real-only runs of its seeds
    gets no row; ``seed`` seeds the bootstrap."""
    by = {(float(r['fraction']), int(r['seed'])): r for r in results}
    real_seeds = sorted(s for f, s in by if f == 0)
    fractions = sorted({f for f, _ in by if f > 0})
    rows = []
    for kind in kinds:
        family = []
        for fraction in fractions:
            seeds = [s for s in real_seeds if (fraction, s) in by]
            if not seeds:
                continue
            syn = [_value(by[fraction, s], kind) for s in seeds]
            real = [_value(by[0.0, s], kind) for s in seeds]
            paired = paired_difference(syn, real, level)
            boot, images = None, None
            files_a = [load_per_image(run_dir(fraction, s), kind) for s in seeds]
            files_b = [load_per_image(run_dir(0.0, s), kind) for s in seeds]
            if all(files_a) and all(files_b):
                names = files_b[0].names
                files_a = [f.aligned(names) for f in files_a]
                files_b = [f.aligned(names) for f in files_b]
                images = len(names)
                boot = bootstrap_difference([f.f1 for f in files_a], [f.f1 for f in files_b],
                                            images, resamples, seed, level)
            family.append(dict(fraction=fraction, kind=kind, seeds=seeds, test_images=images,
                               synthetic_mean=float(np.nanmean(syn)),
                               real_mean=float(np.nanmean(real)), paired=paired,
                               bootstrap=boot, combined=combined_difference(paired, boot,
                                                                           level)))
        for row, p in zip(family, holm([r['combined']['p'] for r in family])):
            row['p_holm'] = p
            row['verdict'] = verdict(row['combined']['mean'], p, level)
        rows += family
    return rows


def _num(v, digits=1):
    return '-' if v is None or not np.isfinite(v) else f'{v:.{digits}f}'


def _p(v):
    if v is None or not np.isfinite(v):
        return '-'
    return '< 0.001' if v < 0.001 else f'{v:.3f}'


def verdict_sentence(row: dict) -> str:
    """'25 % synthetic: +2.1 points [0.4, 3.8], better than real only (Holm-adjusted
    p 0.012; interval over seeds + test images)'."""
    c = row['combined']
    head = f"{row['fraction'] * 100:.0f} % synthetic: "
    if not np.isfinite(c['mean']):
        return head + 'no score'
    text = {'better': 'better than real only', 'worse': 'worse than real only',
            'not distinguishable': 'not distinguishable from real only at 95 %',
            'no interval': 'no interval (one seed and no per-image scores)'}[row['verdict']]
    over = c['sources']
    if over == 'test images':
        # One seed: the interval is blind to training noise, which can be far larger
        # (two demo seeds on the phantom differed by 26 points in one fraction).
        over += ' only: one seed, so training noise is not in it'
    tail = '' if row['verdict'] == 'no interval' else \
        f" (Holm-adjusted p {_p(row['p_holm'])}; interval over {over})"
    return f"{head}{fmt_interval(c['mean'], c['low'], c['high'], signed=True)} points, " \
           f'{text}{tail}'


def comparison_table(rows: Sequence[dict], kind: str) -> str:
    """Markdown: per fraction, the difference to real only under each interval, the
    Holm-adjusted p-value and the verdict, for one measure."""
    lines = ['| synthetic fraction | seeds | test images | F1 real only -> with synthetic '
             '| difference, paired by seed [95 % t] | difference, bootstrap over test images '
             '[95 %] | difference, both [95 %] | p (Holm) | verdict |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        if r['kind'] != kind:
            continue
        pr, b, c = r['paired'], r['bootstrap'] or {}, r['combined']
        lines.append(
            f"| {r['fraction'] * 100:.0f} % | {len(r['seeds'])} | {r['test_images'] or '-'} "
            f"| {_num(r['real_mean'])} -> {_num(r['synthetic_mean'])} "
            f"| {fmt_interval(pr['mean'], pr['low'], pr['high'], signed=True)} "
            f"| {fmt_interval(b.get('mean', math.nan), b.get('low', math.nan), b.get('high', math.nan), signed=True)} "  # noqa: E501
            f"| {fmt_interval(c['mean'], c['low'], c['high'], signed=True)} "
            f"| {_p(r['p_holm'])} | {r['verdict']} |")
    return '\n'.join(lines) + '\n'


def half_widths(rows: Sequence[dict], kind: str = 'pixel') -> Dict[float, float]:
    """The combined interval's half-width per fraction, for one measure (F1 points)."""
    return {r['fraction']: r['combined']['half'] for r in rows if r['kind'] == kind}


def write_comparison(rows: Sequence[dict], path) -> None:
    Path(path).write_text(json.dumps(list(rows), indent=2, default=float) + '\n')
