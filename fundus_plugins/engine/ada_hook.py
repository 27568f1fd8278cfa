"""The ADA heuristic: tune the augmentation probability p from the discriminator's overfitting.

StyleGAN2-ADA (Karras et al. 2020), ``training/training_loop.py``: every ``interval``
iterations, with r_t = E[sign(D(real))] over the real samples seen since the last
adjustment (on every process),

    p <- clamp(p + sign(r_t - target) * n / (ada_kimg * 1000), 0, 1)

where n is the number of real samples seen (batch x interval, summed over processes):
p can go from 0 to 1 in ``ada_kimg`` thousand real images. r_t near 1 means the
discriminator is sure of every real image (it overfits): more augmentation.
"""
from __future__ import annotations

import torch
from mmagic.registry import HOOKS
from mmengine import dist
from mmengine.hooks import Hook

from .utils import unwrap


def ada_update(p: float, r_t: float, n_real: float, target: float = 0.6,
               ada_kimg: float = 500.0) -> float:
    """One ADA adjustment of ``p`` (see the module docstring); clamped to [0, 1]."""
    sign = (r_t > target) - (r_t < target)
    return float(min(max(p + sign * n_real / (ada_kimg * 1000.0), 0.0), 1.0))


@HOOKS.register_module()
class AdaHook(Hook):
    """Adjust the model's ``augment.p`` every ``interval`` iterations.

    The model accumulates ``ada_stats = [sum of sign(D(real)), number of real samples]``
    in its discriminator updates (``LabelACGAN`` does); this hook all-reduces them over
    processes, applies :func:`ada_update`, resets them, and logs ``ada_p`` and ``ada_rt``.
    ``p`` is a buffer of the model, so it is saved in every checkpoint and a resumed run
    goes on with the same p.

    Args:
        target: the r_t the heuristic aims at (0.6).
        interval: iterations between adjustments (4 in StyleGAN2-ADA).
        ada_kimg: thousands of real images for p to go from 0 to 1 (500 there).
    """

    priority = 'NORMAL'

    def __init__(self, target: float = 0.6, interval: int = 4, ada_kimg: float = 500.0):
        if not 0 < target < 1:
            raise ValueError(f'AdaHook.target must be in (0, 1), got {target}')
        if interval < 1 or ada_kimg <= 0:
            raise ValueError('AdaHook: interval must be >= 1 and ada_kimg > 0')
        self.target = target
        self.interval = interval
        self.ada_kimg = ada_kimg
        self.last_rt = float('nan')

    @staticmethod
    def _parts(runner):
        model = unwrap(runner.model)
        augment = getattr(model, 'augment', None)
        stats = getattr(model, 'ada_stats', None)
        return augment, stats

    def before_train(self, runner) -> None:
        augment, stats = self._parts(runner)
        if augment is None or stats is None:
            raise TypeError('AdaHook needs a model with an `augment` (AdaAugment) and '
                            '`ada_stats`; set model.augment in the config, or remove AdaHook')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        augment, stats = self._parts(runner)
        if self.every_n_train_iters(runner, self.interval):
            totals = stats.detach().clone()
            dist.all_reduce(totals, op='sum')
            if totals[1] > 0:
                self.last_rt = float(totals[0] / totals[1])
                p = ada_update(float(augment.p), self.last_rt, float(totals[1]), self.target,
                               self.ada_kimg)
                augment.p.copy_(torch.tensor(p))
            stats.zero_()
        runner.message_hub.update_scalar('train/ada_p', float(augment.p))
        if self.last_rt == self.last_rt:  # not NaN
            runner.message_hub.update_scalar('train/ada_rt', self.last_rt)
