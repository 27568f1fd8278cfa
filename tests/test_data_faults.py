"""No silent corruption, no lost compute in the data tools: masks with an alpha channel,
conflicting grade rows, faulty inputs in one line, an --out that cannot be swapped in
whole (a mount point), a full disk."""
import re
import sys

import cv2
import numpy as np
import pytest

import fundus_plugins.datasets.prepare as prepare
import fundus_plugins.errors as errors
from fundus_plugins.classes import ClassSet
from _tool import run_tool
from fundus_plugins.datasets.layout import label_path, read_meta
from fundus_plugins.datasets.prepare import atomic_root, read_mask, swap_problem
from fundus_plugins.datasets.sources import read_ddr, read_fgadr_grades, read_idrid_grades
from fundus_plugins.errors import DiskFull, UserError

from conftest import REPO

sys.path.insert(0, str(REPO / 'tools'))
import make_phantom  # noqa: E402
import prepare_data  # noqa: E402


def _tool(monkeypatch, capsys, module, argv, kind='atomic'):
    monkeypatch.setattr(sys, 'argv', [module.__file__, *argv])
    capsys.readouterr()
    code = run_tool(lambda: module.main(argv), kind)
    captured = capsys.readouterr()
    return code, captured.err, captured.out


def _error_line(err: str) -> str:
    assert 'Traceback' not in err, err[-3000:]
    return [ln for ln in err.splitlines() if ln.startswith('error: ')][-1]


def test_a_mask_with_an_opaque_alpha_is_read_from_its_colour(fgadr_tree, tmp_path):
    fgadr, truth = fgadr_tree
    name = '0005_E.png'
    he = fgadr / 'Seg-set' / 'Hemohedge_Masks' / name
    grey = cv2.imread(str(he), cv2.IMREAD_UNCHANGED)
    args = ['--fgadr', str(fgadr), '--classes', 'HE', '--size', '64']
    assert prepare_data.main(args + ['--out', str(tmp_path / 'grey')]) == 0
    # The same mask as RGBA, alpha 255 everywhere: before, the maximum over all channels
    # made the whole image HE.
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    assert cv2.imwrite(str(he), rgba)
    assert cv2.imread(str(he), cv2.IMREAD_UNCHANGED).shape[2] == 4
    assert (read_mask(he, grey.shape) == (grey > 0)).all()
    assert prepare_data.main(args + ['--out', str(tmp_path / 'rgba')]) == 0
    a = cv2.imread(str(label_path(tmp_path / 'grey', 'fgadr_0005_E')), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(label_path(tmp_path / 'rgba', 'fgadr_0005_E')), cv2.IMREAD_UNCHANGED)
    assert (a == b).all() and 0 < (b == 2).mean() < 0.2
    # An alpha that is not opaque everywhere may be what draws the mask: refused.
    rgba[..., 3] = np.where(grey > 0, 255, 0)
    assert cv2.imwrite(str(he), rgba)
    with pytest.raises(UserError, match=rf'{name}: the mask has an alpha channel that is '
                                        rf'not opaque everywhere'):
        read_mask(he, grey.shape)


def test_conflicting_grade_rows_are_an_error_naming_file_lines_and_grades(tmp_path):
    csv = tmp_path / 'DR_Seg_Grading_Label.csv'
    csv.write_text('0001_A.png,1\n0002_B.png,2\n0001_A.png,4\n0002_B.png,2\n')
    with pytest.raises(UserError) as exc:
        read_fgadr_grades(csv)
    assert str(exc.value).startswith(f"{csv}:3: image '0001_A.png' has grade 4 here but 1 "
                                     f"at {csv}:1; the grade file lists it twice")
    csv.write_text('0001_A.png,1\n0001_A.png,1\n')  # the same grade twice: one row
    assert read_fgadr_grades(csv) == {'0001_A.png': 1}
    # IDRiD: across its two grading files.
    folder = tmp_path / 'IDRiD' / 'B. Disease Grading' / '2. Groundtruths'
    folder.mkdir(parents=True)
    head = 'Image name,Retinopathy grade,Risk of macular edema \n'
    (folder / 'a.csv').write_text(head + 'IDRiD_001,2,0\n')
    (folder / 'b.csv').write_text(head + 'IDRiD_002,0,0\nIDRiD_001,3,0\n')
    with pytest.raises(ValueError, match=rf"b.csv:3: image 'IDRiD_001' has grade 3 here but "
                                         rf"2 at .*a.csv:2"):
        read_idrid_grades(tmp_path / 'IDRiD')
    # DDR: an ungradable (5) row and a graded one for the same image.
    grading = tmp_path / 'DDR' / 'DR_grading'
    grading.mkdir(parents=True)
    (grading / 'train.txt').write_text('007.jpg 5\n')
    (grading / 'test.txt').write_text('007.jpg 2\n')
    (tmp_path / 'DDR' / 'lesion_segmentation').mkdir()
    with pytest.raises(ValueError, match=r"image '007' has grade 2 here but ungradable"):
        read_ddr(tmp_path / 'DDR', ClassSet(['EX']))


@pytest.mark.parametrize('fault, expect', [
    ('truncated jpg', r'IDRiD_02.jpg: cannot decode image \(truncated, corrupt or not an '
                      r'image file\); copy it again'),
    ('empty tif', r'IDRiD_03_EX.tif: the mask file is empty \(0 bytes\)'),
    ('half-size mask', r'IDRiD_03_MA.tif: mask is 72x48 \(WxH\) but its image is 144x96'),
    ('grade 7', r'a. IDRiD_Disease Grading_Training Labels.csv:3: grade 7 is outside 0-4'),
    ('black image', r'IDRiD_04.jpg: no field of view found \(the image is almost entirely '
                    r'dark\)')])
def test_prepare_data_faults_are_one_line_naming_the_file(idrid_tree, tmp_path, monkeypatch,
                                                          capsys, fault, expect):
    root, _ = idrid_tree
    seg = root / 'A. Segmentation'
    images = seg / '1. Original Images'
    masks = seg / '2. All Segmentation Groundtruths' / 'a. Training Set'
    if fault == 'truncated jpg':
        jpg = images / 'a. Training Set' / 'IDRiD_02.jpg'
        jpg.write_bytes(jpg.read_bytes()[:len(jpg.read_bytes()) // 2])
    elif fault == 'empty tif':
        (masks / '3. Hard Exudates' / 'IDRiD_03_EX.tif').write_bytes(b'')
    elif fault == 'half-size mask':
        cv2.imwrite(str(masks / '1. Microaneurysms' / 'IDRiD_03_MA.tif'),
                    np.zeros((48, 72), np.uint8))
    elif fault == 'grade 7':
        csv = root / 'B. Disease Grading' / '2. Groundtruths' / \
            'a. IDRiD_Disease Grading_Training Labels.csv'
        csv.write_text(csv.read_text().replace('IDRiD_01,3,2', 'IDRiD_01,7,2'))
    else:
        cv2.imwrite(str(images / 'b. Testing Set' / 'IDRiD_04.jpg'),
                    np.zeros((96, 144, 3), np.uint8))
    out = tmp_path / 'prepared'
    code, err, _ = _tool(monkeypatch, capsys, prepare_data,
                         ['--idrid', str(root), '--out', str(out), '--size', '32'])
    assert code == 2
    line = _error_line(err)
    assert len([ln for ln in err.splitlines() if ln.startswith('error: ')]) == 1
    assert re.search(expect, line), line
    assert not out.exists() and not (tmp_path / '.prepared.partial').exists()


def test_an_out_that_cannot_be_swapped_is_written_in_place_marked_incomplete(
        tmp_path, monkeypatch, capsys):
    # A real mount point is detected (renaming it fails with EBUSY).
    assert swap_problem('/proc') == 'it is a mount point'
    assert swap_problem(tmp_path) is None and swap_problem(tmp_path / 'new') is None
    # The stand-in: tmp_path/'mnt' reported as a mount point.
    out = tmp_path / 'mnt'
    out.mkdir()
    real = prepare.swap_problem
    monkeypatch.setattr(prepare, 'swap_problem',
                        lambda p: 'it is a mount point' if str(p) == str(out) else real(p))
    argv = ['--num', '4', '--size', '32', '--out', str(out), '--no-preview']
    seen = []
    import fundus_plugins.phantom as phantom
    original = phantom.write_meta

    def spy(root, rows):  # while the run writes: in place, marked incomplete
        seen.append((str(root), (out / '.incomplete').is_file()))
        return original(root, rows)

    monkeypatch.setattr(phantom, 'write_meta', spy)
    code, err, stdout = _tool(monkeypatch, capsys, make_phantom, argv)
    assert code == 0, err[-3000:]
    assert seen == [(str(out), True)]
    assert 'it is a mount point, so the output cannot be written beside it and swapped in ' \
           'whole; writing in place, marked incomplete' in err + stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ['mnt']  # no .partial beside it
    assert not (out / '.incomplete').exists() and len(read_meta(out)) == 4

    # A stopped in-place run leaves the mark; readers refuse the folder, and the next run
    # writes it again (no --overwrite needed: it is our own incomplete output).
    monkeypatch.setattr(phantom, 'write_meta', lambda root, rows: (_ for _ in ()).throw(
        KeyboardInterrupt))
    code, err, _ = _tool(monkeypatch, capsys, make_phantom, argv + ['--overwrite'])
    assert code == 130
    assert f'interrupted: {out} was being written in place and is marked incomplete' in err
    assert (out / '.incomplete').is_file()
    with pytest.raises(UserError, match='incomplete: a run writing it in place has not '
                                        'finished'):
        read_meta(out)
    monkeypatch.setattr(phantom, 'write_meta', original)
    code, err, _ = _tool(monkeypatch, capsys, make_phantom, argv)
    assert code == 0, err[-3000:]
    assert not (out / '.incomplete').exists() and len(read_meta(out)) == 4


def test_a_full_disk_is_named_with_the_path(tmp_path, monkeypatch, capsys):
    # /dev/full answers every write with ENOSPC, as a full file system does.
    with pytest.raises(DiskFull, match=r'/dev/full: the disk is full \(no space left on the '
                                       r'device: .* free there\); writing 10 bytes failed'):
        errors.write_file('/dev/full', b'0123456789')
    # A tool whose image writes hit a full disk: one line naming the file, nothing kept.
    real_open = open

    def full_open(path, mode='r', *args, **kwargs):
        if 'w' in mode and str(path).endswith('.png'):
            return real_open('/dev/full', mode, *args, **kwargs)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(errors, 'open', full_open, raising=False)
    out = tmp_path / 'ph'
    code, err, _ = _tool(monkeypatch, capsys, make_phantom,
                         ['--num', '4', '--size', '32', '--out', str(out), '--no-preview'])
    assert code == 2
    line = _error_line(err)
    assert '/.ph.partial/' in line and '.png: the disk is full (no space left on the ' \
                                      'device' in line
    assert line.endswith('free some space or write to another disk, then run again')
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_atomic_root_follows_a_symbolic_link(tmp_path):
    target = tmp_path / 'disk2' / 'data'
    target.parent.mkdir()
    link = tmp_path / 'data'
    link.symlink_to(target, target_is_directory=True)
    with atomic_root(link) as tmp:
        (tmp / 'meta.csv').write_text('name\n')
    assert link.is_symlink() and (target / 'meta.csv').is_file()
