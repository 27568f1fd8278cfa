"""GPU defaults that leave a CPU run as it was: mixed precision where the device supports
it, channels-last memory format on CUDA.

``PrecisionOptimWrapper`` (mmengine's OPTIM_WRAPPERS) builds the optimizer wrapper a
``precision`` asks for: ``'auto'`` (the configs' default) is bf16 autocast on a CUDA
device that supports bf16 and fp32 everywhere else (the CPU: unchanged); ``'fp32'``
mmengine's plain ``OptimWrapper``; ``'bf16'`` ``AmpOptimWrapper`` with bf16 and no loss
scaling (bf16 has fp32's exponent range, so gradients do not underflow); ``'fp16'``
``AmpOptimWrapper`` with fp16 and dynamic loss scaling. The configs set it from their
top-level ``precision`` key, so ``--cfg-options precision=fp32`` is the switch back.

``ChannelsLastHook`` (mmengine's HOOKS) puts the model in channels-last memory format
before training, validation and testing when it is on a CUDA device (``force=True``:
anywhere), which lets cuDNN's NHWC convolutions run under autocast.
"""
from __future__ import annotations

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import HOOKS, OPTIM_WRAPPERS

from .utils import unwrap

PRECISIONS = ('auto', 'fp32', 'bf16', 'fp16')


def bf16_supported() -> bool:
    """Whether a CUDA device that runs bf16 is present."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_precision(precision: str) -> str:
    """``'auto'`` -> ``'bf16'`` on a CUDA device that supports it, else ``'fp32'``;
    the others as given (checked)."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if precision == 'auto':
        return 'bf16' if bf16_supported() else 'fp32'
    if precision in ('bf16', 'fp16') and not torch.cuda.is_available():
        raise ValueError(f"precision={precision!r} needs a CUDA device; this machine has "
                         f"none ('auto' or 'fp32' trains in fp32 here)")
    return precision


@OPTIM_WRAPPERS.register_module()
def PrecisionOptimWrapper(precision: str = 'auto', **kwargs) -> OptimWrapper:  # noqa: N802
    """An mmengine optimizer wrapper for ``precision`` (see the module docstring); the
    other arguments are ``OptimWrapper``'s (``optimizer``, ``clip_grad``, ...)."""
    resolved = resolve_precision(precision)
    if resolved == 'fp32':
        return OptimWrapper(**kwargs)
    if resolved == 'bf16':
        # No loss scaling: a disabled GradScaler passes the loss and the step through.
        return AmpOptimWrapper(dtype='bfloat16', loss_scale=dict(enabled=False), **kwargs)
    return AmpOptimWrapper(dtype='float16', loss_scale='dynamic', **kwargs)


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Channels-last memory format for the model on CUDA (``force``: on any device)."""

    priority = 'VERY_HIGH'

    def __init__(self, force: bool = False):
        self.force = force

    def _apply(self, runner) -> None:
        model = unwrap(runner.model)
        device = next((p.device for p in model.parameters()), torch.device('cpu'))
        if device.type == 'cuda' or self.force:
            model.to(memory_format=torch.channels_last)
            if not getattr(self, '_said', False):
                print_log(f'channels-last memory format on {device}', logger='current')
                self._said = True

    def before_train(self, runner) -> None:
        self._apply(runner)

    def before_val(self, runner) -> None:
        self._apply(runner)

    def before_test(self, runner) -> None:
        self._apply(runner)
