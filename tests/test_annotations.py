"""Per-source annotations: meta.csv's annotated / od_source columns, segmentation ignoring
what a source does not annotate, and the checks on names."""
import dataclasses
import shutil

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope

from fundus_plugins.datasets import FundusDataset, read_meta, write_meta
from fundus_plugins.datasets.layout import META_COLUMNS, label_path
from fundus_plugins.segmentation import FundusSegDataset

CODES = ('OD', 'MA', 'HE', 'EX', 'SE', 'IRMA', 'NV')


@pytest.fixture
def partial_root(phantom_root, tmp_path):
    """The shared phantom with its first four training images marked as from a source
    without disc masks, their discs 'predicted'."""
    root = tmp_path / 'partial'
    shutil.copytree(phantom_root, root)
    rows = read_meta(root)
    fgadr = {r.name for r in rows if r.split == 'train'}
    fgadr = set(sorted(fgadr)[:4]) | {sorted(r.name for r in rows if r.split == 'test')[0]}
    write_meta(root, [dataclasses.replace(r, dataset='fgadr', od_source='predicted',
                                          annotated=tuple(c for c in CODES if c != 'OD'))
                      if r.name in fgadr else dataclasses.replace(r, od_source='annotated')
                      for r in rows])
    return root, fgadr


def test_meta_round_trip_and_old_files(partial_root, phantom_root, tmp_path):
    root, fgadr = partial_root
    header = (root / 'meta.csv').read_text().splitlines()[0]
    assert header == ','.join(META_COLUMNS)
    rows = {r.name: r for r in read_meta(root)}
    some = sorted(fgadr)[0]
    assert rows[some].annotated == ('MA', 'HE', 'EX', 'SE', 'IRMA', 'NV')
    assert rows[some].od_source == 'predicted' and not rows[some].annotates('OD')
    assert rows[some].annotates('RET') and rows[some].annotates('MA')
    # A meta.csv written before the columns existed: every class annotated.
    old = tmp_path / 'old'
    shutil.copytree(phantom_root, old)
    lines = (old / 'meta.csv').read_text().splitlines()
    (old / 'meta.csv').write_text('\n'.join(','.join(ln.split(',')[:5]) for ln in lines) + '\n')
    assert all(r.annotated is None and r.annotates('OD') for r in read_meta(old))


@pytest.mark.parametrize('column, value, message', [
    ('od_source', 'guessed', "od_source 'guessed'"),
    ('annotated', 'OD MA-1', 'not class codes'),
    ('annotated', 'OD OD', 'lists a class twice'),
    ('name', '../../x', 'not a plain file stem'),
    ('name', 'sub/x', 'not a plain file stem'),
])
def test_bad_meta_cells_name_the_row(partial_root, column, value, message):
    root, _ = partial_root
    lines = (root / 'meta.csv').read_text().splitlines()
    cells = lines[3].split(',')
    cells[META_COLUMNS.index(column)] = value
    lines[3] = ','.join(cells)
    (root / 'meta.csv').write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match=message) as err:
        read_meta(root)
    assert 'meta.csv:4' in str(err.value)


def _label(ds, i):
    return ds[i]['gt_seg_map'] if 'gt_seg_map' in ds[i] else None


def test_segmentation_ignores_unannotated_classes_and_gans_keep_them(partial_root):
    root, fgadr = partial_root
    with DefaultScope.overwrite_default_scope('mmseg'):
        pipe = [dict(type='LoadFundusPair')]
        seg = FundusSegDataset(str(root), split='train', pipeline=pipe, classes=list(CODES))
        gan = FundusDataset(str(root), split='train', pipeline=pipe, classes=list(CODES))
    od = seg.class_set.index('OD')
    for i in range(len(seg)):
        info = seg.get_data_info(i)
        stored = cv2.imread(str(label_path(root, info['name'])), cv2.IMREAD_UNCHANGED)
        s_lab, g_lab = seg[i]['gt_seg_map'], gan[i]['gt_seg_map']
        assert np.array_equal(g_lab, stored)  # the GANs see the filled disc as OD
        if info['name'] in fgadr:
            assert info['annotated'] == ('MA', 'HE', 'EX', 'SE', 'IRMA', 'NV')
            assert (stored == od).any()
            assert np.array_equal(s_lab == 255, stored == od)  # ignored, not "retina"
            assert np.array_equal(s_lab[stored != od], stored[stored != od])
        else:
            assert info['annotated'] == CODES and np.array_equal(s_lab, stored)


def test_out_of_range_label_values_are_reported_as_stored(phantom_root, tmp_path):
    root = tmp_path / 'bad'
    shutil.copytree(phantom_root, root)
    name = read_meta(root)[0].name
    lab = cv2.imread(str(label_path(root, name)), cv2.IMREAD_UNCHANGED)
    lab[0, 0] = 200
    cv2.imwrite(str(label_path(root, name)), lab)
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = FundusSegDataset(str(root), split=None, pipeline=[dict(type='LoadFundusPair')])
        idx = [ds.get_data_info(i)['name'] for i in range(len(ds))].index(name)
        with pytest.raises(ValueError, match='label value 200 outside 0..8'):
            ds[idx]
