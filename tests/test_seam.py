"""The seam measure (fundus_plugins.evaluation.seam): the gradient at the painted region's
edge against the healthy image's at the same pixels, pooled over pixels, with errors that
name the file."""
import csv

import cv2
import numpy as np
import pytest

from fundus_plugins.classes import ClassSet
from fundus_plugins.datasets.layout import MetaRow, write_meta
from fundus_plugins.datasets.prepare import init_layout, write_pair
from fundus_plugins.evaluation.seam import (boundary_band, format_seams, gradient_magnitude,
                                            measure_seams, seam_scores, seam_sums)
from fundus_plugins.inpaint import INPAINT_COLUMNS


def _texture(size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(60, 200, (size, size, 3)).astype(np.uint8)


def _square_hole(size=32, lo=10, hi=20):
    hole = np.zeros((size, size), bool)
    hole[lo:hi, lo:hi] = True
    return hole


def test_gradient_and_band():
    flat = np.full((8, 8, 3), 100, np.uint8)
    assert not gradient_magnitude(flat).any()
    ramp = np.repeat(np.arange(8, dtype=np.uint8)[None, :, None] * 10, 8, 0).repeat(3, 2)
    assert np.allclose(gradient_magnitude(ramp)[:, 1:-1], 10.0)  # luminance weights sum to 1
    band = boundary_band(_square_hole(), 1)
    # rows/cols 9..20 dilated, minus 11..18 eroded: a ring 2 pixels wide on each side
    assert band[9, 9] and band[10, 15] and band[20, 20] and not band[15, 15]
    assert not band[8, 15] and not band[21, 15]
    assert band.sum() == 12 * 12 - 8 * 8


def test_an_untouched_image_has_ratio_one_and_a_pasted_patch_a_seam():
    orig, hole = _texture(), _square_hole()
    same = seam_scores(orig, orig, hole)
    assert same['seam_ratio'] == 1.0
    step = orig.copy()
    step[hole] = np.clip(step[hole].astype(int) + 80, 0, 255).astype(np.uint8)
    res = seam_scores(step, orig, hole)
    assert res['seam_ratio'] > 1.5
    assert res['boundary_real'] == same['boundary_real']
    # A patch that matches at its edge and differs only inside leaves no seam.
    inner = orig.copy()
    inner[13:17, 13:17] = 0
    assert seam_scores(inner, orig, hole)['seam_ratio'] == pytest.approx(1.0)


def test_the_band_stays_in_the_field_of_view():
    orig, hole = _texture(), _square_hole()
    fov = np.zeros(hole.shape, bool)
    fov[:, :15] = True
    full, half = seam_sums(orig, orig, hole), seam_sums(orig, orig, hole, fov)
    assert half['band_pixels'] == (boundary_band(hole) & fov).sum() < full['band_pixels']
    assert half['fov_pixels'] == fov.sum()


def _root(tmp_path, images, holes, names=None):
    """An inpainted root and its healthy root from lists of (composite, original)."""
    cs = ClassSet(['MA'])
    inp, healthy = tmp_path / 'inp', tmp_path / 'healthy'
    for root in (inp, healthy):
        init_layout(root, cs)
    (inp / 'holes').mkdir()
    rows, hrows, recs = [], [], []
    for i, ((comp, orig), hole) in enumerate(zip(images, holes)):
        name, host = f'c{i}', f'h{i}'
        label = np.ones(hole.shape, np.uint8)  # RET everywhere: the whole image is in view
        write_pair(inp, name, comp, label)
        write_pair(healthy, host, orig, label)
        cv2.imwrite(str(inp / 'holes' / f'{name}.png'), hole.astype(np.uint8) * 255)
        rows.append(MetaRow(name, 1, 'synthetic', 'inpaint', 'train'))
        hrows.append(MetaRow(host, 0, 'annotated', 'phantom', 'train'))
        recs.append((name, host, 1, i, 0))
    write_meta(inp, rows)
    write_meta(healthy, hrows)
    with open(inp / 'inpaint.csv', 'w', newline='') as f:
        csv.writer(f).writerows([INPAINT_COLUMNS, *recs])
    return inp, healthy


def test_measure_seams_pools_pixels_over_images(tmp_path):
    a, b = _texture(seed=1), _texture(seed=2)
    small, big = _square_hole(lo=12, hi=16), _square_hole(lo=4, hi=28)
    a_step = a.copy()
    a_step[small] = 255
    empty = np.zeros_like(small)
    inp, healthy = _root(tmp_path, [(a_step, a), (b, b), (b, b)], [small, big, empty])
    res = measure_seams(inp, healthy, progress=False)
    s1, s2 = seam_sums(a_step, a, small), seam_sums(b, b, big)
    n = s1['band_pixels'] + s2['band_pixels']
    assert res['band_pixels'] == n
    assert res['boundary_inpainted'] == pytest.approx(
        (s1['boundary_inpainted'] + s2['boundary_inpainted']) / n)
    assert res['seam_ratio'] == pytest.approx(
        (s1['boundary_inpainted'] + s2['boundary_inpainted'])
        / (s1['boundary_real'] + s2['boundary_real']))
    assert (res['images'], res['empty_holes']) == (2, 1)
    assert '| images (empty holes) |' in format_seams(res)


def test_bad_inputs_name_the_file(tmp_path):
    a, hole = _texture(), _square_hole()
    inp, healthy = _root(tmp_path, [(a, a)], [hole])
    (healthy / 'images' / 'h0.png').unlink()
    with pytest.raises(FileNotFoundError, match='h0.png'):
        measure_seams(inp, healthy, progress=False)
    cv2.imwrite(str(healthy / 'images' / 'h0.png'), cv2.resize(a, (16, 24)))
    with pytest.raises(ValueError, match='h0.png.*16x24'):
        measure_seams(inp, healthy, progress=False)
    cv2.imwrite(str(healthy / 'images' / 'h0.png'), a)
    cv2.imwrite(str(inp / 'holes' / 'c0.png'), hole.astype(np.uint8) * 7)
    with pytest.raises(ValueError, match='c0.png.*0 and 255'):
        measure_seams(inp, healthy, progress=False)
    (inp / 'inpaint.csv').unlink()
    with pytest.raises(FileNotFoundError, match='inpaint.csv'):
        measure_seams(inp, healthy, progress=False)


def _ramp(size):
    """A grey horizontal ramp, 2 grey levels a pixel: its gradient is 2 everywhere
    (np.gradient is exact on a linear ramp, at the border too)."""
    row = (2 * np.arange(size)).astype(np.uint8)
    return np.repeat(np.repeat(row[None, :, None], size, 0), 3, 2)


def _stripe(size, lo, hi):
    """A hole of columns lo..hi-1 over every row: its band is columns lo-1, lo, hi-1, hi
    (the image's top and bottom border are no boundary)."""
    hole = np.zeros((size, size), bool)
    hole[:, lo:hi] = True
    return hole


def test_a_step_leaves_its_seam_on_the_band_and_nowhere_else():
    orig, hole = _ramp(64), _stripe(64, 20, 30)
    comp = orig.copy()
    comp[hole] += 40
    assert sorted(np.nonzero(boundary_band(hole).any(0))[0]) == [19, 20, 29, 30]
    changed = ~np.isclose(gradient_magnitude(comp), gradient_magnitude(orig))
    assert sorted(np.nonzero(changed.any(0))[0]) == [19, 20, 29, 30]
    assert changed.all(0)[[19, 20, 29, 30]].all()
    # By hand: (4 + 40) / 2 = 22 on the hole's left edge, |4 - 40| / 2 = 18 on its right.
    res = seam_scores(comp, orig, hole, band=1)
    assert res['band_pixels'] == 4 * 64
    assert res['boundary_inpainted'] == pytest.approx(20.0)
    assert res['boundary_real'] == pytest.approx(2.0)
    assert res['inside_real'] == pytest.approx(2.0)
    assert res['seam_ratio'] == pytest.approx(10.0)
    # A wider band takes in more smooth pixels: the same seam, diluted.
    wide = seam_scores(comp, orig, hole, band=2)
    assert wide['band_pixels'] == 8 * 64 and wide['seam_ratio'] == pytest.approx(5.5)


def test_seam_scores_checks_its_arguments():
    orig, hole = _ramp(64), _stripe(64, 20, 30)
    fov = np.zeros(hole.shape, np.uint8)  # a 0/1 mask works like a bool one
    fov[:32] = 1
    assert seam_scores(orig, orig, hole, fov)['band_pixels'] == 4 * 32
    assert seam_scores(orig, orig, hole.astype(np.uint8) * 255)['band_pixels'] == 4 * 64
    with pytest.raises(ValueError, match='fov'):
        seam_scores(orig, orig, hole, fov[:32])
    with pytest.raises(ValueError, match='band'):
        seam_scores(orig, orig, hole, band=0)
    with pytest.raises(ValueError, match='differ in size'):
        seam_scores(orig[:32], orig, hole)


def test_pooling_is_over_pixels_by_hand(tmp_path):
    """64 x 64 with a seam (256 band pixels at 20 against 2) and 32 x 32 without (128 at
    2): pooled 14 against 2, ratio 7; a mean of per-image ratios would say 5.5."""
    a, b = _ramp(64), _ramp(32)
    a_step = a.copy()
    a_step[_stripe(64, 20, 30)] += 40
    inp, healthy = _root(tmp_path, [(a_step, a), (b, b)], [_stripe(64, 20, 30),
                                                           _stripe(32, 10, 20)])
    res = measure_seams(inp, healthy, progress=False)
    assert res['band_pixels'] == 256 + 128
    assert res['boundary_inpainted'] == pytest.approx((256 * 20 + 128 * 2) / 384)
    assert res['boundary_real'] == pytest.approx(2.0)
    assert res['inside_real'] == pytest.approx(2.0)
    assert res['seam_ratio'] == pytest.approx(7.0)
    assert (res['images'], res['empty_holes']) == (2, 0)
    assert '**7.00**' in format_seams(res)


def test_the_field_of_view_comes_from_the_labels(tmp_path):
    a, hole = _ramp(64), _stripe(64, 20, 30)
    inp, healthy = _root(tmp_path, [(a, a)], [hole])
    label = np.ones(hole.shape, np.uint8)
    label[32:] = 0  # BG: outside the field of view
    cv2.imwrite(str(inp / 'labels' / 'c0.png'), label)
    res = measure_seams(inp, healthy, progress=False)
    assert res['band_pixels'] == 4 * 32


def test_only_empty_holes_give_no_ratio(tmp_path):
    a = _ramp(64)
    inp, healthy = _root(tmp_path, [(a, a)], [np.zeros((64, 64), bool)])
    res = measure_seams(inp, healthy, progress=False)
    assert (res['images'], res['empty_holes'], res['band_pixels']) == (0, 1, 0)
    assert res['seam_ratio'] != res['seam_ratio']  # nan
    assert '| - | - | **-** | - | 0 (1) |' in format_seams(res)


def _rewrite_csv(inp, rows):
    with open(inp / 'inpaint.csv', 'w', newline='') as f:
        csv.writer(f).writerows([INPAINT_COLUMNS, *rows])


def test_more_bad_inputs_name_the_file(tmp_path):
    a, hole = _ramp(64), _stripe(64, 20, 30)
    inp, healthy = _root(tmp_path, [(a, a), (a, a)], [hole, hole])
    (inp / 'holes' / 'c1.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'holes/c1\.png'):
        measure_seams(inp, healthy, progress=False)
    cv2.imwrite(str(inp / 'holes' / 'c1.png'), np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match=r'images/c1\.png.*64x64.*holes/c1\.png.*32x32'):
        measure_seams(inp, healthy, progress=False)
    cv2.imwrite(str(inp / 'holes' / 'c1.png'), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r'c1\.png.*single-channel'):
        measure_seams(inp, healthy, progress=False)
    cv2.imwrite(str(inp / 'holes' / 'c1.png'), hole.astype(np.uint8) * 255)
    cv2.imwrite(str(inp / 'labels' / 'c1.png'), np.ones((32, 32), np.uint8))
    with pytest.raises(ValueError, match=r'labels/c1\.png.*32x32'):
        measure_seams(inp, healthy, progress=False)
    cv2.imwrite(str(inp / 'labels' / 'c1.png'), np.ones((64, 64), np.uint8))
    assert measure_seams(inp, healthy, progress=False)['images'] == 2
    rows = [('c0', 'h0', 1, 0, 0), ('c1', 'h1', 1, 1, 0)]
    _rewrite_csv(inp, rows + [('c9', 'h0', 1, 2, 0)])
    with pytest.raises(ValueError, match=r"inpaint\.csv.*'c9'.*meta\.csv"):
        measure_seams(inp, healthy, progress=False)
    _rewrite_csv(inp, rows[:1])
    with pytest.raises(ValueError, match=r"meta\.csv.*'c1'.*no row in .*inpaint\.csv"):
        measure_seams(inp, healthy, progress=False)
    _rewrite_csv(inp, rows + rows[1:])
    with pytest.raises(ValueError, match=r"inpaint\.csv, line 4.*'c1' appears twice"):
        measure_seams(inp, healthy, progress=False)
    _rewrite_csv(inp, [rows[0], ('c1', '../h1', 1, 1, 0)])
    with pytest.raises(ValueError, match=r"inpaint\.csv, line 3 \(healthy\).*'\.\./h1'"):
        measure_seams(inp, healthy, progress=False)


def test_a_healthy_image_of_another_size_is_resized_as_the_tool_did(tmp_path):
    big = _texture(64, seed=5)
    small = cv2.resize(big, (32, 32), interpolation=cv2.INTER_AREA)
    inp, healthy = _root(tmp_path, [(small, small)], [_square_hole()])
    cv2.imwrite(str(healthy / 'images' / 'h0.png'), big[..., ::-1])
    assert measure_seams(inp, healthy, progress=False)['seam_ratio'] == pytest.approx(1.0)
