"""Ben Graham's preprocessing (BenGrahamFundus) and the segmentation configs that use it."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.registry import TRANSFORMS, DefaultScope
from mmseg.registry import DATASETS

from fundus_plugins.config import load_config
from fundus_plugins.datasets.transforms import BenGrahamFundus

REPO = Path(__file__).resolve().parents[1]
SIZE = 64


def disc_sample(value=100, radius=30, cut=0):
    """A (64, 64) sample: an FOV disc of constant colour ``value`` (rows within ``cut``
    of the top and bottom cut off, as IDRiD's frame does), black outside; label BG
    outside, RET inside, a 3 x 3 lesion (class 2) at the centre."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    fov = (yy - 31.5) ** 2 + (xx - 31.5) ** 2 <= radius ** 2
    fov &= (yy >= cut) & (yy < SIZE - cut)
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[fov] = value
    label = fov.astype(np.uint8)
    label[31:34, 31:34] = 2
    return img, label, fov


def shrunk(fov, margin):
    padded = cv2.copyMakeBorder(fov.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    return cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1] > margin


def test_constant_image_is_128_inside_and_outside_value_outside():
    img, label, fov = disc_sample(radius=40)       # FOV clipped by the image square
    t = TRANSFORMS.build(dict(type='BenGrahamFundus', outside_value=0))
    res = t(dict(img=img.copy(), gt_seg_map=label.copy()))
    out = res['img']
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(res['gt_seg_map'], label)   # the label never changes
    inner = shrunk(fov, 0.1 * SIZE / 2)            # 3.2 px off the FOV edge
    assert inner.sum() > 0.5 * fov.sum()
    # Deep inside, the image equals its blur: 4 * (img - blur) + 128 = 128.
    deep = shrunk(fov, 3 * SIZE / 30)
    assert (out[deep] == 128).all()
    assert (out[~inner] == 0).all()                # outside the shrunk FOV: outside_value
    assert (out[inner & ~deep] >= 128).all()       # blur darkened by the black surround


def test_margin_hides_the_bright_ring_and_zero_margin_keeps_it():
    img, label, fov = disc_sample()
    ring = BenGrahamFundus(fov_margin=0)(dict(img=img.copy(), gt_seg_map=label))['img']
    edge = fov & ~shrunk(fov, 1)
    assert ring[edge].min() == 255                 # 4 * (100 - ~50) + 128 saturates
    assert (ring[~fov] == 128).all()               # the recipe's outside value
    hidden = BenGrahamFundus()(dict(img=img.copy(), gt_seg_map=label))['img']
    assert (hidden[edge] == 128).all()


def test_formula_matches_the_recipe_and_amplifies_local_detail():
    rng = np.random.default_rng(0)
    img = rng.integers(60, 200, (SIZE, SIZE, 3), dtype=np.uint8)
    label = np.ones((SIZE, SIZE), np.uint8)        # FOV everywhere
    out = BenGrahamFundus(fov_margin=0)(dict(img=img.copy(), gt_seg_map=label))['img']
    ref = cv2.addWeighted(img, 4, cv2.GaussianBlur(img, (0, 0), SIZE / 30), -4, 128)
    np.testing.assert_array_equal(out, ref)
    dark = np.full((SIZE, SIZE, 3), 150, np.uint8)
    dark[30:33, 30:33] = 130                       # a small dark spot (a haemorrhage)
    out = BenGrahamFundus(fov_margin=0)(dict(img=dark, gt_seg_map=label))['img']
    assert out[31, 31, 0] < 128 - 40 and out[5, 5, 0] == 128


def test_fov_from_threshold_without_label_and_flat_cut_fov():
    img, label, fov = disc_sample(cut=8)           # IDRiD-like: flat top and bottom
    with_label = BenGrahamFundus(outside_value=0)(dict(img=img.copy(), gt_seg_map=label))
    without = BenGrahamFundus(outside_value=0)(dict(img=img.copy()))
    np.testing.assert_array_equal(with_label['img'], without['img'])
    inner = shrunk(fov, 3.2)
    assert (without['img'][~inner] == 0).all() and (without['img'][inner] > 0).all()
    # Rows next to the flat cuts are off the FOV edge too (a centred circle would keep
    # them).
    assert (without['img'][8:11] == 0).all()


def test_float_images_keep_their_dtype_and_label_of_another_size_is_resized():
    img, label, fov = disc_sample()
    big = cv2.resize(label, (128, 128), interpolation=cv2.INTER_NEAREST)
    out = BenGrahamFundus()(dict(img=img.astype(np.float32), gt_seg_map=big))
    assert out['img'].dtype == np.float32 and out['gt_seg_map'].shape == (128, 128)
    assert out['img'].min() >= 0 and out['img'].max() <= 255


def test_bad_arguments_and_missing_image_are_named():
    with pytest.raises(ValueError, match='sigma'):
        BenGrahamFundus(sigma=0)
    with pytest.raises(ValueError, match='fov_margin'):
        BenGrahamFundus(fov_margin=1.5)
    with pytest.raises(ValueError, match='outside_value'):
        BenGrahamFundus(outside_value=300)
    with pytest.raises(KeyError, match='no image'):
        BenGrahamFundus()(dict(gt_seg_map=np.zeros((4, 4), np.uint8)))


@pytest.mark.parametrize('config,plain', [
    ('configs/seg/unet_fundus_real_bengraham.py', 'configs/seg/unet_fundus_real.py'),
    ('configs/seg/unet_fundus_demo_bengraham.py', 'configs/seg/unet_fundus_demo.py')])
def test_configs_put_the_transform_after_loading_in_both_pipelines(config, plain):
    cfg = load_config(str(REPO / config))
    base = load_config(str(REPO / plain))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        got = cfg[loader].dataset.pipeline
        want = base[loader].dataset.pipeline
        assert not any(t['type'] == 'BenGrahamFundus' for t in want)
        # The default pipeline with the transform inserted right after loading.
        assert got[0]['type'] == 'LoadFundusPair' and got[1]['type'] == 'BenGrahamFundus'
        assert got[:1] + got[2:] == want, loader
    assert cfg.model == base.model and cfg.optim_wrapper == base.optim_wrapper


def test_demo_config_dataset_gives_preprocessed_images(phantom_root):
    cfg = load_config(str(REPO / 'configs/seg/unet_fundus_demo_bengraham.py'),
                      {'data_root': str(phantom_root), 'image_size': 64})
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(cfg.test_dataloader.dataset)
    sample = ds[0]
    img = sample['inputs'].numpy()                 # (3, H, W)
    label = sample['data_samples'].gt_sem_seg.data.numpy()[0]
    assert img.shape == (3, 64, 64)
    assert (img[:, label == 0] == 128).all()       # outside the FOV
    inside = img[:, label == 1]
    assert abs(float(np.median(inside)) - 128) < 20   # local mean to mid-grey
