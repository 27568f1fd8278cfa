"""Label consistency and FID / KID of synthetic pairs (tools/measure_synthetic.py)."""
import json
import math
import sys

import numpy as np
import pytest
import torch

from fundus_plugins.evaluation import inception_metrics
from fundus_plugins.evaluation.inception_metrics import (INCEPTION_URL, fid_kid,
                                                         fid_from_features,
                                                         inception_cache_path,
                                                         kid_from_features)
from fundus_plugins.evaluation.seg_scores import confusion_matrix, scores_from_confusion

from conftest import REPO

sys.path.insert(0, str(REPO / 'tools'))
import measure_synthetic  # noqa: E402


def test_scores_from_a_known_confusion():
    truth = np.array([[0, 0, 1, 1], [2, 2, 2, 0]])
    pred = np.array([[0, 1, 1, 1], [2, 2, 0, 0]])
    conf = confusion_matrix(truth, pred, 4)
    s = scores_from_confusion(conf, ['BG', 'RET', 'OD', 'EX'])
    assert s['RET']['precision'] == pytest.approx(2 / 3) and s['RET']['recall'] == 1.0
    assert s['OD']['precision'] == 1.0 and s['OD']['recall'] == pytest.approx(2 / 3)
    assert s['OD']['f1'] == pytest.approx(0.8) and s['OD']['iou'] == pytest.approx(2 / 3)
    assert math.isnan(s['EX']['f1']) and s['EX']['support'] == 0  # absent both sides
    with pytest.raises(ValueError, match='sizes differ'):
        confusion_matrix(truth, pred[:, :3], 4)


class _FakeInception(torch.nn.Module):
    """Stands in for Tero's TorchScript Inception: uint8 images -> 8 features."""

    def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
        x = x.float() / 255
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)  # 12
        return pooled[:, :8] * 4


def test_fid_kid_from_a_local_network(tmp_path):
    path = tmp_path / 'incep.pt'
    torch.jit.script(_FakeInception()).save(str(path))
    rng = np.random.default_rng(0)
    def draw(low, high, n=40):
        return [rng.integers(low, high, (16, 16, 3), dtype=np.uint8) for _ in range(n)]
    a, a2, b = draw(0, 120), draw(0, 120), draw(100, 255)
    assert fid_kid(a, a, str(path))['fid'] == pytest.approx(0, abs=1e-6)
    same = fid_kid(a, a2, str(path))  # two draws of one distribution
    other = fid_kid(a, b, str(path))
    assert other['fid'] > 100 * same['fid'] and other['kid'] > 100 * abs(same['kid'])
    assert other['num_fake'] == 40 and other['num_real'] == 40


def test_fid_kid_without_the_file_say_so():
    # where to put the file: the path given, or mmagic's cache for 'auto' (more cases,
    # offline ones included, in test_pretrained.py)
    res = fid_kid([], [], None)
    assert res['fid'] is None and res['kid'] is None and 'not computed' in res['note']
    assert inception_cache_path() in res['note'] and "'auto'" in res['note']
    res = fid_kid([], [], '/nowhere/inception.pt')
    assert res['fid'] is None and '/nowhere/inception.pt does not exist' in res['note']
    assert INCEPTION_URL in res['note'] and inception_cache_path() in res['note']


def test_feature_statistics_need_two_images():
    one = np.zeros((1, 4))
    with pytest.raises(ValueError, match='at least 2'):
        fid_from_features(one, one)
    with pytest.raises(ValueError, match='at least 2'):
        kid_from_features(one, one)


def test_measure_synthetic_reports_label_consistency(seg_trained, phantom_root, tmp_path,
                                                     monkeypatch):
    config, checkpoint, _ = seg_trained
    out = tmp_path / 'q'
    # The phantom itself as the "synthetic" set: its scores over all images and the real
    # test split's come from the same model; FID / KID have no Inception file here.
    assert measure_synthetic.main([str(config), str(checkpoint), '--synthetic',
                                   str(phantom_root), '--real', str(phantom_root),
                                   '--out', str(out), '--batch-size', '4']) == 0
    res = json.loads((tmp_path / 'q.json').read_text())
    lc = res['label_consistency']
    assert list(lc['synthetic']) == ['BG', 'RET', 'OD', 'MA', 'HE', 'EX', 'SE']
    total = sum(v['support'] for v in lc['synthetic'].values())
    assert total == 20 * 64 * 64  # every pixel of every image scored once
    assert sum(v['support'] for v in lc['real_test'].values()) == 4 * 64 * 64
    assert res['image']['fid'] is None
    md = (tmp_path / 'q.md').read_text()
    assert '| OD |' in md and 'FID / KID: not computed' in md
    assert 'inception-2015-12-05.pt' in md   # says which file, and where
    # --inception auto: the network in (a stand-in for) mmagic's cache; never downloaded
    def offline(*args, **kwargs):
        raise AssertionError('tried to download')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', offline)
    monkeypatch.setattr(inception_metrics, 'INCEPTION_CACHE_DIR', str(tmp_path / 'cache'))
    (tmp_path / 'cache').mkdir()
    torch.jit.script(_FakeInception()).save(inception_cache_path())
    assert measure_synthetic.main([str(config), str(checkpoint), '--synthetic',
                                   str(phantom_root), '--real', str(phantom_root),
                                   '--out', str(out), '--batch-size', '4',
                                   '--inception', 'auto']) == 0
    res = json.loads((tmp_path / 'q.json').read_text())
    assert res['image']['fid'] >= 0 and res['image']['num_real'] == 4
    assert 'FID ' in (tmp_path / 'q.md').read_text()
