"""tools/inpaint_lesions.py and fundus_plugins.inpaint.apply: lesion maps placed on real
healthy images and painted by a (tiny, briefly trained) inpainting translator. Outside
the hole every output pixel is the healthy image's; the composite label keeps the healthy
image's disc and field of view; no lesion lies outside the field of view; the output is
seeded, written whole, and refuses what it cannot use."""
import csv
import json
import importlib.util
import shutil

import cv2
import numpy as np
import pytest

from fundus_plugins.classes import ClassSet
from fundus_plugins.datasets.layout import image_path, label_path, read_meta
from fundus_plugins.inpaint import read_inpaint_records

from conftest import INPAINT_ITERS, REPO, write_config

spec = importlib.util.spec_from_file_location('inpaint_lesions',
                                              REPO / 'tools/inpaint_lesions.py')
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)

CS = ClassSet(['OD', 'MA', 'HE', 'EX', 'SE'])
BG, OD = CS.index('BG'), CS.index('OD')


@pytest.fixture(scope='module')
def trained(inpaint_trained, tmp_path_factory):
    """(phantom root, config file, checkpoint) of the tiny inpainting run."""
    root, work, _, _, options = inpaint_trained
    config = write_config(REPO / 'configs/inpaint_fundus_demo.py',
                          tmp_path_factory.mktemp('cfg') / 'inpaint_tiny.py', options)
    return root, str(config), str(work / f'iter_{INPAINT_ITERS}.pth')


def _run(trained, out, *extra):
    root, config, ckpt = trained
    argv = [config, ckpt, '--healthy', str(root), '--out', str(out), '--no-progress', *extra]
    assert tool.main(argv) == 0
    return root


def _read(path, flag=cv2.IMREAD_UNCHANGED):
    img = cv2.imread(str(path), flag)
    assert img is not None, path
    return img


def _healthy(root, name):
    image = cv2.cvtColor(_read(image_path(root, name)), cv2.COLOR_BGR2RGB)
    return image, _read(label_path(root, name))


@pytest.fixture(scope='module')
def real_out(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp('inp') / 'out'
    _run(trained, out, '--real-lesions', str(trained[0]), '--num-per-grade', '2')
    return out


def test_outside_the_hole_every_pixel_is_the_healthy_image(trained, real_out):
    root = trained[0]
    records = read_inpaint_records(real_out)
    assert len(records) == 8  # 2 maps of each of grades 1-4
    assert {r['grade'] for r in records} == {1, 2, 3, 4}
    train0 = {r.name for r in read_meta(root) if r.grade == 0 and r.split == 'train'}
    painted = 0
    for r in records:
        assert r['healthy'] in train0  # only healthy training images are used
        image, label = _healthy(root, r['healthy'])
        out = cv2.cvtColor(_read(image_path(real_out, r['name'])), cv2.COLOR_BGR2RGB)
        hole = _read(real_out / 'holes' / f"{r['name']}.png") > 0
        assert set(np.unique(_read(real_out / 'holes' / f"{r['name']}.png"))) <= {0, 255}
        assert np.array_equal(out[~hole], image[~hole])
        painted += int((out[hole] != image[hole]).any())
        comp = _read(label_path(real_out, r['name']))
        # The healthy image's field of view and disc are kept exactly, and the hole and
        # every placed lesion lie in the field of view.
        assert np.array_equal(comp == BG, label == BG)
        assert np.array_equal(comp == OD, label == OD)
        assert not hole[label == BG].any()
        changed = comp != label
        assert hole[changed].all()  # every placed lesion pixel is painted
    assert painted > 0  # the model did paint something


def test_the_output_is_a_prepared_root_with_grid_and_meta(real_out):
    rows = read_meta(real_out)
    assert {r.grade_source for r in rows} == {'synthetic'}
    assert {r.split for r in rows} == {'train'}
    assert {r.dataset for r in rows} == {'inpaint'}
    assert sorted(r.name for r in rows) == sorted(r['name'] for r in
                                                  read_inpaint_records(real_out))
    grid = _read(real_out / 'grid.png')
    assert grid.shape[0] > 4 * 64 and grid.shape[1] > 4 * 64  # 4 rows x 4 grades of 64 px
    assert not list(real_out.parent.glob('.*partial*'))


def test_same_seed_same_files_other_seed_other_composites(trained, real_out, tmp_path):
    again = tmp_path / 'again'
    _run(trained, again, '--real-lesions', str(trained[0]), '--num-per-grade', '2')
    for path in sorted(real_out.rglob('*.png')) + [real_out / 'inpaint.csv']:
        assert path.read_bytes() == (again / path.relative_to(real_out)).read_bytes(), path
    other = tmp_path / 'other'
    _run(trained, other, '--real-lesions', str(trained[0]), '--num-per-grade', '2',
         '--seed', '1')
    assert (other / 'inpaint.csv').read_text() != (real_out / 'inpaint.csv').read_text()


def test_label_maps_are_each_placed_once_and_grade_0_maps_change_nothing(trained, tmp_path):
    root = trained[0]
    labels = tmp_path / 'labels'
    shutil.copytree(root, labels)  # a prepared root serves as a root of lesion maps
    shutil.rmtree(labels / 'images')
    out = tmp_path / 'out'
    _run(trained, out, '--labels', str(labels))
    records = read_inpaint_records(out)
    assert len(records) == len(read_meta(root))
    # each map once, named after it
    assert sorted(r['name'].split('_on_')[0] for r in records) == \
        sorted(r.name for r in read_meta(root))
    for r in records:
        if r['grade'] == 0:  # the phantom's grade-0 maps have no lesions: nothing painted
            assert not _read(out / 'holes' / f"{r['name']}.png").any()
            image, _ = _healthy(root, r['healthy'])
            out_img = cv2.cvtColor(_read(image_path(out, r['name'])), cv2.COLOR_BGR2RGB)
            assert np.array_equal(out_img, image)


def test_healthy_images_are_dealt_evenly(trained, real_out):
    counts = {}
    for r in read_inpaint_records(real_out):
        counts[r['healthy']] = counts.get(r['healthy'], 0) + 1
    assert max(counts.values()) - min(counts.values()) <= 1


def test_refusals_name_what_was_wrong(trained, tmp_path, capsys):
    root, config, ckpt = trained
    with pytest.raises(SystemExit):  # --real-lesions without --num-per-grade
        tool.parse_args([config, ckpt, '--healthy', str(root), '--out', 'x',
                         '--real-lesions', str(root)])
    assert '--num-per-grade' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args([config, ckpt, '--healthy', str(root), '--out', 'x',
                         '--real-lesions', str(root), '--num-per-grade', '1', '--grades', '7'])
    # Not an inpainting config.
    with pytest.raises(SystemExit, match='SPADEInpaintGAN'):
        tool.main([str(REPO / 'configs/spade_fundus_demo.py'), ckpt, '--healthy', str(root),
                   '--out', str(tmp_path / 'o'), '--real-lesions', str(root),
                   '--num-per-grade', '1'])
    # A healthy root without grade-0 training images.
    sick = tmp_path / 'sick'
    shutil.copytree(root, sick)
    meta = sick / 'meta.csv'
    rows = list(csv.reader(meta.open()))
    rows = [rows[0]] + [r for r in rows[1:] if r[1] != '0']
    with meta.open('w', newline='') as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(ValueError, match='grade-0'):
        tool.main([config, ckpt, '--healthy', str(sick), '--out', str(tmp_path / 'o'),
                   '--real-lesions', str(root), '--num-per-grade', '1'])
    assert not (tmp_path / 'o').exists()
    # A size the generator cannot take.
    with pytest.raises(ValueError, match='divisible'):
        tool.main([config, ckpt, '--healthy', str(root), '--out', str(tmp_path / 'o'),
                   '--real-lesions', str(root), '--num-per-grade', '1', '--size', '60'])
    # An existing output folder is kept unless --overwrite.
    (tmp_path / 'kept').mkdir()
    (tmp_path / 'kept' / 'note.txt').write_text('mine')
    with pytest.raises(Exception, match='overwrite'):
        tool.main([config, ckpt, '--healthy', str(root), '--out', str(tmp_path / 'kept'),
                   '--real-lesions', str(root), '--num-per-grade', '1'])
    assert (tmp_path / 'kept' / 'note.txt').read_text() == 'mine'


def test_measure_synthetic_adds_the_seams_of_an_inpainted_root(trained, real_out,
                                                                seg_trained, tmp_path):
    spec = importlib.util.spec_from_file_location('measure_synthetic',
                                                  REPO / 'tools/measure_synthetic.py')
    measure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(measure)
    config, ckpt, _ = seg_trained
    out = tmp_path / 'q'
    assert measure.main([str(config), str(ckpt), '--synthetic', str(real_out), '--real',
                         str(trained[0]), '--out', str(out), '--no-progress']) == 0
    result = json.loads((tmp_path / 'q.json').read_text())
    assert result['seams']['images'] + result['seams']['empty_holes'] == 8
    assert result['seams']['seam_ratio'] > 0
    assert 'Seams at the edge' in (tmp_path / 'q.md').read_text()
    # --healthy with a root that is not inpainted is refused.
    with pytest.raises(SystemExit, match='inpaint.csv'):
        measure.main([str(config), str(ckpt), '--synthetic', str(trained[0]), '--real',
                      str(trained[0]), '--healthy', str(trained[0]), '--out', str(out),
                      '--no-progress'])
