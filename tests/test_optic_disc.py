"""The optic-disc helpers: the ellipse file, ellipse masks, Dice and the small disc model."""
import math

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from fundus_plugins.datasets.optic_disc import (Ellipse, ODModel, dice, ellipse_mask,
                                                evaluate_od_model, read_od_ellipses,
                                                train_od_model)
from fundus_plugins.phantom import draw_phantom

SIZE = 64


def _phantoms(n, seed):
    samples = [draw_phantom(i % 5, SIZE, seed=[seed, 11, i]) for i in range(n)]
    return [s.image for s in samples], [s.masks['OD'] for s in samples]


# -- the ellipse file --------------------------------------------------------------------------


def test_read_od_ellipses(tmp_path):
    path = tmp_path / 'od.csv'
    path.write_text('\ufeffangle,image,cx,cy,rx,ry,note\n'
                    '0,0001_A.png,100.5,200,30,32,drawn by X\n'
                    '\n'
                    '-12.5, 0002_B ,10,20,5,6.5,\n'
                    '90,IDRiD_01.JPG,1,2,3,4,\n')
    got = read_od_ellipses(path)
    assert set(got) == {'0001_A', '0002_B', 'IDRiD_01'}
    assert got['0001_A'] == Ellipse(100.5, 200.0, 30.0, 32.0, 0.0)
    assert got['0002_B'] == Ellipse(10.0, 20.0, 5.0, 6.5, -12.5)
    assert got['0002_B'].origin == f'{path}:4'


@pytest.mark.parametrize('text, match', [
    ('image,cx,cy,rx,angle\na.png,1,2,3,0\n', r"lacks the column\(s\) \['ry'\]"),
    ('image,cx,cy,rx,ry,angle\na.png,1,two,3,4,0\n', r":2: cy of 'a.png' is 'two'"),
    ('image,cx,cy,rx,ry,angle\na.png,1,2,nan,4,0\n', r':2: rx .* finite'),
    ('image,cx,cy,rx,ry,angle\na.png,1,2,3,0,0\n', r":2: ry of 'a.png' is 0, expected"),
    ('image,cx,cy,rx,ry,angle\na.png,1,2,-3,4,0\n', r':2: rx .* > 0'),
    ('image,cx,cy,rx,ry,angle\na.png,1,2,3,4,0\nb,1,2,3,4,0\na,1,2,3,4,0\n',
     r":4: image 'a' is listed twice \(also on line 2\)"),
    ('image,cx,cy,rx,ry,angle\nSeg-set/Original_Images/a.png,1,2,3,4,0\n',
     r":2: image .* is a path; .*'a.png'"),
    ('image,cx,cy,rx,ry,angle\n,1,2,3,4,0\n', r':2: empty image name'),
    ('image,cx,cy,rx,ry,angle\na.png,1,2,3\n', r':2: 4 value\(s\) but the header has 6'),
    ('', r'empty; expected a CSV'),
])
def test_read_od_ellipses_errors_name_file_and_line(tmp_path, text, match):
    path = tmp_path / 'bad_od.csv'
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        read_od_ellipses(path)
    assert 'bad_od.csv' in str(err.value)


def test_read_od_ellipses_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.csv: optic-disc ellipse file'):
        read_od_ellipses(tmp_path / 'nope.csv')


# -- ellipse masks -----------------------------------------------------------------------------


def test_ellipse_mask_geometry():
    e = Ellipse(cx=60.3, cy=40.7, rx=20.0, ry=12.0, angle=30.0)
    m = ellipse_mask((100, 130, 3), e)
    assert m.shape == (100, 130) and m.dtype == bool
    assert m[41, 60] and not m[0, 0]
    assert abs(m.sum() / (math.pi * 20 * 12) - 1) < 0.03
    # The end of the rx axis lies along (cos 30, sin 30) from the centre (image y down).
    a = math.radians(30)
    assert m[round(40.7 + 18 * math.sin(a)), round(60.3 + 18 * math.cos(a))]
    assert not m[round(40.7 - 18 * math.sin(a)), round(60.3 + 18 * math.cos(a))]
    # Same convention as cv2.ellipse.
    ref = np.zeros((100, 130), np.uint8)
    cv2.ellipse(ref, (60, 41), (20, 12), 30, 0, 360, 1, -1)
    assert dice(m, ref > 0) > 0.95
    # Turning by 90 degrees swaps the axes.
    assert dice(ellipse_mask((100, 130), Ellipse(60, 40, 20, 12, 90)),
                ellipse_mask((100, 130), Ellipse(60, 40, 12, 20, 0))) > 0.98


def test_ellipse_mask_clips_and_rejects_an_ellipse_off_the_image():
    m = ellipse_mask((50, 50), Ellipse(0, 25, 10, 10))
    assert m[25, 0] and m.sum() < math.pi * 100 * 0.6
    with pytest.raises(ValueError, match=r'od.csv:7: .*covers no pixel of the 50x50'):
        ellipse_mask((50, 50), Ellipse(1000, 900, 10, 10, origin='od.csv:7'))


# -- Dice --------------------------------------------------------------------------------------


def test_dice_edge_cases():
    empty = np.zeros((4, 4), bool)
    full = np.ones((4, 4), bool)
    half = np.zeros((4, 4), bool)
    half[:2] = True
    assert dice(empty, empty) == 1.0
    assert dice(empty, full) == 0.0
    assert dice(full, full) == 1.0
    assert dice(half, full) == pytest.approx(2 * 8 / 24)
    with pytest.raises(ValueError, match='different shapes'):
        dice(empty, np.zeros((4, 5), bool))


# -- prediction's post-processing, with a fixed probability map --------------------------------


class _FixedLogits(nn.Module):
    """Ignores its input; returns ``logits`` resized to the input's size."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer('logits', torch.as_tensor(logits, dtype=torch.float32))

    def forward(self, x):
        return nn.functional.interpolate(self.logits[None, None], size=x.shape[-2:],
                                         mode='bilinear', align_corners=False)


def _fixed_model(logits, disc_fraction=0.02):
    return ODModel(_FixedLogits(logits), size=logits.shape[0], base=1, depth=1,
                   disc_fraction=disc_fraction)


def test_predict_keeps_the_largest_region_as_one_filled_ellipse():
    disc = Ellipse(20.0, 30.0, 9.0, 6.0, 25.0)
    blob = ellipse_mask((SIZE, SIZE), Ellipse(48, 12, 3, 3))
    prob = np.where(ellipse_mask((SIZE, SIZE), disc) | blob, 8.0, -8.0)
    pred = _fixed_model(prob).predict(np.zeros((SIZE, SIZE, 3), np.uint8))
    assert not pred.fallback and pred.max_prob > 0.99
    assert dice(pred.mask, ellipse_mask((SIZE, SIZE), disc)) > 0.95
    assert not (pred.mask & blob).any()
    assert cv2.connectedComponents(pred.mask.astype(np.uint8))[0] == 2  # background + 1
    # At a larger image size the disc scales with it.
    big = _fixed_model(prob).predict(np.zeros((2 * SIZE, 2 * SIZE, 3), np.uint8))
    assert abs(big.mask.sum() / (4 * disc.area) - 1) < 0.1


def test_predict_falls_back_when_nothing_passes_the_threshold():
    prob = np.full((SIZE, SIZE), -6.0)
    prob[40, 10] = -1.0  # the most probable pixel, still under 0.5
    model = _fixed_model(prob, disc_fraction=0.03)
    pred = model.predict(np.zeros((SIZE, SIZE, 3), np.uint8))
    assert pred.fallback
    assert pred.ellipse.rx == pred.ellipse.ry
    assert abs(pred.ellipse.cx - 10) <= 1 and abs(pred.ellipse.cy - 40) <= 1
    assert abs(pred.mask.sum() / (0.03 * SIZE * SIZE) - 1) < 0.1
    assert cv2.connectedComponents(pred.mask.astype(np.uint8))[0] == 2
    # One pixel over the threshold is too little to fit an ellipse to: also a fallback.
    prob[40, 10] = 8.0
    pred = _fixed_model(prob, disc_fraction=0.03).predict(np.zeros((SIZE, SIZE, 3), np.uint8))
    assert pred.fallback and abs(pred.ellipse.cx - 10) <= 1


# -- training on phantoms ----------------------------------------------------------------------


@pytest.fixture(scope='module')
def trained():
    """60 iterations on 16 phantom discs at 64 px, 8 held out (a few seconds)."""
    images, masks = _phantoms(24, seed=0)
    model = train_od_model(images[:16], masks[:16], size=SIZE, iters=60, seed=0,
                           progress=False)
    return model, images[16:], masks[16:]


def test_trained_model_finds_the_held_out_discs(trained):
    model, images, masks = trained
    for image in images:
        pred = model.predict(image)
        assert pred.mask.shape == image.shape[:2]
        assert cv2.connectedComponents(pred.mask.astype(np.uint8))[0] == 2
        assert (pred.mask == ellipse_mask(image.shape, pred.ellipse)).all()
    ev = evaluate_od_model(model, images, masks)
    assert len(ev['dice']) == len(images) and ev['fallbacks'] == 0
    assert ev['mean_dice'] == pytest.approx(np.mean(ev['dice']))
    # A trivial guess: the mean training disc at the image centre.
    r = math.sqrt(model.disc_fraction * SIZE * SIZE / math.pi)
    centre = ellipse_mask((SIZE, SIZE), Ellipse(SIZE / 2, SIZE / 2, r, r))
    baseline = np.mean([dice(centre, m) for m in masks])
    # Measured over 8 seeds of this setup: mean Dice 0.79-0.92 (baseline about 0).
    assert baseline < 0.2 and ev['mean_dice'] > 0.6


def test_fallback_is_counted_for_a_zeroed_model(trained):
    model, images, masks = trained
    ev = evaluate_od_model(model, images, masks, threshold=1.0)  # nothing passes
    assert ev['fallbacks'] == len(images)
    net = type(model.net)(model.base, model.depth)
    for p in net.parameters():
        nn.init.zeros_(p)
    flat = ODModel(net, model.size, model.base, model.depth, model.disc_fraction)
    pred = flat.predict(images[0])  # probability 0.5 everywhere, not above 0.5
    assert pred.fallback and pred.max_prob == pytest.approx(0.5)
    # A flat map has no most probable pixel: the guess is the image centre.
    assert (pred.ellipse.cx, pred.ellipse.cy) == ((SIZE - 1) / 2, (SIZE - 1) / 2)
    assert abs(pred.mask.sum() / (model.disc_fraction * SIZE * SIZE) - 1) < 0.15


def test_training_is_deterministic_and_leaves_global_state_alone():
    images, masks = _phantoms(4, seed=5)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    threads = torch.get_num_threads()
    a = train_od_model(images, masks, size=32, iters=4, batch_size=2, seed=1, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    b = train_od_model(images, masks, size=32, iters=4, batch_size=2, seed=1, progress=False)
    c = train_od_model(images, masks, size=32, iters=4, batch_size=2, seed=2, progress=False)
    sa, sb, sc = (m.net.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_train_od_model_input_errors():
    images, masks = _phantoms(2, seed=6)
    with pytest.raises(ValueError, match='2 images but 1 masks'):
        train_od_model(images, masks[:1], size=32, iters=1, progress=False)
    with pytest.raises(ValueError, match=r'mask 1 has shape \(10, 10\)'):
        train_od_model(images, [masks[0], np.zeros((10, 10), bool)], size=32, iters=1,
                       progress=False)
    with pytest.raises(ValueError, match='none of the 2 masks holds a disc pixel'):
        train_od_model(images, [np.zeros_like(m) for m in masks], size=32, iters=1,
                       progress=False)
    with pytest.raises(ValueError, match='uint8 RGB image'):
        train_od_model([images[0][..., 0]], masks[:1], size=32, iters=1, progress=False)


def test_save_load_round_trip(trained, tmp_path):
    model, images, _ = trained
    path = tmp_path / 'sub' / 'od_model.pt'
    model.save(path)
    loaded = ODModel.load(path)
    for key in ('size', 'base', 'depth', 'disc_fraction', 'threshold', 'iters', 'seed'):
        assert getattr(loaded, key) == getattr(model, key)
    for image in images[:3]:
        np.testing.assert_array_equal(loaded.probability(image), model.probability(image))
        assert loaded.predict(image).ellipse == model.predict(image).ellipse


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pt: optic-disc model not found'):
        ODModel.load(tmp_path / 'missing.pt')
    other = tmp_path / 'other.pt'
    torch.save({'state_dict': {}}, str(other))
    with pytest.raises(ValueError, match='other.pt: not an optic-disc model'):
        ODModel.load(other)
    wrong = tmp_path / 'wrong.pt'
    torch.save({'format': 'fundus_plugins.od_model/1', 'size': 64, 'base': 4, 'depth': 2,
                'disc_fraction': 0.02, 'threshold': 0.5, 'state_dict': {}}, str(wrong))
    with pytest.raises(ValueError, match='wrong.pt: corrupt optic-disc model'):
        ODModel.load(wrong)
    junk = tmp_path / 'junk.pt'
    junk.write_bytes(b'not a torch file')
    with pytest.raises(ValueError, match='junk.pt: cannot read an optic-disc model'):
        ODModel.load(junk)
