"""Interval arithmetic, the paired bootstrap, Holm and the verdicts
(fundus_plugins/evaluation/intervals.py), against hand-worked values."""
import math

import numpy as np
import pytest

from fundus_plugins.evaluation.intervals import (bootstrap_difference, combined_difference,
                                                 fmt_interval, holm, paired_difference,
                                                 resample_weights, t_interval, verdict)


def test_t_interval_by_hand():
    # mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776445: half = 2.776445 * sqrt(2.5 / 5)
    ci = t_interval([1, 2, 3, 4, 5])
    assert ci['n'] == 5 and ci['mean'] == 3
    assert ci['std'] == pytest.approx(math.sqrt(2.5))
    assert ci['half'] == pytest.approx(2.776445 * math.sqrt(0.5), abs=1e-5)
    assert (ci['low'], ci['high']) == pytest.approx((3 - 1.963243, 3 + 1.963243), abs=1e-5)
    # NaN is left out; one value has a mean and no interval; none has nothing.
    assert t_interval([4.0, float('nan'), 6.0])['n'] == 2
    one = t_interval([7.0])
    assert one['mean'] == 7 and math.isnan(one['std']) and math.isnan(one['low'])
    assert math.isnan(t_interval([])['mean'])


def test_paired_difference_by_hand():
    # d = (2, 3, 2): mean 7/3, s = sqrt(1/3), se = 1/3, t = 7 on 2 df. With 2 df the
    # t CDF is 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - 7 / sqrt(51).
    d = paired_difference([3, 5, 4], [1, 2, 2])
    assert d['mean'] == pytest.approx(7 / 3)
    assert d['std'] == pytest.approx(math.sqrt(1 / 3))
    assert d['p'] == pytest.approx(1 - 7 / math.sqrt(51), rel=1e-9)
    assert d['half'] == pytest.approx(4.302653 / 3, abs=1e-5)  # t(0.975, 2) x se
    assert math.isnan(paired_difference([3.0], [1.0])['p'])
    with pytest.raises(ValueError, match='one per seed'):
        paired_difference([1, 2], [1, 2, 3])


def test_combined_difference_adds_seeds_and_test_images():
    paired = paired_difference([3, 5, 4], [1, 2, 2])  # s_d^2 / n = (1/3) / 3 = 1/9
    both = combined_difference(paired, {'se': 0.3})
    var = 1 / 9 + 0.09
    assert both['se'] == pytest.approx(math.sqrt(var))
    assert both['df'] == 2  # the seeds' n - 1
    assert both['half'] == pytest.approx(4.302653 * math.sqrt(var), abs=1e-5)
    assert both['sources'] == 'seeds + test images'
    assert both['low'] < paired['low'] and both['high'] > paired['high']  # wider
    # One seed: the bootstrap alone, a normal interval (df infinite).
    one = combined_difference(paired_difference([2.0], [1.0]), {'se': 0.5})
    assert one['sources'] == 'test images' and one['mean'] == 1.0
    assert one['half'] == pytest.approx(1.959964 * 0.5, abs=1e-6)
    # Seeds without per-image scores: the paired t interval itself.
    seeds = combined_difference(paired, None)
    assert seeds['sources'] == 'seeds' and seeds['half'] == pytest.approx(paired['half'])
    assert seeds['p'] == pytest.approx(paired['p'])
    none = combined_difference(paired_difference([2.0], [1.0]), None)
    assert none['sources'] == 'none' and math.isnan(none['p'])


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04: x3 = 0.03, x2 = 0.06, x1 = 0.04 -> kept at 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adj = holm([0.01, float('nan'), 0.04])  # NaN is not in the family: m = 2
    assert adj[0] == pytest.approx(0.02) and math.isnan(adj[1]) and adj[2] == pytest.approx(0.04)
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []


def test_verdict_rules():
    assert verdict(2.1, 0.012) == 'better'
    assert verdict(-2.1, 0.012) == 'worse'
    assert verdict(2.1, 0.05) == 'not distinguishable'  # not below 1 - 0.95
    assert verdict(0.3, 0.4) == 'not distinguishable'
    assert verdict(2.1, float('nan')) == 'no interval'
    assert verdict(float('nan'), 0.01) == 'no interval'
    assert verdict(2.1, 0.08, level=0.9) == 'better'


def _mean_stat(values):
    values = np.asarray(values, float)
    return lambda w: (w @ values) / w.sum(1)


def test_paired_bootstrap_at_a_fixed_seed():
    rng = np.random.default_rng(3)
    a = [rng.uniform(40, 80, 60) for _ in range(2)]  # two seeds, 60 test images
    b = [x - rng.normal(2, 3, 60) for x in a]
    res = bootstrap_difference([_mean_stat(x) for x in a], [_mean_stat(x) for x in b], 60,
                               resamples=500, seed=7)
    assert res == bootstrap_difference([_mean_stat(x) for x in a], [_mean_stat(x) for x in b],
                                       60, resamples=500, seed=7)
    # The same resamples for both arms and both seeds: recomputed by hand.
    w = resample_weights(60, 500, 7)
    assert w.shape == (500, 60) and (w.sum(1) == 60).all()
    diffs = np.mean([(w @ x) / 60 - (w @ y) / 60 for x, y in zip(a, b)], axis=0)
    assert res['mean'] == pytest.approx(np.mean([x.mean() - y.mean() for x, y in zip(a, b)]))
    assert (res['low'], res['high']) == pytest.approx(tuple(np.quantile(diffs, [.025, .975])))
    assert res['se'] == pytest.approx(diffs.std(ddof=1))
    assert res['low'] < res['mean'] < res['high']
    other = bootstrap_difference([_mean_stat(x) for x in a], [_mean_stat(x) for x in b], 60,
                                 resamples=500, seed=8)
    assert other['low'] != res['low']


def test_bootstrap_of_a_constant_difference_and_of_identical_arms():
    x = np.linspace(0, 100, 30)
    shifted = bootstrap_difference([_mean_stat(x + 1.5)], [_mean_stat(x)], 30, 200, 0)
    assert shifted['mean'] == pytest.approx(1.5)
    assert (shifted['low'], shifted['high']) == pytest.approx((1.5, 1.5))
    assert shifted['p'] == pytest.approx(1 / 200)  # every resample above 0
    same = bootstrap_difference([_mean_stat(x)], [_mean_stat(x)], 30, 200, 0)
    assert same['mean'] == 0 and same['half'] == 0 and same['p'] == 1.0
    with pytest.raises(ValueError, match='one score function per seed'):
        bootstrap_difference([_mean_stat(x)], [], 30)


def test_fmt_interval():
    assert fmt_interval(2.14, 0.44, 3.82, signed=True) == '+2.1 [0.4, 3.8]'
    assert fmt_interval(58.71, 55.0, 62.4) == '58.7 [55.0, 62.4]'
    assert fmt_interval(58.7, float('nan'), float('nan')) == '58.7'
    assert fmt_interval(float('nan'), 1, 2) == '-'
