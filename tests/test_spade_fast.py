"""SPADE's speed paths compute what the plain formulas compute: the label map resized once
per resolution (bit-identical), the fused SPADE modulation (within float rounding), the
in-place activations (bit-identical), checkpoints of the unfused layout, and SPADEGAN's
switches: channels_last ('auto' leaves a CPU model as it is), compile (same outputs and
training step; a failing compile warns and runs eagerly), translate(amp=...) (ignored off
CUDA). Tiny nets at 32 px on the CPU."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper, OptimWrapperDict

from fundus_plugins.models.spade import (SPADE, SPADEGAN, MultiscaleDiscriminator,
                                         SPADEGenerator, onehot_from_labels)
from fundus_plugins.models.spade import spade_gan as spade_gan_module

#: fused modulation vs the formula in float32 (images in [-1, 1]): eval mode, training
#: mode (batch statistics of few values amplify rounding); float64 gradients: 1e-9
ATOL, ATOL_TRAIN, RTOL = 1e-5, 1e-4, 1e-4
CL = torch.channels_last


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny nets: one thread (more only wait for each other on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- the pre-change computation, written out ------------------------------------------
class OldSPADE(nn.Module):
    """SPADE as it was before the speed work (same parameter names): the reference."""

    def __init__(self, norm_nc, label_nc, hidden=128, norm='batch'):
        super().__init__()
        self.param_free_norm = (nn.BatchNorm2d if norm == 'batch' else nn.InstanceNorm2d)(
            norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, 3, padding=1)

    def forward(self, x, segmap):
        return old_spade(self, x, segmap)


def old_spade(s, x, segmap):
    """The old SPADE.forward on the parameters of ``s``: a resize in every layer."""
    normalized = s.param_free_norm(x)
    segmap = F.interpolate(segmap, size=x.shape[2:], mode='nearest')
    actv = F.relu(s.mlp_shared[0](segmap))
    return normalized * (1 + s.mlp_gamma(actv)) + s.mlp_beta(actv)


def old_block(b, x, seg):
    x_s = b.conv_s(old_spade(b.norm_s, x, seg)) if b.learned_shortcut else x
    dx = b.conv_0(F.leaky_relu(old_spade(b.norm_0, x, seg), 0.2))
    dx = b.conv_1(F.leaky_relu(old_spade(b.norm_1, dx, seg), 0.2))
    return x_s + dx


def old_generator(g, seg):
    """The old SPADEGenerator.forward (no VAE) on the modules of ``g``."""
    up = lambda t: F.interpolate(t, scale_factor=2, mode='nearest')  # noqa: E731
    x = g.fc(F.interpolate(seg, size=(g.sw, g.sw), mode='nearest'))
    x = old_block(g.head_0, x, seg)
    x = old_block(g.G_middle_0, up(x), seg)
    if g.mode in ('more', 'most'):
        x = up(x)
    x = old_block(g.G_middle_1, x, seg)
    for blk in (g.up_0, g.up_1, g.up_2, g.up_3):
        x = old_block(blk, up(x), seg)
    if g.mode == 'most':
        x = old_block(g.up_4, up(x), seg)
    return torch.tanh(g.conv_img(F.leaky_relu(x, 0.2)))


def _seg(n=2, size=32, c=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, c, (n, size, size), generator=g)
    return onehot_from_labels(labels, c)


def _gen(mode='normal', size=32, fused=True, norm='batch', seed=0):
    torch.manual_seed(seed)
    return SPADEGenerator(label_nc=5, out_size=size, ngf=4, num_upsampling_layers=mode,
                          norm=norm, spade_hidden=8, fused_spade=fused)


def _state(module):
    """Every parameter and buffer (running stats, spectral-norm vectors), by name."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# -- the generator --------------------------------------------------------------------
@pytest.mark.parametrize('mode,size', [('normal', 32), ('more', 64), ('most', 128)])
@pytest.mark.parametrize('train', [False, True])
def test_label_pyramid_is_bit_identical_to_resizing_in_every_layer(mode, size, train):
    """Unfused, the generator with its per-forward label pyramid computes exactly what
    the old per-layer resizing did: outputs, running stats and spectral-norm vectors.
    In float64: in float32 the CPU's convolution kernels may sum in another order for the
    two call sequences on some CPUs (an AMD EPYC host: 1e-5 in training mode, and sign
    flips of the untrained net's saturated outputs in eval mode), which says nothing
    about the pyramid."""
    g = _gen(mode, size, fused=False).double().train(train)
    ref = copy.deepcopy(g)
    seg = _seg(size=size).double()
    with torch.no_grad():
        out, expected = g(seg), old_generator(ref, seg)
    assert torch.equal(out, expected)
    state, ref_state = _state(g), _state(ref)
    assert all(torch.equal(state[k], ref_state[k]) for k in state)
    pyramid = g.label_pyramid(seg)
    assert [p.shape[-1] for p in pyramid] == [g.sw * 2 ** i for i in range(g.num_up + 1)]
    assert pyramid[-1] is seg  # the full-size map is not copied


def test_spade_accepts_a_full_size_map_and_fuses_within_tolerance():
    old = OldSPADE(6, 5, hidden=8, norm='instance')
    new = SPADE(6, 5, hidden=8, norm='instance')
    new.load_state_dict(old.state_dict())  # same parameter names: old checkpoints load
    x, seg = torch.randn(2, 6, 8, 8), _seg(size=32)
    expected = old(x, seg)
    torch.testing.assert_close(new(x, seg), expected, atol=ATOL, rtol=RTOL)
    small = F.interpolate(seg, size=(8, 8), mode='nearest')
    torch.testing.assert_close(new(x, small), expected, atol=ATOL, rtol=RTOL)
    new.fused = False
    assert torch.equal(new(x, seg), expected) and torch.equal(new(x, small), expected)
    gamma1, beta = new.gamma_beta(torch.relu(new.mlp_shared[0](small)))
    actv = torch.relu(old.mlp_shared[0](small))
    torch.testing.assert_close(gamma1, 1 + old.mlp_gamma(actv), atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(beta, old.mlp_beta(actv), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize('norm', ['batch', 'instance'])
def test_fused_generator_forward_and_gradients_match_the_formula(norm):
    """In float64 the fused generator's outputs, gradients, running stats and
    spectral-norm vectors equal the formula's to 1e-9 (the same computation, summed in
    another order); in float32 its images to ATOL_TRAIN in training mode (batch norm over
    2 x 2 x 2 values) and ATOL in eval mode."""
    g = _gen(size=64, norm=norm).double().train()
    ref = copy.deepcopy(g)
    seg, target = _seg(size=64).double(), torch.rand(2, 3, 64, 64, dtype=torch.float64)
    out, expected = g(seg), old_generator(ref, seg)
    torch.testing.assert_close(out, expected, atol=1e-9, rtol=1e-7)
    (out - target).square().mean().backward()
    (expected - target).square().mean().backward()
    grads = dict(ref.named_parameters())
    for name, p in g.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, atol=1e-9, rtol=1e-7,
                                   msg=lambda m: f'{name}: {m}')
    state, ref_state = _state(g), _state(ref)
    for k in state:
        torch.testing.assert_close(state[k], ref_state[k], atol=1e-9, rtol=1e-7)

    g, seg = _gen(norm=norm, size=64).train(), _seg(size=64)
    ref = copy.deepcopy(g)
    torch.testing.assert_close(g(seg), old_generator(ref, seg), atol=ATOL_TRAIN, rtol=RTOL)
    g.eval(), ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(g(seg), old_generator(ref, seg), atol=ATOL, rtol=RTOL)


def test_a_checkpoint_of_the_unfused_layout_loads(tmp_path):
    """A state dict saved before the change (mlp_gamma.* / mlp_beta.*, no other keys)
    loads strictly into the fused generator and gives the same images."""
    old = _gen(fused=False, seed=3).eval()
    keys = set(old.state_dict())
    assert {'head_0.norm_0.mlp_gamma.weight', 'up_0.norm_s.mlp_beta.bias'} <= keys
    torch.save(old.state_dict(), tmp_path / 'old.pth')
    new = _gen(fused=True, seed=4).eval()
    assert set(new.state_dict()) == keys
    new.load_state_dict(torch.load(tmp_path / 'old.pth'), strict=True)
    seg = _seg()
    with torch.no_grad():
        torch.testing.assert_close(new(seg), old_generator(old, seg), atol=ATOL, rtol=RTOL)


def test_in_place_discriminator_activations_change_nothing():
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(input_nc=8, num_D=2, n_layers_D=3, ndf=4)
    ref = copy.deepcopy(d)
    for m in ref.modules():
        if isinstance(m, nn.LeakyReLU):
            m.inplace = False
    x = torch.randn(2, 8, 32, 32, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    out, expected = d(x), ref(x_ref)
    for a, b in zip(out, expected):
        assert all(torch.equal(u, v) for u, v in zip(a, b))
    sum(f.square().mean() for scale in out for f in scale).backward()
    sum(f.square().mean() for scale in expected for f in scale).backward()
    assert torch.equal(x.grad, x_ref.grad)
    grads = dict(ref.named_parameters())
    assert all(torch.equal(p.grad, grads[n].grad) for n, p in d.named_parameters())


# -- SPADEGAN's switches --------------------------------------------------------------
def _small(seed=0, **kw):
    torch.manual_seed(seed)
    return SPADEGAN(generator=dict(type='SPADEGenerator', out_size=32, ngf=4, spade_hidden=8),
                    discriminator=dict(type='MultiscaleDiscriminator', ndf=4, n_layers_D=3),
                    classes=['OD', 'EX'], vgg_weights=None,
                    loss_config=dict(lambda_l1=1.0), **kw)


def _onehot(seed=0):
    g = torch.Generator().manual_seed(seed)
    return onehot_from_labels(torch.randint(0, 4, (2, 32, 32), generator=g), 4)


def _train_step(model):
    """One mmagic train step (D then G update, EMA) on a fixed batch; its log vars."""
    MessageHub.get_current_instance().update_info('iter', 0)
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=g)
    data = dict(inputs=dict(img=list(images), label=list(_onehot(1))))
    optim = OptimWrapperDict(
        generator=OptimWrapper(torch.optim.Adam(model.generator.parameters(), 1e-3)),
        discriminator=OptimWrapper(torch.optim.Adam(model.discriminator.parameters(), 1e-3)))
    return model.train_step(data, optim)


def _counting_backend():
    """A torch.compile backend that runs the graphs as traced and counts them."""
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward
    return backend, graphs


def test_channels_last_auto_leaves_a_cpu_model_contiguous_and_true_converts():
    plain = _small()
    assert plain.memory_format() == torch.contiguous_format  # 'auto' on the CPU
    expected = plain.translate(_onehot())
    _train_step(plain)
    assert all(p.is_contiguous() for p in plain.parameters())

    forced = _small(channels_last=True)
    out = forced.translate(_onehot())
    weights = [p for p in forced.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert weights and all(p.is_contiguous(memory_format=CL) for p in weights)
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=0)  # 0..255 range
    logs = _train_step(forced)
    assert all(torch.isfinite(v) for v in logs.values())

    off = _small(channels_last=False)
    off.to(memory_format=CL)  # e.g. by another hook: False puts it back
    torch.testing.assert_close(off.translate(_onehot()), expected, atol=1e-3, rtol=0)
    assert all(p.is_contiguous() for p in off.parameters())
    with pytest.raises(ValueError, match="channels_last must be 'auto', True or False"):
        _small(channels_last='yes')


def test_compiled_translation_and_training_step_equal_eager():
    backend, graphs = _counting_backend()
    eager, compiled = _small(), _small(compile=dict(backend=backend))
    compiled.load_state_dict(eager.state_dict())
    assert torch.equal(compiled.translate(_onehot()), eager.translate(_onehot()))
    assert graphs, 'the compiled path did not run'
    logs, expected = _train_step(compiled), _train_step(eager)
    assert set(logs) == set(expected)
    for k in expected:
        torch.testing.assert_close(logs[k], expected[k], atol=1e-6, rtol=1e-5)
    params = dict(eager.named_parameters())
    for name, p in compiled.named_parameters():
        torch.testing.assert_close(p, params[name], atol=1e-6, rtol=1e-5)
    assert compiled._compile_error is None and list(compiled.state_dict()) == list(
        eager.state_dict())  # no _orig_mod. prefixes


def test_compile_with_the_eager_backend_gives_the_same_images():
    eager, compiled = _small(), _small(compile=dict(backend='eager'))
    compiled.load_state_dict(eager.state_dict())
    for sample_model in ('ema', 'orig'):
        assert torch.equal(compiled.translate(_onehot(), sample_model),
                           eager.translate(_onehot(), sample_model))
    assert compiled._compile_error is None and compiled._compiled
    copied = copy.deepcopy(compiled)  # compiled functions are rebuilt, not copied
    assert copied._compiled == {}
    assert torch.equal(copied.translate(_onehot()), eager.translate(_onehot()))
    assert copied._compiled


@pytest.mark.parametrize('how', ['invalid backend', 'failing backend'])
def test_a_failing_compile_warns_once_and_runs_eagerly(how, monkeypatch):
    said = []
    monkeypatch.setattr(spade_gan_module, 'print_log',
                        lambda msg, **kw: said.append((msg, kw.get('level'))))

    def broken(gm, example_inputs):
        raise RuntimeError('no compiler here')
    backend = 'no_such_backend' if how == 'invalid backend' else broken
    eager, model = _small(), _small(compile=dict(backend=backend))
    model.load_state_dict(eager.state_dict())
    assert torch.equal(model.translate(_onehot()), eager.translate(_onehot()))
    logs = _train_step(model)
    assert all(torch.isfinite(v) for v in logs.values())
    warnings = [m for m, level in said if 'torch.compile' in m]
    assert len(warnings) == 1 and all(level == 30 for m, level in said if m in warnings)
    assert ('no_such_backend' if how == 'invalid backend' else 'no compiler here') \
        in warnings[0]
    assert 'run eagerly' in warnings[0] and model._compile_error is not None


def test_an_input_error_is_raised_as_eager_raises_it_and_keeps_compile():
    model = _small(compile=dict(backend='eager'))
    with pytest.raises(ValueError, match='expects 5 label channels, got 3'):
        model._run('generator', model.generator, torch.rand(1, 3, 32, 32))
    assert model._compile_error is None


def test_compile_switch_values_are_checked():
    assert _small().compile_options is None
    assert _small(compile=True).compile_options == {}
    auto = _small(compile='auto')  # compiles on CUDA only: eager here
    auto.translate(_onehot())
    _train_step(auto)
    assert auto._compiled == {} and auto._compile_error is None
    with pytest.raises(KeyError, match=r"unknown torch.compile argument\(s\) \['mdoe'\]"):
        _small(compile=dict(mdoe='max-autotune'))
    with pytest.raises(TypeError, match="compile must be False, True, 'auto' or a dict"):
        _small(compile='yes')


def test_translate_amp_is_ignored_off_cuda_and_leaves_a_callers_autocast_alone():
    model = _small()
    expected = model.translate(_onehot())
    out = model.translate(_onehot(), amp=True)  # CPU: fp32 as without it
    assert out.dtype == torch.float32 and torch.equal(out, expected)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = model.translate(_onehot())  # the caller's autocast still applies
    assert low.dtype == torch.float32 and not torch.equal(low, expected)
    assert float((low - expected).abs().median()) < 8  # bf16 rounding, 0..255 range
    with pytest.raises(TypeError, match='amp must be True or False'):
        model.translate(_onehot(), amp='bf16')
