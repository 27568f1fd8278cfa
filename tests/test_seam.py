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
    cv2.imwrite(str(healthy / 'images' / 'h0.png'), cv2.resize(a, (16, 16)))
    with pytest.raises(ValueError, match='h0.png.*16x16'):
        measure_seams(inp, healthy, progress=False)
    cv2.imwrite(str(healthy / 'images' / 'h0.png'), a)
    cv2.imwrite(str(inp / 'holes' / 'c0.png'), hole.astype(np.uint8) * 7)
    with pytest.raises(ValueError, match='c0.png.*0 and 255'):
        measure_seams(inp, healthy, progress=False)
    (inp / 'inpaint.csv').unlink()
    with pytest.raises(FileNotFoundError, match='inpaint.csv'):
        measure_seams(inp, healthy, progress=False)
