"""The lesion inpainting translator (SPADEInpaintGAN): outside the hole the output is the
input bit for bit; holes cover the dilated lesions and nothing outside the field of view;
random holes of lesion-free images are seeded; the demo config trains (losses, update
counts, grid), its checkpoint loads back, and a resumed run ends bit-identical."""
import json
import shutil

import numpy as np
import pytest
import torch
from mmengine.optim import OptimWrapper
from scipy.ndimage import distance_transform_edt

from fundus_plugins.apis import init_model
from fundus_plugins.checkpoint import load_checkpoint, mmengine_checkpoint_globals
from fundus_plugins.classes import ClassSet
from fundus_plugins.config import build_runner, load_config
from fundus_plugins.models.inpaint import (LesionHoles, SPADEInpaintGAN,
                                           SPADEInpaintGenerator, dilate)
from fundus_plugins.models.inpaint.inpaint_gan import hole_l1_loss, region_hinge_d_loss
from fundus_plugins.models.spade import onehot_from_labels

from conftest import INPAINT_ITERS, REPO

CLASSES = ['OD', 'MA', 'HE', 'EX', 'SE']
CS = ClassSet(CLASSES)  # BG RET OD MA HE EX SE: 0..6
BG, RET, OD, MA, HE, EX, SE = range(7)


def _model(**kw):
    kw.setdefault('classes', CLASSES)
    kw.setdefault('vgg_weights', None)
    kw.setdefault('margin', 2)
    return SPADEInpaintGAN(
        generator=dict(type='SPADEInpaintGenerator', ngf=4, num_down=2, max_channels=8,
                       num_middle=1, spade_hidden=8),
        discriminator=dict(type='MultiscaleDiscriminator', ndf=4, n_layers_D=2),
        **kw)


def _labels(n=2, size=32, lesions=True):
    """Label maps (N, H, W): a disc-shaped field of view, an optic disc, and (image 0
    only, when ``lesions``) an HE blot, an EX dot at the edge of the field of view and an
    MA dot."""
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    fov = (yy - c) ** 2 + (xx - c) ** 2 <= (size * 0.45) ** 2
    lab = np.where(fov, RET, BG).astype(np.int64)
    lab[12:16, 22:26] = OD
    maps = np.repeat(lab[None], n, axis=0)
    if lesions:
        maps[0, 8:11, 8:12] = HE
        edge = np.argwhere(fov[size // 2])[0][0]   # first FOV column of the middle row
        maps[0, size // 2, edge] = EX
        maps[0, 20, 12] = MA
    return torch.from_numpy(maps)


def _onehot(labels):
    return onehot_from_labels(labels, len(CS))


# ------------------------------------------------------------------------------------
def test_outside_the_hole_the_output_is_the_input_bit_for_bit():
    torch.manual_seed(0)
    m = _model(ema_config=dict(momentum=0.5))
    onehot = _onehot(_labels())
    hole = m.hole_from_label(onehot)
    assert hole[0].any() and not hole[1].any()
    hole[1, :, 4:9, 14:20] = True  # a hole of our own on the lesion-free image
    img = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    out = m.inpaint(img, hole, onehot)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 32, 32)
    outside = ~hole.expand_as(out)
    assert torch.equal(out[outside], img.float()[outside])            # float
    assert torch.equal(out.round().byte()[outside], img[outside])      # uint8
    assert not torch.equal(out[~outside], img.float()[~outside])       # painted inside
    assert out.min() >= 0 and out.max() <= 255
    # A normalised input: outside, the input mapped back to [0, 255] exactly.
    norm = img.float() / 127.5 - 1
    out_n = m.inpaint(norm, hole, onehot)
    back = m.data_preprocessor.destruct(norm, key='img')
    assert torch.equal(out_n[outside], back[outside])
    assert torch.equal(out_n.round().byte()[outside], img[outside])
    # The training composite (normalised float) keeps the input exactly too.
    raw, comp = m._generate(m.generator, norm, onehot, hole)
    assert torch.equal(comp[outside], norm[outside])
    assert torch.equal(comp[~outside], raw[~outside])


def test_without_a_mask_the_lesion_holes_are_painted_and_forward_returns_samples():
    torch.manual_seed(0)
    m = _model()
    onehot = _onehot(_labels())
    img = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    hole = m.hole_from_label(onehot)
    assert torch.equal(m.inpaint(img, None, onehot), m.inpaint(img, hole, onehot))
    # One image, channels first, as numpy: batched on the way in.
    single = m.inpaint(img[0].numpy(), hole[0, 0].numpy(), onehot[0].numpy())
    assert torch.equal(single, m.inpaint(img[:1], hole[:1], onehot[:1]))
    samples = m(dict(img=img.float() / 127.5 - 1, label=onehot))
    assert len(samples) == 2
    assert torch.equal(samples[0].hole, hole[0])
    assert torch.equal(samples[0].gt_img.round().byte(), img[0])
    outside = ~hole[0].expand(3, -1, -1)
    assert torch.equal(samples[0].fake_img.round().byte()[outside], img[0][outside])


def test_the_generator_never_sees_what_lies_in_the_hole():
    torch.manual_seed(0)
    m = _model()
    onehot = _onehot(_labels())
    hole = m.hole_from_label(onehot)
    hole[1, :, 10:20, 10:20] = True
    img = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    other = img.clone()
    other[hole.expand_as(img)] = 255 - other[hole.expand_as(img)]
    assert torch.equal(m.inpaint(img, hole, onehot, 'orig'),
                       m.inpaint(other, hole, onehot, 'orig'))
    g = SPADEInpaintGenerator(label_nc=8, ngf=4, num_down=2, max_channels=8).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    h = torch.zeros(1, 1, 32, 32)
    h[..., 5:15, 5:15] = 1
    seg = torch.rand(1, 8, 32, 32)
    y = x.clone()
    y[..., 5:15, 5:15] = float('nan')  # not even NaNs get through
    assert torch.equal(g(x, h, seg), g(y, h, seg))


def test_the_hole_covers_the_dilated_lesions_and_nothing_outside_the_fov():
    labels = _labels(size=32)
    onehot = _onehot(labels)
    lab = labels[0].numpy()
    fov = lab != BG
    for margin in (0, 1, 3):
        holes = LesionHoles(CS, margin=margin)
        assert holes.codes == ('MA', 'HE', 'EX', 'SE')  # OD is no hole by default
        hole = holes.lesions(onehot)[0, 0].numpy()
        lesion = np.isin(lab, [MA, HE, EX, SE])
        within = distance_transform_edt(~lesion) <= margin  # Euclidean distance
        assert np.array_equal(hole, within & fov), margin
        assert not hole[~fov].any()
        assert hole[lesion].all()
        if margin:  # the EX dot at the FOV's edge reaches outside it when dilated
            assert (within & ~fov).any()
    assert not LesionHoles(CS, margin=3).lesions(onehot)[1].any()  # no lesions: no hole
    with_od = LesionHoles(CS, hole_classes=['OD'], margin=0).lesions(onehot)[0, 0].numpy()
    assert np.array_equal(with_od, lab == OD)
    # dilate() itself: a disk, and nothing from the border.
    dot = torch.zeros(1, 1, 9, 9, dtype=torch.bool)
    dot[..., 4, 4] = True
    assert int(dilate(dot, 2).sum()) == 13 and bool(dilate(dot, 2)[..., 4, 6])
    assert not bool(dilate(dot, 2)[..., 6, 6])   # sqrt(8) > 2


def test_random_holes_are_seeded_in_the_fov_and_borrowed_or_drawn():
    labels = _labels(n=4, size=32)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing='ij')
    small = (yy - 15.5) ** 2 + (xx - 15.5) ** 2 <= 12 ** 2  # a smaller FOV than image 0's
    labels[1:, ~small] = BG
    onehot = _onehot(labels)
    fov = labels[:, None] != BG
    holes = LesionHoles(CS, margin=1, random_hole=dict(borrow_prob=0.0))
    a = holes.sample(onehot, torch.Generator().manual_seed(1))
    b = holes.sample(onehot, torch.Generator().manual_seed(1))
    c = holes.sample(onehot, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.flatten(1).any(1).all()                 # never empty
    assert not (a & ~fov).any()                      # never outside the FOV
    assert torch.equal(a[0], holes.lesions(onehot)[0])  # an image's own lesions stay
    torch.manual_seed(5)
    d = holes.sample(onehot)
    torch.manual_seed(5)
    assert torch.equal(d, holes.sample(onehot))      # torch's global generator by default
    # borrow_prob 1: the lesion-free images take image 0's lesion hole (cut to their FOV).
    borrow = LesionHoles(CS, margin=1, random_hole=dict(borrow_prob=1.0))
    e = borrow.sample(onehot, torch.Generator().manual_seed(0))
    donor = borrow.lesions(onehot)[0]
    assert (donor & ~fov[1]).any()  # partly outside the others' field of view
    for i in (1, 2, 3):
        assert torch.equal(e[i], donor & fov[i]) and e[i].any()
    # No donor in the batch: ellipses even with borrow_prob 1.
    f = borrow.sample(onehot[1:], torch.Generator().manual_seed(0))
    assert f.flatten(1).any(1).all() and not (f & ~fov[1:]).any()
    with pytest.raises(ValueError, match='no field of view'):
        holes.sample(_onehot(torch.zeros(1, 8, 8, dtype=torch.long)))


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(KeyError, match=r"hole_classes: \['NV'\] not among"):
        _model(hole_classes=['NV'])
    with pytest.raises(KeyError, match='lambda_l2'):
        _model(loss_config=dict(lambda_l2=1.0))
    with pytest.raises(ValueError, match='d_context must be an integer'):
        _model(loss_config=dict(d_context=-1))
    with pytest.raises(ValueError, match='margin must be an integer >= 0'):
        _model(margin=1.5)
    with pytest.raises(KeyError, match=r"random_hole: unknown key\(s\) \['blobs'\]"):
        _model(random_hole=dict(blobs=3))
    with pytest.raises(ValueError, match='num_blobs'):
        _model(random_hole=dict(num_blobs=(4, 2)))
    with pytest.raises(ValueError, match='generator.label_nc is 3'):
        SPADEInpaintGAN(generator=dict(type='SPADEInpaintGenerator', label_nc=3),
                        discriminator=dict(type='MultiscaleDiscriminator'), vgg_weights=None)
    m = _model()
    onehot = _onehot(_labels())
    img = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with pytest.raises(ValueError, match=r'normalised to \[-1, 1\]'):
        m.inpaint(img.float(), None, onehot)
    with pytest.raises(ValueError, match='hold only 0 and 1'):
        m.inpaint(img, torch.full((2, 32, 32), 0.5), onehot)
    with pytest.raises(ValueError, match=r'expected one-hot label maps \(N, 7, H, W\)'):
        m.inpaint(img, None, onehot[:, :5])
    with pytest.raises(ValueError, match='not divisible by 2\\*\\*num_down'):
        m.inpaint(img[..., :30, :30], None, onehot[..., :30, :30])


def test_losses_concentrate_on_the_hole():
    real = torch.zeros(1, 3, 8, 8)
    fake = real.clone()
    fake[..., :2, :2] = 1.0
    hole = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    hole[..., :4, :4] = True
    assert float(hole_l1_loss(fake, real, hole)) == pytest.approx(4 / 16)
    logits = torch.zeros(1, 1, 2, 2)
    logits[..., 0, 0] = 5.0
    w = torch.zeros(1, 1, 2, 2)
    w[..., 0, 0] = 1
    # Only the weighted logit counts: real relu(1 - 5) = 0, fake relu(1 + 5) = 6.
    assert float(region_hinge_d_loss([[logits]], [[logits]], [w])) == pytest.approx(6.0)


def test_training_steps_log_every_term_and_share_the_holes():
    torch.manual_seed(0)
    m = _model(loss_config=dict(lambda_l1=5.0))
    g = OptimWrapper(torch.optim.Adam(m.generator.parameters(), 1e-4))
    d = OptimWrapper(torch.optim.Adam(m.discriminator.parameters(), 1e-4))
    inputs = dict(img=torch.rand(3, 3, 32, 32) * 2 - 1, label=_onehot(_labels(n=3)))
    logs_d = m.train_discriminator(inputs, None, d)
    hole = inputs['hole'].clone()
    logs_g = m.train_generator(inputs, None, g)
    assert torch.equal(inputs['hole'], hole)  # the same holes for both steps
    assert {'loss_d_hinge', 'd_real_score', 'd_fake_score'} <= set(logs_d)
    assert {'loss_g_hinge', 'loss_g_feat', 'loss_g_l1', 'hole_fraction'} <= set(logs_g)
    assert 'loss_g_vgg' not in logs_g  # no VGG weights
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in {**logs_d, **logs_g}.values())
    assert 0 < float(logs_g['hole_fraction']) < 1


# ------------------------------------------------------------------------------------
ITERS = INPAINT_ITERS


def test_demo_config_trains_with_finite_losses_and_updates(inpaint_trained):
    _, work, cfg, runner, _ = inpaint_trained
    assert type(runner.model).__name__ == 'SPADEInpaintGAN'
    assert runner.iter == ITERS
    log = next(work.rglob('vis_data/scalars.json')).read_text().splitlines()
    rows = [json.loads(line) for line in log if '"loss_d_hinge"' in line]
    assert [r['iter'] for r in rows] == list(range(1, ITERS + 1))
    keys = {'loss_d_hinge', 'd_real_score', 'd_fake_score', 'loss_g_hinge', 'loss_g_feat',
            'loss_g_l1', 'hole_fraction'}
    for r in rows:
        assert keys <= set(r), set(r)
        assert 'loss_g_vgg' not in r  # the demo runs without VGG weights (offline)
        assert all(np.isfinite(r[k]) for k in keys)
    # One generator and one discriminator update per iteration (Adam's step counts).
    for name, module in (('generator', runner.model.generator),
                         ('discriminator', runner.model.discriminator)):
        opt = runner.optim_wrapper[name].optimizer
        params = [p for group in opt.param_groups for p in group['params']]
        assert len(params) == len(list(module.parameters()))
        steps = {int(opt.state[p]['step']) for p in params}
        assert steps == {ITERS}, (name, steps)
    assert (work / 'vis' / f'inpaint_iter_{ITERS}.png').is_file()


def test_checkpoint_loads_back_and_inpaints_the_same(inpaint_trained):
    root, work, cfg, runner, _ = inpaint_trained
    model = init_model(cfg, str(work / f'iter_{ITERS}.pth'))
    assert isinstance(model, SPADEInpaintGAN) and model.with_ema_gen
    trained = runner.model.state_dict()
    loaded = model.state_dict()
    assert trained.keys() == loaded.keys()
    assert all(torch.equal(trained[k], loaded[k]) for k in trained)
    sample = runner.train_dataloader.dataset[0]['inputs']
    img, onehot = sample['img'][None], sample['label'][None].float()
    hole = model.hole_from_label(onehot)
    if not hole.any():
        hole = model.training_holes(onehot, torch.Generator().manual_seed(0))
    out = model.inpaint(img, hole, onehot)
    assert torch.equal(out, runner.model.inpaint(img, hole, onehot))
    outside = ~hole.expand_as(out)
    assert torch.equal(out[outside], img.float()[outside])


def test_resumed_run_ends_bit_identical(inpaint_trained, tmp_path):
    """Seeded: resumed from iter_2 (random holes drawn from the restored torch generator),
    the run reaches the same iter_4 weights as the uninterrupted one."""
    _, work, _, _, options = inpaint_trained
    shutil.copy(work / 'iter_2.pth', tmp_path / 'iter_2.pth')
    cfg = load_config(str(REPO / 'configs/inpaint_fundus_demo.py'), options,
                      work_dir=tmp_path / 'resumed', resume=str(tmp_path / 'iter_2.pth'))
    runner = build_runner(cfg)
    with mmengine_checkpoint_globals():
        runner.train()
    whole = load_checkpoint(str(work / f'iter_{ITERS}.pth'))['state_dict']
    resumed = load_checkpoint(str(tmp_path / 'resumed' / f'iter_{ITERS}.pth'))['state_dict']
    assert whole.keys() == resumed.keys()
    differ = [k for k in whole if not torch.equal(whole[k], resumed[k])]
    assert differ == [], f'{len(differ)} of {len(whole)} tensors differ'
