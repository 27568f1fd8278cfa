"""The phantom written in the published raw layouts of IDRiD, FGADR and DDR
(fundus_plugins.phantom_raw, tools/make_phantom.py --layout): read back by the project's
readers and prepare_dataset as the real data would be."""
import hashlib
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fundus_plugins.classes import ClassSet
from fundus_plugins.datasets.layout import read_meta
from fundus_plugins.datasets.optic_disc import dice, ellipse_mask, read_od_ellipses
from fundus_plugins.datasets.prepare import (crop_pad_resize, field_of_view,
                                             prepare_dataset, read_image)
from fundus_plugins.datasets.sources import (read_ddr, read_fgadr, read_idrid,
                                             read_idrid_grades)
from fundus_plugins.phantom import draw_phantom, phantom_grades
from fundus_plugins.phantom_raw import (raw_frame, read_phantom_truth,
                                        write_raw_phantom)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tools'))
import make_phantom  # noqa: E402

SIZE, NUM, SEED = 64, 6, 4
# The classes each test prepares with: those the dataset annotates (no OD for FGADR / DDR,
# whose discs would need the disc model).
PREP_CLASSES = {'idrid': ['OD', 'MA', 'HE', 'EX', 'SE'],
                'fgadr': ['MA', 'HE', 'EX', 'SE', 'IRMA', 'NV'],
                'ddr': ['MA', 'HE', 'EX', 'SE']}
READERS = {'idrid': read_idrid, 'fgadr': read_fgadr, 'ddr': read_ddr}


def digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def raw(tmp_path_factory):
    """Each layout written once: layout -> (root, write_raw_phantom's result)."""
    out = {}
    for layout in ('idrid', 'fgadr', 'ddr'):
        root = tmp_path_factory.mktemp(layout)
        out[layout] = (root, write_raw_phantom(root, layout, NUM, SIZE, seed=SEED,
                                               progress=False))
    return out


def drawn(index: int, grade: int, classes=None):
    return draw_phantom(grade, SIZE, seed=[SEED, index], classes=classes)


def test_truth_holds_the_drawn_grades(raw):
    expected = phantom_grades(NUM, SEED)
    for layout, (root, result) in raw.items():
        truth = read_phantom_truth(root)
        assert [im.name for im in result['images']] == list(truth)
        assert [t.grade for t in truth.values()] == expected
        assert result['grades'] == {n: t.grade for n, t in truth.items()}
        for i, t in enumerate(truth.values()):   # classes in the frame, as drawn
            s = drawn(i, t.grade)
            frame = raw_frame(layout, SIZE)
            assert set(t.classes) == {c for c, m in s.masks.items() if frame.place(m).any()}
            assert (root / t.file).is_file()


def test_idrid_layout(raw):
    root, result = raw['idrid']
    classes = ClassSet(PREP_CLASSES['idrid'])
    recs = read_idrid(root, classes)
    assert [r.name for r in recs] == [f'idrid_IDRiD_0{i}' for i in range(1, NUM + 1)]
    sets = [r.image.parent.name for r in recs]
    assert sets == ['a. Training Set'] * 4 + ['b. Testing Set'] * 2   # 2/3 : 1/3
    # Segmentation images carry no grade (the grading CSV names other images).
    assert all(r.grade is None and r.grade_source == 'ungraded' for r in recs)
    truth = read_phantom_truth(root)
    for r in recs:
        t = truth[r.image.stem]
        assert r.image.suffix == '.jpg' and t.file.endswith(r.image.name)
        image = read_image(r.image)
        h, w = image.shape[:2]
        assert (h, w) == (round(0.8 * SIZE), round(0.8 * SIZE * 4288 / 2848))
        assert abs(w / h - 4288 / 2848) < 0.02
        fov = field_of_view(image)
        assert fov[0].any() and fov[-1].any()                 # circle cut at top and bottom
        assert not fov[:, 0].any() and not fov[:, -1].any()   # black at left and right
        assert r.masks['OD'] is not None                      # every image has its disc
        for code in classes.lesion_codes:
            assert (r.masks[code] is not None) == (code in t.classes), (r.name, code)
            if r.masks[code] is None:
                continue
            assert r.masks[code].name == f'{r.image.stem}_{code}.tif'
            mask = cv2.imread(str(r.masks[code]), cv2.IMREAD_UNCHANGED)   # BGR
            assert mask.shape == (h, w, 3)
            assert mask[..., 2].max() == 255 and not mask[..., :2].any()  # red channel only
    csv_path = (root / 'B. Disease Grading' / '2. Groundtruths'
                / 'a. IDRiD_Disease Grading_Training Labels.csv')
    header = csv_path.read_text().splitlines()[0]
    assert header == 'Image name,Retinopathy grade,Risk of macular edema '
    grading = read_idrid_grades(root)
    assert len(grading) == NUM and all(re.fullmatch(r'IDRiD_\d{3}', n) for n in grading)
    assert not set(grading) & {r.image.stem for r in recs}
    assert result['od_masks'] is None and not (root / 'phantom_od').exists()


def test_fgadr_layout(raw):
    root, result = raw['fgadr']
    classes = ClassSet(PREP_CLASSES['fgadr'] + ['OD'])
    recs = read_fgadr(root, classes)
    truth = read_phantom_truth(root)
    assert [r.image.stem for r in recs] == list(truth)
    assert all(re.fullmatch(r'\d{4}_[A-Z]\.png', r.image.name) for r in recs)
    # No header: the first row is an image.
    first = (root / 'Seg-set' / 'DR_Seg_Grading_Label.csv').read_text().splitlines()[0]
    assert first == f'{recs[0].image.name},{truth[recs[0].image.stem].grade}'
    # No optic-disc masks anywhere in the published layout.
    assert 'OD' not in recs[0].masks and 'OD' not in recs[0].annotated
    assert sorted(p.name for p in (root / 'Seg-set').iterdir()) == sorted(
        ['Original_Images', 'DR_Seg_Grading_Label.csv', 'Microaneurysms_Masks',
         'Hemohedge_Masks', 'HardExudate_Masks', 'SoftExudate_Masks', 'IRMA_Masks',
         'Neovascularization_Masks'])
    for i, r in enumerate(recs):
        t = truth[r.image.stem]
        assert (r.grade, r.grade_source) == (t.grade, 'annotated')
        s = drawn(i, t.grade)
        # Square PNG frame: the phantom itself, byte for byte; masks exactly as drawn.
        assert np.array_equal(read_image(r.image), s.image)
        for code, path in r.masks.items():
            assert (path is not None) == (code in t.classes) == s.masks.get(
                code, np.zeros(1, bool)).any()
            if path is not None:
                mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                assert mask.ndim == 2 and np.array_equal(mask > 0, s.masks[code])
        # The true disc, kept aside: as a mask and as an ellipse in --od-file format.
        od = cv2.imread(str(root / 'phantom_od' / f'{r.image.stem}.png'), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(od > 0, s.masks['OD'])
        ellipse = read_od_ellipses(root / 'phantom_od.csv')[r.image.stem]
        assert dice(ellipse_mask(od.shape, ellipse), s.masks['OD']) > 0.9


def test_ddr_layout(raw):
    root, result = raw['ddr']
    classes = ClassSet(PREP_CLASSES['ddr'] + ['OD'])
    recs = read_ddr(root, classes)
    truth = read_phantom_truth(root)
    assert sorted(r.image.stem for r in recs) == sorted(truth)
    splits = [r.image.parent.parent.name for r in sorted(recs, key=lambda r: r.name)]
    assert splits == ['train'] * 3 + ['valid'] + ['test'] * 2     # about DDR's 383/149/225
    assert not (root / 'lesion_segmentation' / 'train' / 'label' / 'OD').exists()
    for r in recs:
        t = truth[r.image.stem]
        assert r.image.suffix == '.jpg' and 'OD' not in r.masks
        assert (r.grade, r.grade_source) == (t.grade, 'annotated')
        split = r.image.parent.parent.name
        line = f'{r.image.name} {t.grade}'
        assert line in (root / 'DR_grading' / f'{split}.txt').read_text().splitlines()
        image = read_image(r.image)
        assert image.shape[:2] == (SIZE, round(SIZE * 4 / 3))
        for code, path in r.masks.items():   # DDR keeps a file per class, blank if none
            mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            assert mask.shape == image.shape[:2]
            assert mask.any() == (code in t.classes)
        assert (root / 'phantom_od' / f'{r.image.stem}.png').is_file()


@pytest.mark.parametrize('layout', ['idrid', 'fgadr', 'ddr'])
def test_prepared_labels_agree_with_the_phantom(raw, layout, tmp_path):
    root, _ = raw[layout]
    classes = ClassSet(PREP_CLASSES[layout])
    recs = READERS[layout](root, classes)
    out = tmp_path / 'prepared'
    prepare_dataset(recs, out, classes, size=SIZE, progress=False, log=lambda *a: None)
    rows = {r.name: r for r in read_meta(out)}
    truth = read_phantom_truth(root)
    order = list(truth)
    frame = raw_frame(layout, SIZE)
    for r in recs:
        t = truth[r.image.stem]
        assert rows[r.name].grade == (None if layout == 'idrid' else t.grade)
        label = cv2.imread(str(out / 'labels' / f'{r.name}.png'), cv2.IMREAD_UNCHANGED)
        # The phantom's own label in the same classes, placed in the frame and prepared
        # with the phantom's own field of view.
        s = drawn(order.index(r.image.stem), t.grade, classes)
        _, expect = crop_pad_resize(frame.place(s.image), frame.place(s.label),
                                    frame.place(s.fov), SIZE)
        assert set(np.unique(label)) == set(np.unique(expect)), r.name
        assert (label == expect).mean() > 0.95, r.name
        # The field of view is found in the frame (JPEG blurs its rim by a pixel at this
        # size): black corners, retina in the centre.
        found, true = field_of_view(read_image(r.image)), frame.place(s.fov)
        assert (found & true).sum() / (found | true).sum() > 0.95, r.name
        assert label[0, 0] == 0 and label[SIZE // 2, SIZE // 2] != 0


def test_fgadr_true_discs_as_od_file(raw, tmp_path):
    root, result = raw['fgadr']
    classes = ClassSet(['OD', 'MA'])
    recs = read_fgadr(root, classes)
    out = tmp_path / 'prepared'
    prepare_dataset(recs, out, classes, size=SIZE, progress=False,
                    od_file=result['od_file'], log=lambda *a: None)
    truth = read_phantom_truth(root)
    order = list(truth)
    for row in read_meta(out):
        assert row.od_source == 'drawn'
        stem = row.name[len('fgadr_'):]
        label = cv2.imread(str(out / 'labels' / f'{row.name}.png'), cv2.IMREAD_UNCHANGED)
        s = drawn(order.index(stem), truth[stem].grade, classes)
        _, expect = crop_pad_resize(s.image, s.label, s.fov, SIZE)
        od = classes.index('OD')
        assert dice(label == od, expect == od) > 0.85


def test_same_seed_same_bytes_whatever_the_workers(raw, tmp_path):
    root, _ = raw['idrid']
    again = tmp_path / 'again'
    write_raw_phantom(again, 'idrid', NUM, SIZE, seed=SEED, workers=2, progress=False)
    assert digest(again) == digest(root)
    other = tmp_path / 'other'
    write_raw_phantom(other, 'idrid', NUM, SIZE, seed=SEED + 1, progress=False)
    assert digest(other) != digest(root)


def test_bad_arguments_and_existing_folder(tmp_path):
    with pytest.raises(ValueError,
                       match=r"layout must be one of idrid, fgadr, ddr, got 'messidor'"):
        write_raw_phantom(tmp_path / 'a', 'messidor', 2, SIZE)
    with pytest.raises(ValueError, match=r"layout must be .* got 'prepared'"):
        write_raw_phantom(tmp_path / 'a', 'prepared', 2, SIZE)
    with pytest.raises(ValueError, match=r'num must be .* at least 1, got 0'):
        write_raw_phantom(tmp_path / 'a', 'fgadr', 0, SIZE)
    with pytest.raises(ValueError, match=r'size must be .* at least 32 .* got 16'):
        write_raw_phantom(tmp_path / 'a', 'ddr', 2, 16)
    with pytest.raises(ValueError, match='5 non-negative weights'):
        write_raw_phantom(tmp_path / 'a', 'ddr', 2, SIZE, distribution=[1, 2])
    assert not (tmp_path / 'a').exists()   # nothing written on a bad argument
    root = tmp_path / 'fg'
    write_raw_phantom(root, 'fgadr', 3, 32, progress=False)
    with pytest.raises(FileExistsError, match=re.escape(str(root))):
        write_raw_phantom(root, 'fgadr', 2, 32, progress=False)
    # overwrite replaces the folder whole, once the new layout is complete: no stale
    # image of the first run is left to read.
    (root / 'notes.txt').write_text('old')
    write_raw_phantom(root, 'fgadr', 2, 32, progress=False, overwrite=True)
    assert len(read_fgadr(root, ClassSet(['MA']))) == 2
    assert len(list((root / 'phantom_od').iterdir())) == 2
    assert not (root / 'notes.txt').exists()


def test_make_phantom_tool_raw_layout(tmp_path, capsys):
    out = tmp_path / 'DDR'
    assert make_phantom.main(['--layout', 'ddr', '--num', '5', '--size', '48', '--out',
                              str(out), '--seed', '2', '--grade-dist', '0', '0', '1', '1',
                              '1']) == 0
    printed = capsys.readouterr().out
    assert '5 phantom images in the ddr layout' in printed and 'img/s' in printed
    assert 'lesion_segmentation/train/image: 3 images' in printed
    recs = read_ddr(out, ClassSet(['MA', 'HE', 'EX', 'SE']))
    assert len(recs) == 5 and all(r.grade in (2, 3, 4) for r in recs)
    # No prepared-root summary or preview for a raw layout.
    assert not (out / 'summary.json').exists() and not (out / 'preview.png').exists()
    with pytest.raises(SystemExit):
        make_phantom.main(['--layout', 'fgadr', '--num', '2', '--out', str(tmp_path / 'x'),
                           '--classes', 'OD'])
    assert '--classes applies to --layout prepared only' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        make_phantom.main(['--layout', 'messidor', '--num', '2', '--out', str(tmp_path / 'x')])
    assert "invalid choice: 'messidor'" in capsys.readouterr().err
    with pytest.raises(FileExistsError, match='not empty'):
        make_phantom.main(['--layout', 'ddr', '--num', '2', '--size', '48', '--out', str(out)])
