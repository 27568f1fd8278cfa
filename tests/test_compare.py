"""Per-image scores of the three measures (the bootstrap's input) and each synthetic
fraction's comparison with real only (fundus_plugins/segmentation/compare.py)."""
import json
import math

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from fundus_plugins.evaluation.seg_scores import weighted_lesion_scores
from fundus_plugins.segmentation import LesionImageMetric, LesionPixelMetric, PaperLesionMetric
from fundus_plugins.segmentation.ablation import format_results, results_rows, summarize
from fundus_plugins.segmentation.compare import (PerImage, compare_to_real, load_per_image,
                                                 verdict_sentence)

CLASSES = ('BG', 'RET', 'OD', 'MA', 'HE', 'EX')


def _samples(n, seed, skill=0.8):
    """n random 12 x 12 label maps and predictions that agree with them on a share
    ``skill`` of the pixels; every other image's source does not annotate OD."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        truth = rng.choice(6, size=(12, 12), p=[.1, .6, .05, .05, .1, .1])
        pred = np.where(rng.random((12, 12)) < skill, truth, rng.integers(0, 6, (12, 12)))
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.as_tensor(truth)[None])
        s.pred_sem_seg = PixelData(data=torch.as_tensor(pred)[None])
        s.set_metainfo(dict(annotated=('MA', 'HE', 'EX') if i % 2 else
                            ('OD', 'MA', 'HE', 'EX'), name=f'img{i:03d}'))
        out.append(s.to_dict())
    return out


def _score(metric, samples, folder):
    metric.per_image_dir = str(folder)
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


@pytest.mark.parametrize('metric, key', [
    (lambda: LesionPixelMetric(), 'pixel_lesion_mean'),
    (lambda: LesionImageMetric(), 'image_lesion_mean'),
    (lambda: PaperLesionMetric(threshold=None), 'paper'),
    (lambda: PaperLesionMetric(threshold=None, class0_bug=True), 'paper')])
def test_per_image_files_give_back_what_the_metric_reported(tmp_path, metric, key):
    m = metric()
    out = _score(m, _samples(9, 0), tmp_path)
    per = load_per_image(tmp_path, m.kind)
    assert per.kind == m.kind and len(per.names) == 9 and per.names[0] == 'img000'
    ones = np.ones((1, 9))
    scores = weighted_lesion_scores(per.kind, per.confusion, per.annotated, per.lesion, ones)
    for score in ('precision', 'recall', 'f1'):
        assert 100 * scores[score][0] == pytest.approx(out[f'{key}_{score}'], abs=0.006)
    # A resample that draws image 0 twice and leaves out image 1 is image 0 counted twice.
    w = np.ones((1, 9))
    w[0, 0], w[0, 1] = 2, 0
    twice = PerImage(per.kind, per.confusion[[0, 0, 2, 3, 4, 5, 6, 7, 8]],
                     per.annotated[[0, 0, 2, 3, 4, 5, 6, 7, 8]], per.names, per.lesion,
                     per.path)
    assert per.f1(w)[0] == pytest.approx(twice.f1(ones)[0])


def test_a_damaged_or_mismatched_per_image_file_is_named(tmp_path):
    bad = tmp_path / 'per_image_pixel.npz'
    bad.write_bytes(b'not a zip')
    with pytest.raises(ValueError, match='per_image_pixel.npz: not a readable'):
        load_per_image(tmp_path, 'pixel')
    _score(LesionPixelMetric(), _samples(4, 0), tmp_path)
    per = load_per_image(tmp_path, 'pixel')
    assert per.aligned(list(reversed(per.names))).names[0] == 'img003'
    with pytest.raises(ValueError, match='same split'):
        per.aligned(['img000', 'img001', 'img002', 'other'])


def _fake_ablation(tmp_path, skills):
    """Runs p{f}_s{seed} scored by real metrics on one test split of 40 images, with
    predictions as good as ``skills[fraction][seed]``."""
    results = []
    for fraction, by_seed in skills.items():
        for seed, skill in enumerate(by_seed):
            run = tmp_path / f'p{int(fraction * 100):02d}_s{seed}'
            samples = _samples(40, 100 + seed, skill)  # same truths for every fraction
            metrics = {}
            for m in (PaperLesionMetric(threshold=None), LesionImageMetric(),
                      LesionPixelMetric()):
                metrics.update(_score(m, samples, run))
            metrics.update(fraction=fraction, seed=seed, num_real=40,
                           num_synthetic=int(40 * fraction / (1 - fraction)), epochs=2)
            results.append(metrics)
    return results


def test_compare_to_real_pairs_by_seed_and_resamples_the_same_images(tmp_path):
    # Real only 0.60 / 0.62 / 0.61; 25 % a lot better; 50 % the same predictions.
    results = _fake_ablation(tmp_path, {0.0: [.6, .62, .61], .25: [.9, .92, .91],
                                        .5: [.6, .62, .61]})
    rows = compare_to_real(results, lambda f, s: tmp_path / f'p{int(f * 100):02d}_s{s}',
                           resamples=300, seed=0)
    assert [(r['kind'], r['fraction']) for r in rows] == [
        (k, f) for k in ('paper', 'image', 'pixel') for f in (0.25, 0.5)]
    better = next(r for r in rows if r['kind'] == 'pixel' and r['fraction'] == 0.25)
    same = next(r for r in rows if r['kind'] == 'pixel' and r['fraction'] == 0.5)
    key = 'pixel_lesion_mean_f1'
    real = [r[key] for r in results if r['fraction'] == 0]
    syn = [r[key] for r in results if r['fraction'] == 0.25]
    assert better['paired']['mean'] == pytest.approx(np.mean(syn) - np.mean(real))
    assert better['seeds'] == [0, 1, 2] and better['test_images'] == 40
    assert better['combined']['sources'] == 'seeds + test images'
    assert better['combined']['low'] > 0 and better['verdict'] == 'better'
    assert better['bootstrap']['mean'] == pytest.approx(better['paired']['mean'], abs=0.01)
    # Identical runs: every difference is 0 and the verdict cannot call it.
    assert same['paired']['mean'] == 0 and same['bootstrap']['half'] == 0
    assert same['verdict'] == 'not distinguishable'
    # Holm over the two fractions of a measure.
    assert better['p_holm'] >= better['combined']['p']
    assert verdict_sentence(better).startswith('25 % synthetic: +')
    assert 'better than real only (Holm-adjusted p' in verdict_sentence(better)
    # results.csv rows: the runs, then a summary row per fraction with the intervals.
    summary = summarize(results)
    assert summary[0]['pixel_f1_low'] < summary[0]['pixel_f1_mean'] < summary[0]['pixel_f1_high']
    csv_rows = results_rows(results, summary, rows)
    assert [r['row'] for r in csv_rows] == ['run'] * 9 + ['summary'] * 3
    top = csv_rows[-2]
    assert top['seed'] == 'all' and top['fraction'] == 0.25
    assert top['pixel_f1_verdict'] == 'better'
    assert top['pixel_f1_diff_combined_low'] == better['combined']['low']
    md = format_results(summary, rows)
    assert md.startswith('**Verdicts**') and '- 25 % synthetic: +' in md
    json.dumps(rows, default=float)  # comparison.json is plain JSON


def test_one_seed_still_gets_an_interval_from_the_test_images(tmp_path):
    results = _fake_ablation(tmp_path, {0.0: [.6], .25: [.7]})
    rows = compare_to_real(results, lambda f, s: tmp_path / f'p{int(f * 100):02d}_s{s}',
                           resamples=300)
    pixel = next(r for r in rows if r['kind'] == 'pixel')
    assert math.isnan(pixel['paired']['low'])  # no spread over one seed
    assert pixel['combined']['sources'] == 'test images'
    assert 'test images only: one seed, so training noise is not in it)' in \
        verdict_sentence(pixel)
    assert pixel['combined']['low'] < pixel['combined']['mean'] < pixel['combined']['high']
    # Without the per-image files there is nothing left to give an interval.
    for f in tmp_path.glob('p*/per_image_*.npz'):
        f.unlink()
    rows = compare_to_real(results, lambda f, s: tmp_path / f'p{int(f * 100):02d}_s{s}')
    assert {r['verdict'] for r in rows} == {'no interval'}
    assert 'no interval' in verdict_sentence(rows[0])
