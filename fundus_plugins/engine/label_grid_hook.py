"""Write a per-grade grid of sampled label maps (in the class palette) during training."""
from __future__ import annotations

import os.path as osp

import numpy as np
import torch
from mmagic.registry import HOOKS
from mmengine.dist import master_only
from mmengine.hooks import Hook

from ..classes import ClassSet
from ..visualization import save_rgb, tile_grid
from .utils import unwrap


def label_grid(model, classes: ClassSet, num_per_grade: int = 8, seed: int = 0,
               sample_model: str = 'ema', num_grades: int = 5) -> np.ndarray:
    """RGB grid: one row per grade, ``num_per_grade`` maps each, fixed noise from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(num_grades * num_per_grade, model.noise_size, generator=g)
    grades = torch.arange(num_grades).repeat_interleave(num_per_grade)
    flips = torch.rand(len(grades), generator=g) < 0.5
    probs = model.sample(grades, noise=noise, sample_model=sample_model, flips=flips)
    maps = probs.argmax(1).cpu().numpy()
    rows = [[classes.colorize(maps[r * num_per_grade + k]) for k in range(num_per_grade)]
            for r in range(num_grades)]
    return tile_grid(rows, row_titles=[f'grade {r}' for r in range(num_grades)], pad=2,
                     classes=classes)


class PeriodicGridHook(Hook):
    """Calls ``self._save(runner, iteration)`` every ``self.interval`` training
    iterations and once more at the end of training if the last iteration was not one."""

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.every_n_train_iters(runner, self.interval):
            self._save(runner, runner.iter + 1)

    def after_train(self, runner) -> None:
        if runner.iter % self.interval:
            self._save(runner, runner.iter)


@HOOKS.register_module()
class LabelGridHook(PeriodicGridHook):
    """Every ``interval`` iterations (and at the end), save
    ``<work_dir>/vis/labels_iter_<N>.png``: rows are grades, the noise is fixed."""

    priority = 'LOW'

    def __init__(self, interval: int = 1000, num_per_grade: int = 8, seed: int = 0,
                 sample_model: str = 'ema'):
        self.interval = interval
        self.num_per_grade = num_per_grade
        self.seed = seed
        self.sample_model = sample_model

    @master_only
    def _save(self, runner, iteration: int) -> None:
        model = unwrap(runner.model)
        classes = ClassSet(runner.train_dataloader.dataset.metainfo['classes'])
        grid = label_grid(model, classes, self.num_per_grade, self.seed, self.sample_model)
        path = osp.join(runner.work_dir, 'vis', f'labels_iter_{iteration}.png')
        save_rgb(path, grid)
        runner.logger.info(f'label grid written to {path}')
