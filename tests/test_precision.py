"""GPU defaults that leave the CPU as it was: PrecisionOptimWrapper ('auto': bf16 on a
CUDA device with bf16, fp32 elsewhere), ChannelsLastHook (CUDA only unless forced),
sync_bn for distributed SPADE, and the configs that use them."""
import pytest
import torch
from mmengine.config import Config
from mmengine.model import convert_sync_batchnorm
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from fundus_plugins.config import build_model, enable_amp, load_config
from fundus_plugins.engine import ChannelsLastHook, resolve_precision
from fundus_plugins.engine import precision as precision_module

from conftest import REPO


def _wrapper(**kw):
    model = torch.nn.Conv2d(3, 4, 3)
    return OPTIM_WRAPPERS.build(dict(type='PrecisionOptimWrapper',
                                     optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                     **kw))


def test_auto_is_fp32_on_the_cpu_and_the_gpu_precisions_say_they_need_cuda():
    assert not torch.cuda.is_available()
    for precision in ('auto', 'fp32'):
        assert type(_wrapper(precision=precision)) is OptimWrapper
    for precision in ('bf16', 'fp16'):
        with pytest.raises(ValueError, match=f"precision='{precision}' needs a CUDA device"):
            _wrapper(precision=precision)
    with pytest.raises(ValueError, match=r"precision must be one of .* got 'half'"):
        _wrapper(precision='half')


def test_auto_is_bf16_without_loss_scaling_on_a_bf16_gpu(monkeypatch):
    """On a CUDA device with bf16 (stood in for: this machine has none), 'auto' builds
    mmengine's AmpOptimWrapper with bf16 and a disabled loss scaler; 'fp16' scales."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *a, **k: True)
    assert resolve_precision('auto') == 'bf16'
    bf16 = _wrapper(precision='auto')
    assert isinstance(bf16, AmpOptimWrapper) and bf16.cast_dtype == torch.bfloat16
    assert not bf16.loss_scaler.is_enabled()
    fp16 = _wrapper(precision='fp16')
    assert fp16.cast_dtype == torch.float16 and fp16.loss_scaler.is_enabled()
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *a, **k: False)
    assert resolve_precision('auto') == 'fp32'


@pytest.mark.parametrize('config', ['configs/acgan_labels.py', 'configs/acgan_labels_paper.py',
                                    'configs/spade_fundus.py', 'configs/seg/unet_fundus_real.py'])
def test_paper_configs_default_to_auto_and_fp32_is_one_option(config):
    cfg = Config.fromfile(str(REPO / config))
    wrappers = [cfg.optim_wrapper] if 'optimizer' in cfg.optim_wrapper else \
        [cfg.optim_wrapper.generator, cfg.optim_wrapper.discriminator]
    assert cfg.precision == 'auto'
    assert all(w.type == 'PrecisionOptimWrapper' and w.precision == 'auto' for w in wrappers)
    assert cfg.env_cfg.cudnn_benchmark and cfg.default_hooks.channels_last.type == \
        'ChannelsLastHook'
    cfg = load_config(str(REPO / config), {'precision': 'fp32'})
    wrappers = [cfg.optim_wrapper] if 'optimizer' in cfg.optim_wrapper else \
        [cfg.optim_wrapper.generator, cfg.optim_wrapper.discriminator]
    assert all(w.precision == 'fp32' for w in wrappers)
    enable_amp(cfg)  # --amp: bf16 where supported, else fp16
    assert all(w.precision == ('bf16' if precision_module.bf16_supported() else 'fp16')
               for w in wrappers)


class _Runner:
    def __init__(self, model):
        self.model = model


def test_channels_last_only_on_cuda_unless_forced():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 8, 3))
    ChannelsLastHook().before_train(_Runner(model))  # CPU: left as it is
    assert model[0].weight.is_contiguous()
    ChannelsLastHook(force=True).before_train(_Runner(model))
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(model(x), model(x.contiguous(memory_format=torch.channels_last)))


def test_spade_synchronises_its_batch_norms_when_distributed():
    cfg = load_config(str(REPO / 'configs/spade_fundus_demo.py'))
    assert cfg.sync_bn == 'torch'
    model = convert_sync_batchnorm(build_model(cfg), 'torch')
    synced = [m for m in model.generator.modules()
              if isinstance(m, torch.nn.SyncBatchNorm)]
    assert len(synced) > 10  # every SPADE layer's parameter-free norm
