"""configs/pipeline/idrid_fgadr.py end to end on small phantoms in the published IDRiD and
FGADR layouts (every stage shrunk by --cfg-options), and counts checked before compute."""
import json

import pytest

from fundus_plugins.datasets import read_meta
from fundus_plugins.phantom_raw import write_raw_phantom
from fundus_plugins.pipeline import run_pipeline

from conftest import REPO

CONFIG = str(REPO / 'configs' / 'pipeline' / 'idrid_fgadr.py')
NO_WORKERS = dict(num_workers=0, persistent_workers=False)


@pytest.fixture(scope='module')
def raw_roots(tmp_path_factory):
    root = tmp_path_factory.mktemp('raw')
    write_raw_phantom(root / 'IDRiD', 'idrid', num=15, size=64, seed=1, progress=False)
    write_raw_phantom(root / 'FGADR', 'fgadr', num=15, size=64, seed=2, progress=False)
    return root


def _options(raw, work, **extra):
    """The paper-scale pipeline config, every stage shrunk to seconds on a CPU."""
    labels = {'model.generator.out_size': 32, 'model.generator.base_channels': 32,
              'model.generator.min_channels': 8, 'model.generator.embed_dim': 8,
              'model.discriminator.in_size': 32, 'model.discriminator.base_channels': 8,
              'model.discriminator.max_channels': 32, 'train_dataloader.batch_size': 4,
              'train_dataloader.dataset.pipeline.1.size': 32,
              **{f'train_dataloader.{k}': v for k, v in NO_WORKERS.items()}}
    images = {'model.generator.ngf': 8, 'model.discriminator.ndf': 8,
              'model.loss_config.lambda_vgg': 0.0, 'train_dataloader.batch_size': 2,
              **{f'train_dataloader.{k}': v for k, v in NO_WORKERS.items()}}
    seg = {'model.backbone.base_channels': 8, 'model.decode_head.in_channels': 8,
           'model.decode_head.channels': 8, 'train_dataloader.batch_size': 4,
           **{f'{d}.{k}': v for d in ('train_dataloader', 'val_dataloader',
                                      'test_dataloader') for k, v in NO_WORKERS.items()}}
    opts = {'work_dir': str(work), 'image_size': 64,
            'data.idrid': str(raw / 'IDRiD'), 'data.fgadr': str(raw / 'FGADR'),
            'data.size': 64, 'data.workers': 1, 'data.od_model': dict(size=32, iters=40),
            'grades.size': 32,
            'labels.max_iters': 2, 'labels.cfg_options': labels,
            'images.max_iters': 2, 'images.device': 'cpu', 'images.amp': False,
            'images.batch_size': 4, 'images.cfg_options': images,
            'segmentation.max_epochs': 1, 'segmentation.seeds': [0],
            'segmentation.fractions': [0, 0.5], 'segmentation.cfg_options': seg,
            'gates.inception_path': None, 'gates.device': 'cpu', 'gates.on_fail': 'warn'}
    opts.update(extra)
    return opts


def test_idrid_fgadr_pipeline_on_raw_layout_phantoms(raw_roots, tmp_path):
    work = tmp_path / 'work'
    run_pipeline(CONFIG, cfg_options=_options(raw_roots, work), log=lambda m: None)
    rows = {r.name: r for r in read_meta(work / 'data')}
    assert len(rows) == 30
    fgadr = [r for r in rows.values() if r.dataset == 'fgadr']
    idrid = [r for r in rows.values() if r.dataset == 'idrid']
    assert {r.od_source for r in fgadr} == {'predicted'}
    assert all(not r.annotates('OD') and r.annotates('EX') for r in fgadr)
    assert {r.od_source for r in idrid} == {'annotated'} and all(r.annotates('OD')
                                                                 for r in idrid)
    summary = json.loads((work / 'data' / 'summary.json').read_text())
    assert summary['od_source'] == {'fgadr': {'predicted': 15}, 'idrid': {'annotated': 15}}
    assert summary['od_model']['predicted'] == 15
    assert 0 <= summary['od_model']['heldout_dice'] <= 1
    # IDRiD's segmentation images have no grade: the grade step predicts them.
    assert all(r.grade_source == 'predicted' for r in read_meta(work / 'real')
               if r.dataset == 'idrid')
    report = (work / 'report.md').read_text()
    train = sum(r.split == 'train' for r in rows.values())
    for part in ('fgadr: predicted 15', 'held-out annotated discs',
                 f'Real training images: {train}',
                 "Son et al.'s measure", 'equal updates',
                 f'| 50 % | {train} + {train} |', 'images scored'):
        assert part in report, part


def test_a_fraction_the_samples_cannot_meet_fails_before_anything_trains(raw_roots,
                                                                         tmp_path):
    work = tmp_path / 'work'
    opts = _options(raw_roots, work, **{'labels.num_per_grade': 2,
                                        'segmentation.fractions': [0, 0.75]})
    with pytest.raises(ValueError) as err:
        run_pipeline(CONFIG, cfg_options=opts, log=lambda m: None)
    # 30 images, 6 held out: 24 real training images; 75 % needs 72 synthetic pairs.
    assert 'fraction 0.75 of 24 real training images needs 72 synthetic pairs' in str(err.value)
    assert 'num_per_grade=2 samples 10' in str(err.value)
    assert not (work / '.stages').exists() and not (work / 'data').exists()
