import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fundus_plugins.classes import ClassSet
from fundus_plugins.datasets.layout import MetaRow, read_meta, stratified_split
from fundus_plugins.datasets.prepare import (crop_pad_resize, field_of_view, prepare_dataset,
                                             read_mask)
from fundus_plugins.datasets.sources import read_fgadr, read_idrid

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tools'))
import prepare_data  # noqa: E402


def test_prepare_tool_on_idrid_and_fgadr(idrid_tree, fgadr_tree, tmp_path, capsys):
    idrid, _ = idrid_tree
    fgadr, truth = fgadr_tree
    excl = tmp_path / 'excl.txt'
    excl.write_text('0006_F.png\n')
    out = tmp_path / 'prepared'
    assert prepare_data.main(['--idrid', str(idrid), '--fgadr', str(fgadr), '--fgadr-exclude',
                              str(excl), '--out', str(out), '--size', '64', '--seed', '1',
                              '--od-iters', '20']) == 0
    printed = capsys.readouterr().out
    assert '10 images' in printed and 'fgadr: does not annotate OD' in printed
    rows = read_meta(out)
    assert len(rows) == 10 and 'fgadr_0006_F' not in {r.name for r in rows}
    assert ClassSet.load(out / 'classes.json').codes == ('BG', 'RET', 'OD', 'MA', 'HE', 'EX', 'SE')
    for r in rows:
        img = cv2.imread(str(out / 'images' / f'{r.name}.png'))
        lab = cv2.imread(str(out / 'labels' / f'{r.name}.png'), cv2.IMREAD_UNCHANGED)
        assert img.shape == (64, 64, 3) and lab.shape == (64, 64) and lab.dtype == np.uint8
        assert lab.max() < 7
        assert lab[0, 0] == 0 and lab[32, 32] != 0  # corner outside the FOV, centre inside
    by_name = {r.name: r for r in rows}
    assert by_name['idrid_IDRiD_01'].grade == 3
    assert by_name['idrid_IDRiD_02'].grade_source == 'ungraded'
    assert by_name['fgadr_0005_E'].grade == 4
    assert (out / 'preview.png').is_file() and (out / 'summary.json').is_file()
    # An FGADR grade-0 image has no lesions, only its predicted disc (FGADR has no disc
    # masks; the disc model learnt from IDRiD fills it in); a grade-4 one has MA and HE.
    lab0 = cv2.imread(str(out / 'labels' / 'fgadr_0001_A.png'), cv2.IMREAD_UNCHANGED)
    lab4 = cv2.imread(str(out / 'labels' / 'fgadr_0005_E.png'), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(lab0)) == {0, 1, 2}
    assert by_name['fgadr_0001_A'].od_source == 'predicted'
    assert by_name['idrid_IDRiD_01'].od_source == 'annotated'
    assert 'disc model' in printed and 'fgadr: predicted 5' in printed
    assert {4} <= set(np.unique(lab4))  # HE survives the resize
    # Running again into the same folder refuses without --overwrite.
    with pytest.raises(FileExistsError, match='already holds'):
        prepare_data.main(['--fgadr', str(fgadr), '--out', str(out), '--size', '64',
                           '--classes', 'MA', 'HE'])


def test_fgadr_discs_drawn_from_an_od_file_or_refused(fgadr_tree, tmp_path, capsys):
    fgadr, truth = fgadr_tree
    out = tmp_path / 'drawn'
    # FGADR alone with OD among the classes: nothing to learn the disc from.
    with pytest.raises(ValueError, match='no training image annotates the disc'):
        prepare_data.main(['--fgadr', str(fgadr), '--out', str(out), '--size', '64'])
    assert not out.exists()  # refused before anything was written
    # Ellipses drawn on the original images (96 x 144 frames) for every image.
    od_file = tmp_path / 'discs.csv'
    od_file.write_text('image,cx,cy,rx,ry,angle\n' + ''.join(
        f'{name},40,48,9,11,0\n' for name in truth))
    assert prepare_data.main(['--fgadr', str(fgadr), '--out', str(out), '--size', '64',
                              '--od-file', str(od_file)]) == 0
    assert 'fgadr: drawn 6' in capsys.readouterr().out
    rows = read_meta(out)
    assert {r.od_source for r in rows} == {'drawn'} and not rows[0].annotates('OD')
    lab = cv2.imread(str(out / 'labels' / 'fgadr_0001_A.png'), cv2.IMREAD_UNCHANGED)
    # The frame is cropped to its 96 x 96 field of view (24 px off the left), so the disc
    # centred at x 40 lands at about (40 - 24) * 64 / 96 = 10.7 in the 64 px label.
    ys, xs = np.nonzero(lab == 2)
    assert abs(xs.mean() - 10.7) < 1.5 and abs(ys.mean() - 32) < 1.5
    # A name in the OD file that is not an input image is an error naming it.
    od_file.write_text('image,cx,cy,rx,ry,angle\n9999_Z.png,40,48,9,11,0\n')
    with pytest.raises(ValueError, match='9999_Z'):
        prepare_data.main(['--fgadr', str(fgadr), '--out', str(tmp_path / 'x'),
                           '--size', '64', '--od-file', str(od_file)])


def test_prepared_label_matches_the_drawn_masks(fgadr_tree, tmp_path):
    root, truth = fgadr_tree
    cs = ClassSet(['MA', 'HE', 'EX', 'SE'])
    recs = [r for r in read_fgadr(root, cs) if r.name == 'fgadr_0005_E']
    prepare_dataset(recs, tmp_path / 'p', cs, size=96, progress=False)
    lab = cv2.imread(str(tmp_path / 'p' / 'labels' / 'fgadr_0005_E.png'), cv2.IMREAD_UNCHANGED)
    img, masks, _ = truth['0005_E.png']
    fov = field_of_view(img)
    _, expect = crop_pad_resize(img, cs.compose(fov, masks), fov, 96)
    assert (lab == expect).mean() > 0.999
    he = cs.index('HE')
    assert (lab == he).sum() > 0


def test_split_is_seeded_stratified_and_order_free():
    rows = [MetaRow(f'a{i:03d}', i % 5, 'annotated', 'x', 'train') for i in range(100)]
    rows += [MetaRow(f'b{i:03d}', None, 'ungraded', 'y', 'train') for i in range(10)]
    s1 = stratified_split(rows, seed=0)
    s2 = stratified_split(list(reversed(rows)), seed=0)
    assert {r.name: r.split for r in s1} == {r.name: r.split for r in s2}
    for g in range(5):
        assert sum(r.split == 'test' for r in s1 if r.grade == g) == 4
    assert sum(r.split == 'test' for r in s1 if r.grade is None) == 2
    s3 = stratified_split(rows, seed=1)
    assert {r.name for r in s1 if r.split == 'test'} != {r.name for r in s3 if r.split == 'test'}


def test_corrupt_image_is_named(fgadr_tree, tmp_path):
    root, _ = fgadr_tree
    bad = root / 'Seg-set' / 'Original_Images' / '0003_C.png'
    bad.write_bytes(b'not a png at all')
    recs = read_fgadr(root, ClassSet(['MA']))
    with pytest.raises(ValueError, match=r'0003_C.png: cannot decode image'):
        prepare_dataset(recs, tmp_path / 'p', ClassSet(['MA']), size=32, progress=False)


def test_missized_mask_is_named_with_both_sizes(idrid_tree, tmp_path):
    root, _ = idrid_tree
    mask = next(root.rglob('IDRiD_03_OD.tif'))
    cv2.imwrite(str(mask), np.zeros((10, 20), np.uint8))
    recs = read_idrid(root, ClassSet(['OD']))
    with pytest.raises(ValueError, match=r'IDRiD_03_OD.tif: mask is 20x10 .* image is 144x96'):
        prepare_dataset(recs, tmp_path / 'p', ClassSet(['OD']), size=32, progress=False)
    with pytest.raises(FileNotFoundError, match='nope.tif: mask not found'):
        read_mask(tmp_path / 'nope.tif', (4, 4))


def test_unknown_class_on_the_command_line(fgadr_tree, tmp_path):
    root, _ = fgadr_tree
    with pytest.raises(KeyError, match="unknown lesion class 'XX'"):
        prepare_data.main(['--fgadr', str(root), '--out', str(tmp_path / 'o'),
                           '--classes', 'OD', 'XX'])


def test_od_file_entries_for_images_with_disc_masks_are_reported(idrid_tree, fgadr_tree,
                                                                 tmp_path):
    from fundus_plugins.classes import DEFAULT_CLASSES
    from fundus_plugins.datasets.prepare import plan_optic_discs
    cs = ClassSet(DEFAULT_CLASSES)
    records = read_idrid(idrid_tree[0], cs) + read_fgadr(fgadr_tree[0], cs)
    od_file = tmp_path / 'discs.csv'
    od_file.write_text('image,cx,cy,rx,ry,angle\nIDRiD_01.jpg,40,48,9,11,0\n'
                       '0002_B,40,48,9,11,0\n')
    plan, drawn, unused = plan_optic_discs(records, cs, od_file)
    assert plan['idrid_IDRiD_01'] == 'annotated' and unused == ['idrid_IDRiD_01']
    assert plan['fgadr_0002_B'] == 'drawn' and set(drawn) == {'fgadr_0002_B'}
    assert plan['fgadr_0001_A'] == 'predicted'
    with pytest.raises(ValueError, match='have no OD'):
        plan_optic_discs(records, ClassSet(['MA', 'EX']), od_file)
