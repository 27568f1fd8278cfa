"""The generator : discriminator update ratio, set from the config by a hook."""
from __future__ import annotations

from typing import Optional, Sequence

from mmagic.registry import HOOKS
from mmengine.hooks import Hook

from .utils import unwrap


@HOOKS.register_module()
class GANStepRatioHook(Hook):
    """Set how many generator and discriminator updates a GAN makes.

    mmagic's ``BaseGAN.train_step`` updates the discriminator every iteration and, after
    every ``discriminator_steps`` of them, the generator ``generator_steps`` times. This
    hook sets both before each training iteration, from fixed values or from a schedule.

    Args:
        generator_steps: generator updates per discriminator cycle (2 in the paper).
        discriminator_steps: discriminator updates per cycle.
        schedule: optional list of ``dict(begin_iter=k, generator_steps=g,
            discriminator_steps=d)``; from iteration ``k`` on, the last entry whose
            ``begin_iter`` has passed applies (missing keys keep the defaults above).
    """

    priority = 'VERY_HIGH'

    def __init__(self, generator_steps: int = 2, discriminator_steps: int = 1,
                 schedule: Optional[Sequence[dict]] = None):
        self.default = (int(generator_steps), int(discriminator_steps))
        self.schedule = []
        for entry in schedule or []:
            unknown = set(entry) - {'begin_iter', 'generator_steps', 'discriminator_steps'}
            if unknown or 'begin_iter' not in entry:
                raise KeyError(f'GANStepRatioHook.schedule entry {entry}: expected keys '
                               f'begin_iter, generator_steps, discriminator_steps')
            self.schedule.append((int(entry['begin_iter']),
                                  int(entry.get('generator_steps', generator_steps)),
                                  int(entry.get('discriminator_steps', discriminator_steps))))
        self.schedule.sort()
        for g, d in [self.default] + [s[1:] for s in self.schedule]:
            if g < 1 or d < 1:
                raise ValueError(f'GANStepRatioHook: steps must be >= 1, got G {g}, D {d}')

    def steps_at(self, iteration: int) -> tuple[int, int]:
        steps = self.default
        for begin, g, d in self.schedule:
            if iteration >= begin:
                steps = (g, d)
        return steps

    def before_train(self, runner) -> None:
        model = unwrap(runner.model)
        if not (hasattr(model, '_gen_steps') and hasattr(model, '_disc_steps')):
            raise TypeError(f'GANStepRatioHook needs an mmagic GAN (BaseGAN); '
                            f'got {type(model).__name__}')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = unwrap(runner.model)
        model._gen_steps, model._disc_steps = self.steps_at(runner.iter)
        runner.message_hub.update_scalar('train/g_steps_per_cycle', model._gen_steps)
