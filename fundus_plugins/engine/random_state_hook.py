"""Random states in checkpoints, so that a resumed run draws what an uninterrupted one
would.

mmengine saves weights, optimizers, schedulers and the iteration, but not the random
number generators a run draws from: the GAN noise, ADA's augmentation choices, the
pipelines' random flips. A run resumed from a checkpoint therefore draws other numbers
from its first step on. :class:`RandomStateHook` stores Python's, numpy's and torch's
generators (CPU, and every CUDA device's) in each checkpoint (``random_states``) and puts
them back when a run resumes, just before its first batch is drawn. Validation draws are
kept out of the training stream (the states are saved before a val loop and restored
after it), so a run validated at a checkpoint continues as one that was not.

What this makes bit-identical: a seeded single-process run (``num_workers=0``, as the
demo configs) killed at any point and resumed from its last checkpoint, on the CPU. Not
covered: data-loader worker processes (each restarts its own generator), several
processes (the checkpoint holds rank 0's states) and non-deterministic GPU kernels.
"""
from __future__ import annotations

import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

#: The checkpoint key the states are stored under.
KEY = 'random_states'


def capture_random_states() -> dict:
    """Python's, numpy's and torch's (CPU and CUDA) generator states, in types that a
    weights-only ``torch.load`` reads back (with :mod:`fundus_plugins.checkpoint`)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states = {'python': (version, list(internal), gauss),
              'numpy': (name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                        int(has_gauss), float(cached)),
              'torch': torch.get_rng_state()}
    if torch.cuda.is_available():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict) -> None:
    """Put back what :func:`capture_random_states` returned."""
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states['numpy']
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random generators in every checkpoint and restore them on resume.

    Put it in ``default_hooks`` (``random_states=dict(type='RandomStateHook')``, as the
    project's runtime configs do). It runs after every other hook (priority LOWEST), so
    the states are restored after the other hooks' ``before_train`` work.
    """

    priority = 'LOWEST'

    def __init__(self):
        self._pending: Optional[dict] = None
        self._before_val: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[KEY] = capture_random_states()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get(KEY)
        if self._pending is None:
            print_log('this checkpoint holds no random states (saved without '
                      'RandomStateHook): the resumed run will draw other random numbers '
                      'than an uninterrupted one', logger='current', level=30)

    def before_train_epoch(self, runner) -> None:
        # The last thing before the first batch of a resumed run is drawn.
        if self._pending is not None:
            restore_random_states(self._pending)
            self._pending = None

    def before_val(self, runner) -> None:
        self._before_val = capture_random_states()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            restore_random_states(self._before_val)
            self._before_val = None
