"""How sure is a score? Intervals over seeds, paired differences, the paired bootstrap
over test images, Holm's correction and the verdicts of the synthetic-data experiment.

Every figure here is in the units it is given in (the segmentation scores: percent, so a
difference is in F1 points). Three intervals, each for what it can see:

* :func:`t_interval`: mean, sample standard deviation (n - 1) and Student's t interval
  of the runs' scores over seeds. It sees training noise (initialisation, data order,
  which synthetic pairs were drawn) on the one test split there is.
* :func:`paired_difference`: the same for the per-seed differences between two arms
  that share their seeds (``synthetic_s - real_s``); pairing removes what two runs of one
  seed have in common. Its p-value is the one-sample t-test of the differences.
* :func:`bootstrap_difference`: test images resampled with replacement, the same
  resample for both arms and every seed; the statistic is the mean over seeds of the
  differences. It sees which test images happened to be drawn, and gives a single seed
  an interval; it does not see training noise. Percentile interval.

The verdict uses both sources at once (:func:`combined_difference`): the standard error
of the mean difference is sqrt(s_d^2 / n + se_boot^2), the seed term from the paired
differences and the image term from the bootstrap, with Student's t on n - 1 degrees of
freedom (the seeds' count: the interval is never narrower than the paired one). Adding
the two counts the seed-by-image interaction twice, and the degrees of freedom are those
of the seeds alone, so the interval errs wide. With one seed the seed term is unknown and
the interval covers the test images only (a normal interval on the bootstrap's standard
error); the tables say so.
Several fractions are tested against one real-only arm, so their p-values are adjusted
together by Holm's step-down method (:func:`holm`); :func:`verdict` calls a fraction
better or worse only where its adjusted p-value is below ``1 - level``.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95
RESAMPLES = 2000

NAN = float('nan')


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def t_interval(values, level: float = LEVEL) -> Dict[str, float]:
    """n, mean, std (n - 1), and the ``level`` Student-t interval of the mean (low, high,
    half) of the finite ``values``; std and the interval are NaN below two values."""
    v = _finite(values)
    out = dict(n=int(v.size), mean=NAN, std=NAN, low=NAN, high=NAN, half=NAN)
    if v.size == 0:
        return out
    out['mean'] = float(v.mean())
    if v.size >= 2:
        std = float(v.std(ddof=1))
        half = float(stats.t.ppf((1 + level) / 2, v.size - 1) * std / math.sqrt(v.size))
        out.update(std=std, low=out['mean'] - half, high=out['mean'] + half, half=half)
    return out


def _t_p(mean: float, se: float, df: float) -> float:
    """Two-sided p-value of ``mean`` against 0 with standard error ``se``."""
    if not np.isfinite(mean) or not np.isfinite(se) or not df > 0:
        return NAN
    if se == 0:
        return 1.0 if mean == 0 else 0.0
    return float(2 * stats.t.sf(abs(mean) / se, df))


def paired_difference(a: Sequence[float], b: Sequence[float],
                      level: float = LEVEL) -> Dict[str, float]:
    """``a - b`` paired element by element (one element per seed): :func:`t_interval` of
    the differences plus ``p``, the one-sample t-test against 0 (NaN below two pairs)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f'paired_difference: {a.shape} and {b.shape} values; pair them '
                         'one to one (one per seed)')
    out = t_interval(a - b, level)
    out['p'] = _t_p(out['mean'], out['std'] / math.sqrt(out['n']), out['n'] - 1) \
        if out['n'] >= 2 else NAN
    return out


def resample_weights(num_items: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, num_items) how often each item (test image) is drawn in each bootstrap
    resample: ``num_items`` draws with replacement, seeded."""
    if num_items < 1:
        raise ValueError('resample_weights: nothing to resample (0 test images)')
    rng = np.random.default_rng(seed)
    return rng.multinomial(num_items, np.full(num_items, 1.0 / num_items), size=resamples)


def bootstrap_difference(stat_a: Sequence[Callable], stat_b: Sequence[Callable],
                         num_items: int, resamples: int = RESAMPLES, seed: int = 0,
                         level: float = LEVEL) -> Dict[str, float]:
    """The paired bootstrap over test images.

    ``stat_a[s]`` / ``stat_b[s]``: for seed s, a function of a (R, N) weight matrix
    (:func:`resample_weights`) giving the (R,) scores of that run on each resample; the
    runs must list the same N test images in the same order. Returns the observed
    difference (all weights 1), the standard error and the percentile interval of the
    seed-mean difference over ``resamples`` resamples, and ``p``, twice the smaller tail
    share of resampled differences at or beyond 0 (at least 1 / resamples).
    """
    if len(stat_a) != len(stat_b) or not stat_a:
        raise ValueError('bootstrap_difference: one score function per seed for each arm, '
                         f'got {len(stat_a)} and {len(stat_b)}')
    ones = np.ones((1, num_items))
    observed = float(np.mean([fa(ones)[0] - fb(ones)[0] for fa, fb in zip(stat_a, stat_b)]))
    w = resample_weights(num_items, resamples, seed)
    diffs = np.mean([fa(w) - fb(w) for fa, fb in zip(stat_a, stat_b)], axis=0)
    diffs = diffs[np.isfinite(diffs)]
    out = dict(mean=observed, se=NAN, low=NAN, high=NAN, half=NAN, p=NAN,
               resamples=int(diffs.size))
    if diffs.size >= 2:
        tail = (1 - level) / 2
        low, high = np.quantile(diffs, [tail, 1 - tail])
        share = min(np.mean(diffs <= 0), np.mean(diffs >= 0))
        out.update(se=float(diffs.std(ddof=1)), low=float(low), high=float(high),
                   half=float((high - low) / 2), p=float(min(1.0, max(2 * share,
                                                                       1 / diffs.size))))
    return out


def combined_difference(paired: Dict[str, float], boot: Optional[Dict[str, float]],
                        level: float = LEVEL) -> Dict[str, float]:
    """The verdict's interval: the mean paired difference with standard error
    sqrt(s_d^2 / n + se_boot^2) and n - 1 degrees of freedom (module docstring). ``paired`` from :func:`paired_difference`, ``boot`` from
    :func:`bootstrap_difference` (or None: seeds only). ``sources`` names what the
    interval covers: 'seeds + test images', 'seeds' or 'test images'."""
    n, mean = paired['n'], paired['mean']
    var_seed = paired['std'] ** 2 / n if n >= 2 else NAN
    var_boot = boot['se'] ** 2 if boot and np.isfinite(boot.get('se', NAN)) else NAN
    out = dict(n=n, mean=mean, se=NAN, df=NAN, low=NAN, high=NAN, half=NAN, p=NAN,
               sources='none')
    if np.isfinite(var_seed) and np.isfinite(var_boot):
        var, df, sources = var_seed + var_boot, n - 1, 'seeds + test images'
    elif np.isfinite(var_seed):
        var, df, sources = var_seed, n - 1, 'seeds'
    elif np.isfinite(var_boot):
        var, df, sources = var_boot, math.inf, 'test images'
    else:
        return out
    se = math.sqrt(var)
    half = float(stats.t.ppf((1 + level) / 2, df) * se)
    out.update(se=se, df=float(df), low=mean - half, high=mean + half, half=half,
               p=_t_p(mean, se, df), sources=sources)
    return out


def holm(pvalues: Sequence[float]) -> list:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN and does not
    count in the family): the i-th smallest of m is multiplied by m - i + 1, and the
    adjusted values are made non-decreasing in that order, capped at 1."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind='stable')]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


VERDICTS = ('better', 'worse', 'not distinguishable', 'no interval')


def verdict(mean: float, p_adjusted: float, level: float = LEVEL) -> str:
    """'better' / 'worse' than the reference where the (adjusted) p-value is below
    ``1 - level``, by the sign of the difference; else 'not distinguishable'; 'no
    interval' when there is no p-value (a missing arm, or one seed without test
    images to resample)."""
    if not np.isfinite(p_adjusted) or not np.isfinite(mean):
        return 'no interval'
    if p_adjusted < round(1 - level, 12):  # 1 - 0.95 is 0.05000000000000004
        return 'better' if mean > 0 else 'worse'
    return 'not distinguishable'


def fmt_interval(mean: float, low: float, high: float, signed: bool = False,
                 digits: int = 1) -> str:
    """'+2.1 [0.4, 3.8]' (``signed``) or '58.7 [55.0, 62.4]'; '-' for no mean; the mean
    alone when there is no interval."""
    if not np.isfinite(mean):
        return '-'
    m = f'{mean:+.{digits}f}' if signed else f'{mean:.{digits}f}'
    if not (np.isfinite(low) and np.isfinite(high)):
        return m
    return f'{m} [{low:.{digits}f}, {high:.{digits}f}]'
