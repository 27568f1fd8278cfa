"""Label ACGAN components: shapes, losses, label smoothing, ADA augmentation and rule."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from fundus_plugins.engine.ada_hook import AdaHook, ada_update
from fundus_plugins.models import AdaAugment, LabelMapDiscriminator, LabelMapGenerator
from fundus_plugins.models.label_gan import LabelACGAN, label_maps_from_probs
from fundus_plugins.models.label_gan.losses import disc_fake_loss, disc_real_loss, gen_loss


@pytest.mark.parametrize('size,channels', [(16, 4), (32, 7)])
def test_generator_outputs_class_probabilities(size, channels):
    g = LabelMapGenerator(out_channels=channels, out_size=size, noise_size=8, embed_dim=4,
                          base_channels=32, min_channels=8)
    out = g(torch.randn(3, 8), label=torch.tensor([0, 2, 4]))
    assert out.shape == (3, channels, size, size)
    assert (out >= 0).all() and (out <= 1).all()
    assert torch.allclose(out.sum(1), torch.ones(3, size, size), atol=1e-5)
    with pytest.raises(ValueError, match='grades must be in 0..4'):
        g(torch.randn(1, 8), label=torch.tensor([5]))


def test_discriminator_heads_and_sizes():
    d = LabelMapDiscriminator(in_channels=5, in_size=32, base_channels=8, max_channels=16)
    adv, cls = d(torch.rand(2, 5, 32, 32))
    assert adv.shape == (2,) and cls.shape == (2, 5)
    with pytest.raises(ValueError, match='expects 5 channels'):
        d(torch.rand(2, 4, 32, 32))
    with pytest.raises(ValueError, match='power of two'):
        LabelMapDiscriminator(in_channels=5, in_size=48)


def test_channel_counts_follow_the_class_list():
    m = LabelACGAN(generator=dict(type='LabelMapGenerator', out_size=16, base_channels=16),
                   discriminator=dict(type='LabelMapDiscriminator', in_size=16, base_channels=8),
                   classes=['OD', 'EX'])
    assert m.generator.out_channels == 4 and m.discriminator.in_channels == 4
    with pytest.raises(ValueError, match='out_channels is 9 but the class list has 4'):
        LabelACGAN(generator=dict(type='LabelMapGenerator', out_size=16, out_channels=9),
                   discriminator=dict(type='LabelMapDiscriminator', in_size=16),
                   classes=['OD', 'EX'])
    with pytest.raises(KeyError, match='unknown key'):
        LabelACGAN(generator=dict(type='LabelMapGenerator', out_size=16),
                   discriminator=dict(type='LabelMapDiscriminator', in_size=16),
                   loss_config=dict(label_smooth=0.9))


def test_label_smoothing_acts_for_both_loss_types():
    logits = torch.tensor([-2.0, -0.5, 0.3, 1.5, 3.0])
    # BCE: exactly BCE with target 0.9.
    smoothed = disc_real_loss(logits, 'bce', 0.9)
    ref = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 0.9))
    assert torch.allclose(smoothed, ref)
    assert not torch.allclose(smoothed, disc_real_loss(logits, 'bce', 1.0))
    # Hinge: a convex combination of the real and fake hinge terms, so it changes too.
    h = disc_real_loss(logits, 'hinge', 0.9)
    ref = (0.9 * F.relu(1 - logits) + 0.1 * F.relu(1 + logits)).mean()
    assert torch.allclose(h, ref) and not torch.allclose(h, disc_real_loss(logits, 'hinge'))
    # One-sided: the fake term and the generator loss do not depend on smoothing.
    assert torch.allclose(disc_fake_loss(logits, 'hinge'), F.relu(1 + logits).mean())
    assert torch.allclose(gen_loss(logits, 'bce'), F.softplus(-logits).mean())


def test_model_disc_loss_changes_with_real_target():
    def build(target):
        return LabelACGAN(generator=dict(type='LabelMapGenerator', out_size=16),
                          discriminator=dict(type='LabelMapDiscriminator', in_size=16),
                          loss_config=dict(real_target=target))
    adv_real, adv_fake = torch.tensor([2.0, 0.5]), torch.tensor([-1.0, 0.2])
    cls, y = torch.zeros(2, 5), torch.tensor([1, 3])
    l9 = build(0.9).disc_loss(adv_real, cls, y, adv_fake, cls, y)
    l1 = build(1.0).disc_loss(adv_real, cls, y, adv_fake, cls, y)
    assert l9['loss_d_real'] > l1['loss_d_real']
    assert torch.equal(l9['loss_d_fake'], l1['loss_d_fake'])
    assert set(l9) == {'loss_d_real', 'loss_d_fake', 'loss_d_aux_real', 'loss_d_aux_fake'}


def _onehot(n, c, size):
    lab = torch.randint(0, c, (n, size, size))
    lab[:, :2, :] = 0
    return F.one_hot(lab, c).permute(0, 3, 1, 2).float()


def test_ada_identity_at_p0_and_simplex_at_p1():
    x = _onehot(4, 6, 16)
    aug = AdaAugment(kind='label', p=0.0)
    assert torch.equal(aug(x), x)
    aug = AdaAugment(kind='label', p=1.0, noise_prob=1.0, cutout_prob=0.0)
    torch.manual_seed(0)
    y = aug(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    assert torch.allclose(y.sum(1), torch.ones(4, 16, 16), atol=1e-4)
    assert (y >= 0).all()


def test_ada_xflip_is_exact_and_differentiable():
    x = _onehot(8, 3, 8).requires_grad_(True)
    aug = AdaAugment(kind='label', p=1.0, rotate90_prob=0, xint_prob=0, scale_prob=0,
                     rotate_prob=0, aniso_prob=0, xfrac_prob=0)
    torch.manual_seed(1)
    y = aug(x)
    for i in range(8):  # each sample either unchanged or mirrored, exactly
        same, flipped = torch.allclose(y[i], x[i], atol=1e-5), \
            torch.allclose(y[i], x[i].flip(-1), atol=1e-5)
        assert same or flipped
    y.sum().backward()
    assert x.grad is not None


def test_ada_translation_pads_with_background():
    x = torch.zeros(1, 3, 8, 8)
    x[:, 1] = 1.0  # all "retina"
    aug = AdaAugment(kind='label', p=1.0, xflip_prob=0, rotate90_prob=0, scale_prob=0,
                     rotate_prob=0, aniso_prob=0, xfrac_prob=0, xint_max=0.5)
    G = torch.eye(3)[None].clone()
    G[0, 0, 2] = 0.5  # shift by a quarter of the width (normalised 0.5)
    y = aug.apply_matrix(x, G)
    assert torch.allclose(y[0, 0, :, -2:], torch.ones(8, 2))   # padding went to BG
    assert torch.allclose(y.sum(1), torch.ones(1, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
def test_ada_runs_on_cuda():
    aug = AdaAugment(kind='label', p=1.0, noise_prob=1.0, cutout_prob=1.0).cuda()
    assert aug(_onehot(2, 4, 16).cuda()).is_cuda


def test_ada_rule_moves_p_towards_target_and_clamps():
    assert ada_update(0.5, r_t=0.9, n_real=1000, target=0.6, ada_kimg=10) == pytest.approx(0.6)
    assert ada_update(0.5, r_t=0.1, n_real=1000, target=0.6, ada_kimg=10) == pytest.approx(0.4)
    assert ada_update(0.05, r_t=-1.0, n_real=1000, target=0.6, ada_kimg=10) == 0.0
    assert ada_update(0.95, r_t=1.0, n_real=1000, target=0.6, ada_kimg=10) == 1.0
    assert ada_update(0.3, r_t=0.6, n_real=1000, target=0.6, ada_kimg=10) == 0.3


class _Hub:
    def __init__(self):
        self.scalars = {}

    def update_scalar(self, key, value):
        self.scalars[key] = value


def test_ada_hook_on_scripted_discriminator_outputs():
    """D says 'real' with confidence on every real sample: p rises every interval; then
    D is always wrong: p falls and stops at 0."""
    model = SimpleNamespace(augment=AdaAugment(p=0.0), ada_stats=torch.zeros(2))
    runner = SimpleNamespace(model=model, iter=0, message_hub=_Hub())
    hook = AdaHook(target=0.6, interval=2, ada_kimg=0.1)  # 100 images from 0 to 1
    hook.before_train(runner)
    history = []
    for it in range(16):
        runner.iter = it
        sign = 1.0 if it < 6 else -1.0
        model.ada_stats += torch.tensor([sign * 10, 10.0])  # batch of 10 real samples
        hook.after_train_iter(runner, it)
        history.append(float(model.augment.p))
    assert history[1] == pytest.approx(0.2) and history[5] == pytest.approx(0.6)
    assert history[0] == history[1 - 1] == 0.0  # no change between adjustments
    assert history[7] == pytest.approx(0.4) and history[-1] == 0.0
    assert runner.message_hub.scalars['train/ada_rt'] == -1.0
    assert (model.ada_stats == 0).all()


def test_upsampled_maps_are_argmax_of_bilinear_probabilities():
    probs = torch.softmax(torch.randn(2, 4, 8, 8), dim=1)
    maps = label_maps_from_probs(probs, scale=2)
    assert maps.shape == (2, 16, 16)
    up = F.interpolate(probs, scale_factor=2, mode='bilinear', align_corners=False)
    assert torch.equal(maps, up.argmax(1))


def test_align_optic_disc_mirrors_left_discs_only():
    from fundus_plugins.datasets.transforms import AlignOpticDisc
    label = torch.ones(8, 8, dtype=torch.uint8).numpy()
    label[3:5, 1:3] = 2  # disc on the left
    img = torch.arange(8 * 8 * 3, dtype=torch.uint8).view(8, 8, 3).numpy()
    out = AlignOpticDisc('right').transform(
        dict(gt_seg_map=label.copy(), img=img.copy(), classes=('BG', 'RET', 'OD')))
    assert out['od_aligned_flip'] and (out['gt_seg_map'][3:5, 5:7] == 2).all()
    assert (out['img'] == img[:, ::-1]).all()
    again = AlignOpticDisc('right').transform(dict(gt_seg_map=out['gt_seg_map'].copy(),
                                                   classes=('BG', 'RET', 'OD')))
    assert not again['od_aligned_flip']
    with pytest.raises(KeyError, match='no OD'):
        AlignOpticDisc().transform(dict(gt_seg_map=label, classes=('BG', 'RET', 'EX')))


def _small_gan(**kw):
    return LabelACGAN(generator=dict(type='LabelMapGenerator', out_size=16, base_channels=16,
                                     embed_dim=4),
                      discriminator=dict(type='LabelMapDiscriminator', in_size=16,
                                         base_channels=8, minibatch_std_group=2),
                      classes=['OD', 'EX'], **kw)


def test_sample_flip_mirrors_the_chosen_maps():
    torch.manual_seed(0)
    plain, flipping = _small_gan(), _small_gan(sample_flip=True)
    flipping.load_state_dict(plain.state_dict())
    z, g = torch.randn(4, 128), torch.tensor([0, 1, 2, 3])
    flips = torch.tensor([True, False, True, False])
    a = plain.sample(g, noise=z, sample_model='orig')
    b = flipping.sample(g, noise=z, sample_model='orig', flips=flips)
    assert torch.allclose(b[0], a[0].flip(-1)) and torch.allclose(b[1], a[1])


def test_disc_temperature_sharpens_towards_the_argmax():
    probs = torch.softmax(torch.randn(2, 4, 8, 8), dim=1)
    sharp = _small_gan(disc_temperature=0.25)._disc_view(probs)
    assert torch.allclose(sharp.sum(1), torch.ones(2, 8, 8), atol=1e-5)
    assert torch.equal(sharp.argmax(1), probs.argmax(1))
    assert (sharp.max(1).values >= probs.max(1).values - 1e-6).all()
    assert torch.equal(_small_gan()._disc_view(probs), probs)


def test_mode_seeking_term_pairs_noises_of_one_grade():
    from fundus_plugins.models.label_gan.acgan import mode_seeking_loss
    a, b = torch.rand(3, 4, 8, 8), torch.rand(3, 4, 8, 8)
    z1, z2 = torch.randn(3, 16), torch.randn(3, 16)
    assert mode_seeking_loss(a, b, z1, z2) < mode_seeking_loss(a, a + 1e-3, z1, z2)
    m = _small_gan(loss_config=dict(mode_seeking_weight=0.5))
    assert m.loss_config['mode_seeking_weight'] == 0.5


def test_minibatch_std_sees_a_collapsed_batch():
    from fundus_plugins.models.label_gan.networks import minibatch_std
    same = torch.ones(4, 3, 4, 4)
    varied = torch.randn(4, 3, 4, 4)
    assert minibatch_std(same, 4)[:, -1].abs().max() < 1e-3
    assert minibatch_std(varied, 4)[:, -1].min() > 0.1
    assert minibatch_std(varied, 3).shape == (4, 4, 4, 4)   # group shrinks to divide 4


def test_entropy_term_is_logged_when_on():
    m = _small_gan(loss_config=dict(entropy_weight=0.1))
    m._gen_steps = 1
    from mmengine.optim import OptimWrapper
    ow = OptimWrapper(torch.optim.SGD(m.generator.parameters(), lr=0.0))
    logs = m.train_generator(dict(img=torch.zeros(4, 4, 16, 16)), None, ow)
    assert 'loss_g_entropy' in logs and float(logs['loss_g_entropy'].detach()) > 0
    assert 'loss_g_entropy' not in _small_gan().train_generator(
        dict(img=torch.zeros(4, 4, 16, 16)), None,
        OptimWrapper(torch.optim.SGD(m.generator.parameters(), lr=0.0)))
