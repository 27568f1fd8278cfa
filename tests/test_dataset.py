import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from fundus_plugins.classes import ClassSet, register_lesion_class
from fundus_plugins.datasets import FundusDataset, read_meta
from fundus_plugins.datasets.prepare import prepare_dataset
from fundus_plugins.datasets.sources import read_fgadr


def test_dataset_reads_split_and_metainfo(phantom_root):
    rows = read_meta(phantom_root)
    train = FundusDataset(str(phantom_root), classes=['OD', 'MA', 'HE', 'EX', 'SE'], split='train')
    test = FundusDataset(str(phantom_root), classes=['OD', 'MA', 'HE', 'EX', 'SE'], split='test')
    assert len(train) + len(test) == len(rows) == 20 and len(test) == 4
    assert not {train[i]['name'] for i in range(len(train))} & \
        {test.get_data_info(i)['name'] for i in range(len(test))}
    assert train.metainfo['classes'] == ('BG', 'RET', 'OD', 'MA', 'HE', 'EX', 'SE')
    assert len(train.metainfo['palette']) == 7
    g4 = FundusDataset(str(phantom_root), grades=[4], split=None)
    assert {g4.get_data_info(i)['grade'] for i in range(len(g4))} == {4}


def test_dataset_errors_name_the_key_or_file(phantom_root, tmp_path):
    with pytest.raises(ValueError, match=r'grades \[7\] outside 0-4'):
        FundusDataset(str(phantom_root), grades=[7])
    with pytest.raises(KeyError, match="unknown lesion class 'VESSELZ'"):
        FundusDataset(str(phantom_root), classes=['OD', 'VESSELZ'])
    with pytest.raises(ValueError, match="split must be one of"):
        FundusDataset(str(phantom_root), split='val')
    with pytest.raises(FileNotFoundError, match='data_root not found'):
        FundusDataset(str(tmp_path / 'none'))
    with pytest.raises(TypeError, match='not_a_key'):
        FundusDataset(str(phantom_root), not_a_key=1)


def test_remap_to_fewer_classes(phantom_root):
    full = FundusDataset(str(phantom_root), classes=['OD', 'MA', 'HE', 'EX', 'SE', 'IRMA', 'NV'],
                         split=None, pipeline=[dict(type='LoadFundusPair')])
    odex = FundusDataset(str(phantom_root), classes=['OD', 'EX'], split=None,
                         pipeline=[dict(type='LoadFundusPair')])
    for i in range(len(full)):
        a, b = full[i], odex[i]
        assert a['img'].shape == (64, 64, 3) and a['img'].dtype == np.uint8
        la, lb = a['gt_seg_map'], b['gt_seg_map']
        assert lb.max() <= 3
        assert ((la == 2) == (lb == 2)).all()          # OD keeps its pixels
        assert ((la == 5) == (lb == 3)).all()          # EX: index 5 -> 3
        others = np.isin(la, [3, 4, 6, 7, 8])
        assert (lb[others] == 1).all()                 # unselected lesions -> RET


def test_mmseg_pipeline(phantom_root):
    from mmseg.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(dict(
            type='FundusDataset', data_root=str(phantom_root), classes=['OD', 'EX'],
            pipeline=[dict(type='LoadFundusPair', channel_order='bgr'),
                      dict(type='ResizeFundus', size=32),
                      dict(type='RandomFlipFundus', prob=1.0),
                      dict(type='PackSegInputs')]))
    out = ds[0]
    assert out['inputs'].shape == (3, 32, 32)
    seg = out['data_samples'].gt_sem_seg.data
    assert seg.shape == (1, 32, 32) and seg.max() <= 3
    raw = cv2.imread(ds.get_data_info(0)['label_path'], cv2.IMREAD_UNCHANGED)
    lut = ds.get_data_info(0)['label_lut']
    small = cv2.resize(lut[raw], (32, 32), interpolation=cv2.INTER_NEAREST)
    assert (seg[0].numpy() == small[:, ::-1]).all()   # flipped with the image


def test_mmagic_pipeline_one_hot(phantom_root):
    from mmagic.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmagic'):
        ds = DATASETS.build(dict(
            type='FundusDataset', data_root=str(phantom_root), classes=['OD', 'EX'],
            with_images=False,
            pipeline=[dict(type='LoadFundusPair', with_image=False),
                      dict(type='ResizeFundus', size=16),
                      dict(type='LabelToOneHot'),
                      dict(type='PackFundusGenInputs', inputs=dict(img='label_onehot'))]))
    out = ds[1]
    x = out['inputs']['img']
    assert x.shape == (4, 16, 16) and x.dtype == torch.float32
    assert torch.allclose(x.sum(0), torch.ones(16, 16))
    sample = out['data_samples']
    assert int(sample.gt_label.label) == ds.get_data_info(1)['grade']
    assert (x.argmax(0) == sample.gt_seg[0].long()).all()


def test_label_size_mismatch_and_corrupt_label(phantom_root, tmp_path):
    import shutil
    root = tmp_path / 'copy'
    shutil.copytree(phantom_root, root)
    ds = FundusDataset(str(root), split=None, pipeline=[dict(type='LoadFundusPair')])
    name = ds.get_data_info(0)['name']
    cv2.imwrite(str(root / 'labels' / f'{name}.png'), np.ones((10, 12), np.uint8))
    with pytest.raises(ValueError, match=rf'{name}.png: label is 12x10 but its image .* is 64x64'):
        ds[0]
    (root / 'labels' / f'{name}.png').write_bytes(b'garbage')
    with pytest.raises(ValueError, match=rf'{name}.png: cannot decode'):
        ds[0]


def test_registered_vessel_class_read_through_a_dataset(fgadr_tree, tmp_path):
    root, truth = fgadr_tree
    seg = root / 'Seg-set'
    (seg / 'Vessel_Masks').mkdir()
    for name, (img, _, _) in truth.items():           # a vessel mask: one horizontal band
        m = np.zeros(img.shape[:2], np.uint8)
        m[40:43, 30:110] = 255
        assert cv2.imwrite(str(seg / 'Vessel_Masks' / name), m)
    register_lesion_class('VES', 'vessel', (255, 255, 255), priority=1,
                          sources={'fgadr': 'Vessel_Masks'})
    classes = ClassSet(['HE', 'VES'])
    prepare_dataset(read_fgadr(root, classes), tmp_path / 'p', classes, size=96, progress=False)
    ds = FundusDataset(str(tmp_path / 'p'), classes=['VES'], split=None,
                       pipeline=[dict(type='LoadFundusPair')])
    assert ds.metainfo['classes'] == ('BG', 'RET', 'VES')
    for i in range(len(ds)):
        lab = ds[i]['gt_seg_map']
        assert set(np.unique(lab)) == {0, 1, 2}
        rows = np.nonzero((lab == 2).any(axis=1))[0]
        assert 0 < len(rows) <= 4                   # one thin band, as drawn
