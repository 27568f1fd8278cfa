"""The label ACGAN "as published" (configs/acgan_labels_paper.py) and the network options
it needs: Son et al.'s optimisers, gradient clipping, auxiliary losses and ADA rule."""
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from fundus_plugins.config import build_model, load_config
from fundus_plugins.models import LabelMapDiscriminator, LabelMapGenerator
from fundus_plugins.config import build_runner

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / 'configs/acgan_labels_paper.py')


@HOOKS.register_module()
class _RecordLogVarsHook(Hook):
    """Keeps the log variables of every training iteration."""
    seen = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        _RecordLogVarsHook.seen.append(dict(outputs))


@pytest.fixture(scope='module')
def paper_run(phantom_root, tmp_path_factory):
    """3 iterations of the paper config, shrunk: 16 x 16 maps of 4 classes, batch 4."""
    work = tmp_path_factory.mktemp('acgan_paper')
    cfg = load_config(CONFIG, {
        'data_root': str(phantom_root), 'lesion_classes': ['OD', 'EX'],
        'work_dir': str(work),
        'model.generator.out_size': 16, 'model.generator.base_channels': 32,
        'model.generator.min_channels': 4, 'model.discriminator.in_size': 16,
        'train_dataloader.batch_size': 4, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.pipeline.1.size': 16,
        'train_cfg.max_iters': 3, 'val_cfg': None, 'val_dataloader': None,
        'val_evaluator': None, 'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 100,
        # ADA from p = 0.5 (so that p can move both ways), 0.01 per iteration at
        # batch 4 as the config's ada_kimg 6.4 at batch 64.
        'model.augment.p': 0.5, 'custom_hooks.1.ada_kimg': 0.4,
        'custom_hooks.2.interval': 100})
    cfg.custom_hooks.append(dict(type='_RecordLogVarsHook'))
    _RecordLogVarsHook.seen = []
    runner = build_runner(cfg)
    runner.train()
    return runner, list(_RecordLogVarsHook.seen)


def test_generator_has_no_aux_loss_and_discriminator_both(paper_run):
    runner, seen = paper_run
    assert len(seen) == 3
    for log_vars in seen:
        for key in ('loss_d_real', 'loss_d_fake', 'loss_d_aux_real', 'loss_d_aux_fake',
                    'loss_g_adv'):
            assert key in log_vars, key
        assert sorted(k for k in log_vars if k.startswith('loss_g')) == ['loss_g_adv']
    model = runner.model
    assert model.loss_config['real_target'] == 1.0 and model.loss_config['adv_loss'] == 'hinge'
    assert int(model.num_d_updates) == 3 and int(model.num_g_updates) == 6
    assert not model.with_ema_gen and not model.sample_flip and model.disc_temperature == 1.0


def test_optimizers_and_gradient_clipping_are_the_papers(paper_run):
    runner, _ = paper_run
    gen, disc = runner.optim_wrapper['generator'], runner.optim_wrapper['discriminator']
    for wrapper, lr in ((gen, 5e-4), (disc, 1e-4)):
        assert isinstance(wrapper.optimizer, torch.optim.Adam)
        group = wrapper.optimizer.param_groups[0]
        assert group['lr'] == pytest.approx(lr) and tuple(group['betas']) == (0.5, 0.999)
    assert disc.clip_grad_kwargs == dict(max_norm=0.01, norm_type=2)
    assert not gen.clip_grad_kwargs
    # Clipping ran (mmengine logs the norm before clipping), and had work to do.
    assert runner.message_hub.get_scalar('train/grad_norm').current() > 0.01


def test_paper_networks_and_initialisation(paper_run):
    model = paper_run[0].model
    g, d = model.generator, model.discriminator
    assert g.embed_mode == 'multiply' and g.fc.in_features == 128 and g.fc_norm is None
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in d.features if isinstance(m, torch.nn.BatchNorm2d)]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 2 and len(norms) == 2
    assert [c.out_channels for c in convs] == [8, 16]
    assert not any('weight_orig' in name for name, _ in d.named_parameters())  # no SN
    # N(0, 0.02) convs and N(1, 0.02) BN scales (three small updates since).
    assert 0.01 < float(convs[1].weight.detach().std()) < 0.03
    assert abs(float(norms[1].weight.detach().mean()) - 1) < 0.05
    assert 0.003 < float(norms[1].weight.detach().std()) < 0.05


def test_ada_moves_p_by_a_hundredth_per_iteration(paper_run):
    runner, _ = paper_run
    # Three adjustments of +-0.01 (r_t of a batch of 4 is never exactly 0.6).
    moved = abs(float(runner.model.augment.p) - 0.5)
    assert moved == pytest.approx(0.01, abs=1e-6) or moved == pytest.approx(0.03, abs=1e-6)


def test_unmodified_paper_config():
    cfg = load_config(CONFIG)
    assert cfg.label_size == 256 and cfg.train_dataloader.batch_size == 64
    assert cfg.lesion_classes == ['OD', 'MA', 'HE', 'EX', 'SE', 'NV', 'IRMA']
    assert cfg.train_cfg.max_iters == 1000 * (1538 // 64)
    assert 'param_scheduler' not in cfg  # constant learning rates
    ratio = [h for h in cfg.custom_hooks if h.type == 'GANStepRatioHook'][0]
    assert (ratio.generator_steps, ratio.discriminator_steps) == (2, 1)
    ada = [h for h in cfg.custom_hooks if h.type == 'AdaHook'][0]
    assert ada.target == 0.6
    assert 64 * ada.interval / (ada.ada_kimg * 1000) == pytest.approx(0.01)
    flips = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomFlipFundus']
    assert flips and set(flips[0].directions) == {'horizontal', 'vertical'}
    assert not any(t.type == 'AlignOpticDisc' for t in cfg.train_dataloader.dataset.pipeline)
    model = build_model(cfg)
    assert model.generator.out_channels == 9 and model.discriminator.in_channels == 9
    with torch.no_grad():
        maps = model.generator(torch.randn(2, 128), label=torch.tensor([0, 4]))
        adv, cls = model.discriminator(maps)
    assert maps.shape == (2, 9, 256, 256) and adv.shape == (2,) and cls.shape == (2, 5)
    # The last block is as wide as the output, then a C -> C conv (their layout).
    assert model.generator.convs[-1].out_channels == 9
    assert model.generator.to_logits.in_channels == 9


def test_multiplied_grade_embedding_conditions_the_generator():
    g = LabelMapGenerator(out_channels=4, out_size=16, noise_size=8, embed_dim=8,
                          base_channels=16, min_channels=4, embed_mode='multiply',
                          fc_norm=False).eval()
    z = torch.randn(1, 8).repeat(2, 1)
    out = g(z, label=torch.tensor([0, 3]))
    assert out.shape == (2, 4, 16, 16)
    assert torch.allclose(out.sum(1), torch.ones(2, 16, 16), atol=1e-5)
    assert not torch.allclose(out[0], out[1])          # same noise, other grade
    with pytest.raises(ValueError, match='embed_dim == noise_size'):
        LabelMapGenerator(out_channels=4, out_size=16, noise_size=8, embed_dim=4,
                          embed_mode='multiply')
    with pytest.raises(ValueError, match="'concat' or 'multiply'"):
        LabelMapGenerator(out_channels=4, out_size=16, embed_mode='add')


def test_discriminator_kernel_and_batch_norm_options():
    d = LabelMapDiscriminator(in_channels=4, in_size=32, base_channels=8, max_channels=16,
                              kernel_size=3, batch_norm=True, spectral_norm=False)
    adv, cls = d(torch.rand(3, 4, 32, 32))
    assert adv.shape == (3,) and cls.shape == (3, 5)
    assert all(m.bias is None for m in d.features if isinstance(m, torch.nn.Conv2d))
    with pytest.raises(ValueError, match='kernel_size must be 3 or 4'):
        LabelMapDiscriminator(in_channels=4, in_size=32, kernel_size=5)
    # The defaults keep their layout (and checkpoints): 4x4 convs, no BN.
    default = LabelMapDiscriminator(in_channels=4, in_size=32)
    assert [k for k in default.state_dict() if k.startswith('features.')][:3] == [
        'features.0.bias', 'features.0.weight_orig', 'features.0.weight_u']
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in default.features)
