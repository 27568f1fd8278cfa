"""Pretrained weights found where their libraries keep them, never downloaded here.

VGG19 (SPADE's perceptual loss): a local path, or torchvision's file in torch hub's
checkpoint cache under a temporary TORCH_HOME; offline with no file, building the model
is an error that says where to put it. Inception (FID / KID): a local path, or 'auto' /
a URL meaning the file in (a temporary stand-in for) mmagic's cache; offline with no
file, FID / KID are "not computed" with the path to put it at. Every test runs with
torch hub's download functions replaced by ones that fail, as offline.
"""
import os.path as osp
import urllib.error

import numpy as np
import pytest
import torch

from fundus_plugins.evaluation import inception_metrics
from fundus_plugins.evaluation.inception_metrics import fid_kid, load_inception
from fundus_plugins.models.spade import SPADEGAN
from fundus_plugins.models.spade.losses import (VGG19_FILE, VGG19_URL, VGGPerceptualLoss,
                                                vgg19_cache_path)
from fundus_plugins.config import build_model, load_config

from conftest import REPO


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network: torch hub's downloads fail (and are counted); empty caches."""
    calls = []

    def fail(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError('offline (test)')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', fail)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', fail)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty_torch_home'))
    monkeypatch.setattr(inception_metrics, 'INCEPTION_CACHE_DIR', str(tmp_path / 'mmagic'))
    return calls


def _small(**kw):
    kw.setdefault('classes', ['OD', 'EX'])
    return SPADEGAN(generator=dict(type='SPADEGenerator', out_size=32, ngf=4),
                    discriminator=dict(type='MultiscaleDiscriminator', ndf=4, n_layers_D=3),
                    **kw)


def _same_as_file(loss, state):
    return torch.equal(loss.features[0].weight, state['features.0.weight']) and \
        torch.equal(loss.features[28].bias, state['features.28.bias'])  # conv5_1


# --------------------------------------------------------------------------------------
# VGG19


def test_vgg_from_a_local_path(vgg_file, offline):
    _, path, state = vgg_file
    m = _small(vgg_weights=str(path))
    assert m.vgg_loss.available and m.vgg_loss.weights_path == str(path)
    assert _same_as_file(m.vgg_loss, state)
    assert len(m.vgg_loss.features) == 30   # up to relu5_1; the file's later layers unused
    assert not any(p.requires_grad for p in m.vgg_loss.features.parameters())
    fake, real = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    assert float(m.vgg_loss(fake, real)) > 0 and float(m.vgg_loss(real, real)) == 0
    assert offline == []


def test_vgg_from_torch_hub_cache(vgg_file, offline, monkeypatch):
    home, path, state = vgg_file
    monkeypatch.setenv('TORCH_HOME', str(home))
    assert vgg19_cache_path() == str(path)
    m = _small(vgg_weights='torchvision')
    assert m.vgg_loss.available and m.vgg_loss.weights_path == str(path)
    assert _same_as_file(m.vgg_loss, state)
    assert offline == []   # found in the cache: nothing downloaded


def test_vgg_offline_without_cache_stops_building_and_says_where(offline, tmp_path):
    cache = tmp_path / 'empty_torch_home' / 'hub' / 'checkpoints' / VGG19_FILE
    assert vgg19_cache_path() == str(cache)
    with pytest.raises(FileNotFoundError) as err:
        _small(vgg_weights='torchvision')
    msg = str(err.value)
    assert str(cache) in msg and VGG19_URL in msg and 'offline (test)' in msg
    assert 'lambda_vgg=0' in msg and 'vgg_weights=None' in msg
    assert offline == [VGG19_URL]   # it did try torchvision's download
    with pytest.raises(FileNotFoundError, match='lambda_vgg=0'):
        _small()                     # 'torchvision' is the default
    missing = tmp_path / 'weights' / 'vgg.pth'
    with pytest.raises(FileNotFoundError) as err:
        _small(vgg_weights=str(missing))
    assert f'{missing} not found' in str(err.value) and str(cache) in str(err.value)
    assert 'lambda_vgg=0' in str(err.value)


def test_vgg_paper_config_needs_weights_and_demo_config_loads_none(offline, tmp_path):
    """The configs as the tools load them (top-level vgg_weights), shrunk."""
    small = dict(model=dict(generator=dict(ngf=4, spade_hidden=8),
                            discriminator=dict(ndf=4, n_layers_D=2, num_D=1)),
                 image_size=32)
    cfg = load_config(str(REPO / 'configs' / 'spade_fundus.py'), small)
    assert cfg.vgg_weights == cfg.model.vgg_weights == 'torchvision'
    assert cfg.model.loss_config.lambda_vgg > 0
    with pytest.raises(FileNotFoundError, match='vgg19-dcbb9e9d.pth does not exist'):
        build_model(cfg)
    cfg = load_config(str(REPO / 'configs' / 'spade_fundus_demo.py'), small)
    assert cfg.model.loss_config.lambda_vgg == 0
    assert not build_model(cfg).vgg_loss.available


def test_lambda_vgg_zero_loads_nothing(offline, tmp_path, monkeypatch):
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, 'load', lambda *a, **k: loads.append(a) or real_load(*a, **k))
    for weights in ('torchvision', str(tmp_path / 'missing.pth')):
        m = _small(vgg_weights=weights, loss_config=dict(lambda_vgg=0.0))
        assert not m.vgg_loss.available and m.vgg_loss.features is None
    assert offline == [] and loads == []
    fake = torch.rand(1, 3, 8, 8)
    assert float(m.vgg_loss(fake, -fake)) == 0   # the term is 0 (train_generator omits it)


def test_vgg_file_that_is_not_vgg19_is_named(tmp_path):
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(ValueError, match='notes.pth: not a weights file'):
        VGGPerceptualLoss(str(text))
    wrong = tmp_path / 'resnet.pth'
    torch.save({'features.0.weight': torch.zeros(8, 3, 3, 3)}, wrong)
    with pytest.raises(ValueError, match='resnet.pth: not VGG19 weights'):
        VGGPerceptualLoss(str(wrong))
    tensor = tmp_path / 'tensor.pth'
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ValueError, match='tensor.pth: not VGG19 weights'):
        VGGPerceptualLoss(str(tensor))
    with pytest.raises(TypeError, match="'torchvision' or None"):
        VGGPerceptualLoss(3)


def test_vgg_is_not_in_checkpoints_and_old_ones_still_load(vgg_file):
    _, path, state = vgg_file
    on = _small(vgg_weights=str(path))
    off = _small(vgg_weights=None)
    sd = on.state_dict()
    assert not any(k.startswith('vgg_loss.') for k in sd)
    assert set(sd) == set(off.state_dict())
    off.load_state_dict(sd, strict=True)     # trained with VGG, translated without
    on.load_state_dict(off.state_dict(), strict=True)
    # a checkpoint from when the VGG weights were saved with the model
    old = dict(sd, **{f'vgg_loss.{k}': torch.zeros_like(v) for k, v in state.items()})
    from mmengine.runner.checkpoint import load_state_dict
    load_state_dict(off, dict(old), strict=True)
    on.load_state_dict(dict(old), strict=True)
    assert _same_as_file(on.vgg_loss, state)  # torchvision's weights, not the checkpoint's
    on.to(torch.float64)                      # moves reach the unregistered network
    assert on.vgg_loss.features[0].weight.dtype == torch.float64


# --------------------------------------------------------------------------------------
# Inception


class _StandInInception(torch.nn.Module):
    """Tero's TorchScript Inception's interface: (N, 3, H, W) uint8 -> (N, 6) features."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = x.float() / 255
        feats = torch.cat([x.mean((2, 3)), x.std((2, 3))], dim=1)
        return feats if return_features else feats.sum(1, keepdim=True)


def _images(low, high, seed, n=12):
    rng = np.random.default_rng(seed)
    return [rng.integers(low, high, (16, 16, 3), dtype=np.uint8) for _ in range(n)]


def test_inception_found_in_the_cache(offline, tmp_path):
    cache = tmp_path / 'mmagic' / 'inception-2015-12-05.pt'
    assert inception_metrics.inception_cache_path() == str(cache)
    cache.parent.mkdir()
    torch.jit.script(_StandInInception()).save(str(cache))
    net = load_inception('auto')
    x = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    assert net(x, return_features=True).shape == (2, 6)
    a, b = _images(0, 120, 0), _images(100, 255, 1)
    res = fid_kid(a, b, 'auto')
    # The stand-in's features are channel means and stds in [0, 1]: the means differ by
    # (177 - 59.5) / 255 per channel, the stds by about 0.04, so FID ~ 3 * 0.461^2 = 0.64.
    assert res['fid'] == pytest.approx(0.64, abs=0.03)
    assert res['num_fake'] == res['num_real'] == 12
    assert fid_kid(a, a, 'auto')['fid'] == pytest.approx(0, abs=1e-6)
    url = 'https://example.org/metrics/inception-2015-12-05.pt'  # a URL: its cached file
    assert fid_kid(a, b, url)['fid'] == pytest.approx(res['fid'])
    assert fid_kid(a, b, str(cache))['fid'] == pytest.approx(res['fid'])  # a local path
    assert offline == []


def test_inception_offline_without_the_file_is_not_computed_and_says_where(offline,
                                                                          tmp_path):
    cache = str(tmp_path / 'mmagic' / 'inception-2015-12-05.pt')
    res = fid_kid(_images(0, 9, 0), _images(0, 9, 1), 'auto')
    assert res['fid'] is None and res['kid'] is None
    assert res['note'].startswith('not computed') and f'at {cache}' in res['note']
    assert inception_metrics.INCEPTION_URL in res['note'] and 'offline (test)' in res['note']
    assert offline == [inception_metrics.INCEPTION_URL]
    assert not osp.exists(cache)   # no partial file left to be taken for the network
    with pytest.raises(FileNotFoundError, match='inception-2015-12-05.pt does not exist'):
        load_inception('auto')
    res = fid_kid([], [], str(tmp_path / 'nowhere.pt'))
    assert res['fid'] is None and 'nowhere.pt does not exist' in res['note']
    assert cache in res['note'] and "'auto'" in res['note']
    res = fid_kid([], [], None)
    assert res['fid'] is None and cache in res['note'] and "'auto'" in res['note']
    bad = tmp_path / 'mmagic' / 'inception-2015-12-05.pt'
    bad.write_text('interrupted download')
    with pytest.raises(RuntimeError, match='inception-2015-12-05.pt: not a TorchScript'):
        fid_kid([], [], 'auto')
