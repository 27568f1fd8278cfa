"""SPADE translator: shapes, discriminator features, losses, VGG on/off (where its weights
come from: test_pretrained.py), training, translate and synthesize writing layouts the
dataset reads back."""
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from fundus_plugins.datasets import FundusDataset, read_meta
from fundus_plugins.models.spade import (SPADEGAN, MultiscaleDiscriminator, SPADEGenerator,
                                         od_edges, onehot_from_labels)
from fundus_plugins.models.spade.losses import (VGGPerceptualLoss, build_vgg19_features,
                                                pooled_l1_loss)
from fundus_plugins.config import build_runner

from conftest import write_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))
import balance  # noqa: E402
import synthesize  # noqa: E402
import translate  # noqa: E402


@pytest.mark.parametrize('mode,size', [('normal', 64), ('more', 64), ('most', 128)])
def test_generator_shapes_for_every_upsampling_mode(mode, size):
    g = SPADEGenerator(label_nc=5, out_size=size, ngf=4, num_upsampling_layers=mode)
    out = g(torch.rand(2, 5, size, size))
    assert out.shape == (2, 3, size, size) and out.abs().max() <= 1
    with pytest.raises(ValueError, match='not divisible'):
        SPADEGenerator(label_nc=5, out_size=100, num_upsampling_layers=mode)


def test_vae_generator_encodes_and_samples():
    g = SPADEGenerator(label_nc=4, out_size=32, ngf=4, use_vae=True, z_dim=8,
                       encoder=dict(ndf=4))
    z, mu, logvar = g.encode(torch.rand(2, 3, 32, 32))
    assert z.shape == mu.shape == logvar.shape == (2, 8)
    assert g(torch.rand(2, 4, 32, 32), z=z).shape == (2, 3, 32, 32)
    assert g(torch.rand(2, 4, 32, 32)).shape == (2, 3, 32, 32)   # z ~ N(0, 1)


def test_multiscale_discriminator_returns_features_of_every_scale():
    d = MultiscaleDiscriminator(input_nc=8, num_D=3, n_layers_D=4, ndf=4)
    out = d(torch.rand(2, 8, 64, 64))
    assert len(out) == 3 and all(len(scale) == 5 for scale in out)  # 4 layers + logits
    assert out[0][-1].shape[1] == 1 and out[1][0].shape[-1] < out[0][0].shape[-1]


def test_od_edges_and_label_input():
    od = torch.zeros(1, 1, 6, 6)
    od[..., 2:4, 2:4] = 1
    e = od_edges(od)
    assert e[0, 0, 2, 2] == 1 and e[0, 0, 2, 1] == 1 and e[0, 0, 0, 0] == 0
    m = _small(classes=['OD', 'EX'])
    x = m.label_input(onehot_from_labels(torch.randint(0, 4, (2, 32, 32)), 4))
    assert x.shape == (2, 5, 32, 32)
    with pytest.raises(ValueError, match='needs OD'):
        _small(classes=['EX'])


def _small(**kw):
    kw.setdefault('classes', ['OD', 'EX'])
    kw.setdefault('vgg_weights', None)  # no VGG unless a test gives weights (offline)
    return SPADEGAN(generator=dict(type='SPADEGenerator', out_size=32, ngf=4),
                    discriminator=dict(type='MultiscaleDiscriminator', ndf=4, n_layers_D=3),
                    **kw)


def _batch():
    return dict(img=torch.rand(2, 3, 32, 32) * 2 - 1,
                label=onehot_from_labels(torch.randint(0, 4, (2, 32, 32)), 4))


def test_every_loss_term_is_logged(tmp_path):
    vgg = tmp_path / 'vgg19.pth'
    torch.save({f'features.{k}': v for k, v in build_vgg19_features().state_dict().items()},
               vgg)
    m = _small(vgg_weights=str(vgg))
    assert m.vgg_loss.available
    g = OptimWrapper(torch.optim.Adam(m.generator.parameters(), 1e-4))
    d = OptimWrapper(torch.optim.Adam(m.discriminator.parameters(), 1e-4))
    assert {'loss_d_hinge', 'd_real_score', 'd_fake_score'} <= set(
        m.train_discriminator(_batch(), None, d))
    logs = m.train_generator(_batch(), None, g)
    assert {'loss_g_hinge', 'loss_g_feat', 'loss_g_vgg'} <= set(logs)
    assert float(logs['loss_g_vgg'].detach()) > 0
    assert 'loss_g_l1' not in logs  # off by default (the paper's setting)


def test_l1_term_when_asked_and_unknown_loss_keys_refused():
    m = _small(loss_config=dict(lambda_l1=10.0))
    g = OptimWrapper(torch.optim.Adam(m.generator.parameters(), 1e-4))
    logs = m.train_generator(_batch(), None, g)
    assert float(logs['loss_g_l1'].detach()) > 0
    with pytest.raises(KeyError, match='lambda_l2'):
        _small(loss_config=dict(lambda_l2=1.0))
    with pytest.raises(ValueError, match='l1_pool must be an integer'):
        _small(loss_config=dict(lambda_l1=1.0, l1_pool=0))


def test_pooled_l1_compares_block_means_only():
    real = torch.zeros(1, 3, 8, 8)
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None]) % 2 * 2 - 1.0  # +-1
    fake = real + 0.5 * checker                       # detail that averages out per 2x2
    assert float(pooled_l1_loss(fake, real, 1)) == pytest.approx(0.5)
    assert float(pooled_l1_loss(fake, real, 2)) == pytest.approx(0.0)
    assert float(pooled_l1_loss(real + 0.25, real, 4)) == pytest.approx(0.25)


def test_vgg_off_missing_or_wrong(tmp_path):
    loss = VGGPerceptualLoss(None)
    assert not loss.available
    assert float(loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))) == 0
    m = _small()  # vgg_weights=None: no perceptual term
    logs = m.train_generator(_batch(), None,
                             OptimWrapper(torch.optim.Adam(m.generator.parameters(), 1e-4)))
    assert 'loss_g_vgg' not in logs and 'loss_g_feat' in logs
    with pytest.raises(FileNotFoundError, match='missing.pth not found'):
        VGGPerceptualLoss(str(tmp_path / 'missing.pth'))   # no silent switch-off
    with pytest.raises(ValueError, match='lambda_vgg must be a number >= 0'):
        _small(loss_config=dict(lambda_vgg=-1.0))
    bad = tmp_path / 'bad.pth'
    torch.save({'features.0.weight': torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match='bad.pth: not VGG19 weights'):
        VGGPerceptualLoss(str(bad))


# Tiny versions of the demo configs, on a 64 px phantom (options for load_config).
TINY_SPADE = {'image_size': 64, 'model.generator.ngf': 4, 'model.discriminator.ndf': 4,
              'train_dataloader.batch_size': 2, 'train_cfg.max_iters': 3,
              'default_hooks.logger.interval': 1, 'default_hooks.checkpoint.interval': 3,
              'custom_hooks': [dict(type='TranslationGridHook', interval=3, num_samples=4)]}
TINY_ACGAN = {'train_dataloader.batch_size': 2, 'train_cfg.max_iters': 1, 'val_cfg': None,
              'val_dataloader': None, 'val_evaluator': None,
              'default_hooks.checkpoint.interval': 1}


@pytest.fixture(scope='module')
def spade_trained(tmp_path_factory):
    """3 iterations of a tiny version of the demo config on a 64 px phantom."""
    from fundus_plugins.phantom import write_phantom_dataset
    root = tmp_path_factory.mktemp('ph')
    write_phantom_dataset(root, num=10, size=64, seed=1, progress=False)
    work = tmp_path_factory.mktemp('spade')
    config = write_config(REPO / 'configs/spade_fundus_demo.py', work / 'spade_tiny.py',
                          dict(TINY_SPADE, data_root=str(root)))
    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(work)
    build_runner(cfg).train()
    return root, work, config


def test_demo_config_trains_and_writes_grid(spade_trained):
    root, work, _ = spade_trained
    assert (work / 'iter_3.pth').is_file()
    assert (work / 'vis' / 'translation_iter_3.png').is_file()
    log = next(work.rglob('vis_data/scalars.json')).read_text()
    assert 'loss_g_feat' in log and 'loss_d_hinge' in log


def test_translate_writes_a_readable_layout(spade_trained, tmp_path):
    root, work, config = spade_trained
    assert translate.main([str(config), str(work / 'iter_3.pth'), '--labels', str(root),
                           '--out', str(tmp_path / 't'), '--batch-size', '4']) == 0
    rows = read_meta(tmp_path / 't')
    assert len(rows) == 10 and {r.grade_source for r in rows} == {'synthetic'}
    assert sorted(r.grade for r in rows) == sorted(r.grade for r in read_meta(root))
    ds = FundusDataset(str(tmp_path / 't'), split=None, pipeline=[dict(type='LoadFundusPair')])
    sample = ds[0]
    assert sample['img'].shape == (64, 64, 3) and sample['gt_seg_map'].shape == (64, 64)


def test_translate_says_which_classes_the_maps_lack_and_names_raw_values(
        spade_trained, tmp_path, capsys):
    """Maps of fewer classes than the translator's: said, not silently listed; a label
    value beyond the maps' own classes is reported as it is in the file."""
    import cv2

    from fundus_plugins.datasets.layout import label_path
    from fundus_plugins.phantom import write_phantom_dataset
    _, work, config = spade_trained
    few = tmp_path / 'few'
    write_phantom_dataset(few, num=4, size=64, classes=['OD', 'EX'], progress=False)
    with pytest.warns(UserWarning, match=r"its label maps have no \['MA', 'HE', 'SE'\]"):
        assert translate.main([str(config), str(work / 'iter_3.pth'), '--labels', str(few),
                               '--out', str(tmp_path / 't'), '--no-progress']) == 0
    name = read_meta(few)[0].name
    label = cv2.imread(str(label_path(few, name)), cv2.IMREAD_UNCHANGED)
    label[0, 0] = 9  # BG RET OD EX: 0..3
    cv2.imwrite(str(label_path(few, name)), label)
    with pytest.raises(ValueError, match=rf'{name}.png: label value 9 outside 0..3'):
        translate.main([str(config), str(work / 'iter_3.pth'), '--labels', str(few),
                        '--out', str(tmp_path / 't2'), '--no-progress'])
    assert not (tmp_path / 't2').exists()
    with pytest.raises(SystemExit):
        translate.main([str(config), str(work / 'iter_3.pth'), '--labels', str(few),
                        '--out', str(tmp_path / 't3'), '--batch-size', '0'])
    assert 'argument --batch-size: must be at least 1, got 0' in capsys.readouterr().err


@pytest.fixture(scope='module')
def acgan_trained(spade_trained, tmp_path_factory):
    """One iteration of the label ACGAN demo config on the same phantom."""
    root = spade_trained[0]
    work = tmp_path_factory.mktemp('acgan')
    acgan_config = write_config(REPO / 'configs/acgan_labels_demo.py', work / 'acgan_tiny.py',
                                dict(TINY_ACGAN, data_root=str(root)))
    cfg = Config.fromfile(str(acgan_config))
    cfg.work_dir = str(work)
    build_runner(cfg).train()
    return acgan_config, work / 'iter_1.pth'


def test_synthesize_is_seeded_and_readable(spade_trained, acgan_trained, tmp_path):
    root, work, spade_config = spade_trained
    acgan_config, acgan_ckpt = acgan_trained

    def run(out, seed):
        return synthesize.main(['--label-config', str(acgan_config),
                                '--label-checkpoint', str(acgan_ckpt),
                                '--spade-config', str(spade_config),
                                '--spade-checkpoint', str(work / 'iter_3.pth'),
                                '--num-per-grade', '2', '--out', str(tmp_path / out),
                                '--seed', str(seed)])
    assert run('a', 3) == 0 and run('b', 3) == 0
    rows = read_meta(tmp_path / 'a')
    assert len(rows) == 10 and sorted({r.grade for r in rows}) == [0, 1, 2, 3, 4]
    for r in rows:
        for sub in ('images', 'labels'):
            assert (tmp_path / 'a' / sub / f'{r.name}.png').read_bytes() == \
                (tmp_path / 'b' / sub / f'{r.name}.png').read_bytes()
    assert (tmp_path / 'a' / 'grid.png').is_file()
    ds = FundusDataset(str(tmp_path / 'a'), split='train',
                       pipeline=[dict(type='LoadFundusPair')])
    assert len(ds) == 10 and ds[0]['img'].shape == (64, 64, 3)


def test_balance_counts_and_run(spade_trained, acgan_trained, tmp_path):
    assert balance.balance_counts({0: 5, 1: 2, 3: 4}) == {0: 0, 1: 3, 2: 5, 3: 1, 4: 5}
    assert balance.balance_counts({0: 5, 1: 2}, target=3) == {0: 0, 1: 1, 2: 3, 3: 3, 4: 3}
    root, work, spade_config = spade_trained
    acgan_config, acgan_ckpt = acgan_trained
    assert balance.main(['--real', str(root), '--label-config', str(acgan_config),
                         '--label-checkpoint', str(acgan_ckpt),
                         '--spade-config', str(spade_config),
                         '--spade-checkpoint', str(work / 'iter_3.pth'),
                         '--out', str(tmp_path / 'bal'), '--target', '3']) == 0
    from collections import Counter
    real = Counter(r.grade for r in read_meta(root) if r.split == 'train')
    added = Counter(r.grade for r in read_meta(tmp_path / 'bal'))
    for g in range(5):
        assert added.get(g, 0) == max(0, 3 - real.get(g, 0))
