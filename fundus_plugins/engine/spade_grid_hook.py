"""Write label / generated / real grids of a translator during training."""
from __future__ import annotations

import os.path as osp

import numpy as np
import torch
from mmagic.registry import HOOKS
from mmengine.dist import master_only

from ..classes import ClassSet
from ..visualization import save_rgb, tile_grid
from .label_grid_hook import PeriodicGridHook
from .utils import unwrap


@HOOKS.register_module()
class TranslationGridHook(PeriodicGridHook):
    """Every ``interval`` iterations (and at the end) save
    ``<work_dir>/vis/translation_iter_<N>.png``: rows label map, generated image (EMA
    generator), real image, for the first ``num_samples`` training pairs."""

    priority = 'LOW'

    def __init__(self, interval: int = 1000, num_samples: int = 6,
                 sample_model: str = 'ema'):
        self.interval = interval
        self.num_samples = num_samples
        self.sample_model = sample_model
        self._batch = None

    def _fixed_batch(self, runner):
        if self._batch is None:
            dataset = runner.train_dataloader.dataset
            items = [dataset[i] for i in range(min(self.num_samples, len(dataset)))]
            self._batch = (torch.stack([it['inputs']['label'] for it in items]),
                           torch.stack([it['inputs']['img'] for it in items]))
        return self._batch

    @master_only
    def _save(self, runner, iteration: int) -> None:
        model = unwrap(runner.model)
        labels, reals = self._fixed_batch(runner)
        fakes = model.translate(labels, self.sample_model).round().byte().cpu()
        classes = ClassSet(runner.train_dataloader.dataset.metainfo['classes'])
        rows = [[classes.colorize(lab.argmax(0).numpy()) for lab in labels],
                [f.permute(1, 2, 0).numpy() for f in fakes],
                [r.permute(1, 2, 0).numpy().astype(np.uint8) for r in reals]]
        grid = tile_grid(rows, row_titles=['label', 'generated', 'real'], pad=2,
                         classes=classes)
        path = osp.join(runner.work_dir, 'vis', f'translation_iter_{iteration}.png')
        save_rgb(path, grid)
        runner.logger.info(f'translation grid written to {path}')
