"""The field of view of sampled label maps (real / fitted / generated) and the measure
of background inside it."""
import numpy as np
import pytest
import torch

from fundus_plugins.apis import resolve_fov, sample_label_maps
from fundus_plugins.classes import ClassSet
from fundus_plugins.evaluation.label_stats import (MapSet, background_inside_fov,
                                                   bg_inside_fov_share, load_maps)
from fundus_plugins.models.label_gan import LabelACGAN, RealFovPool, maps_with_fov


def _ragged_probs(n=3, size=32, classes=5, seed=0):
    """Probabilities whose argmax is BG outside a circle, with BG holes and a ragged rim
    inside it, and a lesion (class 4) blob partly outside the circle."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, size, size, generator=g) * 0.1
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing='ij')
    r = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2).sqrt()
    logits[:, 0] += torch.where(r > size * 0.4, 5.0, -5.0)
    logits[:, 1] += 2.0
    logits[:, 0, 14:17, 14:17] += 20.0          # a hole in the middle
    logits[:, 0, 2:16, 2:4] += 20.0             # a notch cut into the rim
    logits[:, 4, 0:6, 14:18] += 30.0            # a lesion straddling the rim
    return logits.softmax(1)


def test_background_inside_fov_finds_holes_and_notches_not_clean_circles(phantom_root):
    probs = _ragged_probs()
    raw = maps_with_fov(probs, fov='generated').numpy()
    assert all(background_inside_fov(m) > 0 for m in raw)
    cs = ClassSet(['OD', 'MA', 'HE', 'EX', 'SE', 'IRMA', 'NV'])
    real = load_maps(phantom_root, cs, 64)
    assert bg_inside_fov_share(real) == 0  # real fields of view are convex


def test_fitted_and_real_fields_of_view_leave_no_hole_and_keep_lesions_inside(phantom_root):
    probs = _ragged_probs()
    fitted = maps_with_fov(probs, fov='fitted').numpy()
    assert all(background_inside_fov(m) == 0 for m in fitted)
    # Inside the field of view no pixel is BG: the hole and the notch are retina now.
    assert (fitted[:, 15, 15] == 1).all()
    pool = RealFovPool(phantom_root, 64)
    up = torch.nn.functional.interpolate(probs, scale_factor=2, mode='bilinear')
    real = maps_with_fov(probs, 2.0, 'real', pool, np.random.default_rng(1)).numpy()
    masks = pool.draw(3, np.random.default_rng(1))
    assert np.array_equal(real != 0, masks)  # BG exactly outside the drawn real FOV
    gen = up.argmax(1).numpy()
    assert np.array_equal(real[masks], np.where(gen == 0, 1, gen)[masks])
    # No class other than RET appears where the generator said BG: no disc or lesion
    # specks along the rim.
    assert set(np.unique(real[masks & (gen == 0)])) <= {1}
    assert all(background_inside_fov(m) == 0 for m in real)
    with pytest.raises(ValueError, match='fov must be one of'):
        maps_with_fov(probs, fov='square')
    with pytest.raises(ValueError, match='RealFovPool'):
        maps_with_fov(probs, fov='real')


def _model():
    return LabelACGAN(generator=dict(type='LabelMapGenerator', out_size=16, base_channels=16,
                                     min_channels=8),
                      discriminator=dict(type='LabelMapDiscriminator', in_size=16,
                                         base_channels=8, max_channels=16),
                      classes=['OD', 'MA', 'HE', 'EX', 'SE', 'IRMA', 'NV']).eval()


def test_sampling_with_real_fields_of_view_is_seeded(phantom_root):
    model = _model()
    first = [m for _, _, m in sample_label_maps(model, [2, 4], 3, scale=4, seed=5,
                                                progress=False, fov='real',
                                                fov_root=phantom_root)]
    again = [m for _, _, m in sample_label_maps(model, [2, 4], 3, scale=4, seed=5,
                                                progress=False, fov='real',
                                                fov_root=phantom_root)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    pool = RealFovPool(phantom_root, 64)
    for m in first:
        assert m.shape == (64, 64)
        assert any(np.array_equal(m != 0, p) for p in pool.masks)
    with pytest.raises(ValueError, match='needs fov_root'):
        next(sample_label_maps(model, [0], 1, scale=4, progress=False, fov='real'))


def test_resolve_fov_prefers_a_prepared_root(phantom_root, tmp_path):
    assert resolve_fov('auto', None, {'data_root': str(phantom_root)}, log=lambda m: None) \
        == ('real', str(phantom_root))
    assert resolve_fov('auto', None, {'data_root': str(tmp_path)}, log=lambda m: None) \
        == ('fitted', None)
    assert resolve_fov('generated', None, None) == ('generated', None)
    with pytest.raises(FileNotFoundError, match='not a prepared root'):
        resolve_fov('real', str(tmp_path), None)
