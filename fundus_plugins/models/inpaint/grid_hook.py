"""Write label / holed input / inpainted / real grids of the inpainting translator."""
from __future__ import annotations

import os.path as osp

import numpy as np
import torch
from mmagic.registry import HOOKS
from mmengine.dist import master_only

from ...classes import ClassSet
from ...engine.label_grid_hook import PeriodicGridHook
from ...engine.utils import unwrap
from ...visualization import save_rgb, tile_grid

#: The colour the grid paints holes with in the "input" row (mid grey).
HOLE_GREY = 128


@HOOKS.register_module()
class InpaintGridHook(PeriodicGridHook):
    """Every ``interval`` iterations (and at the end) save
    ``<work_dir>/vis/inpaint_iter_<N>.png`` for the first ``num_samples`` training pairs:
    rows label map, input with the hole in grey, inpainted (EMA generator), real.

    The holes are the training holes (lesion regions, random ones on lesion-free images)
    drawn once from a generator of their own seeded with ``seed``, so every grid shows the
    same holes and the training run draws the same numbers with or without the hook.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 1000, num_samples: int = 6, seed: int = 0,
                 sample_model: str = 'ema'):
        self.interval = interval
        self.num_samples = num_samples
        self.seed = seed
        self.sample_model = sample_model
        self._batch = None

    def _fixed_batch(self, runner, model):
        if self._batch is None:
            dataset = runner.train_dataloader.dataset
            items = [dataset[i] for i in range(min(self.num_samples, len(dataset)))]
            labels = torch.stack([it['inputs']['label'] for it in items]).float()
            reals = torch.stack([it['inputs']['img'] for it in items])
            gen = torch.Generator().manual_seed(self.seed)
            holes = model.training_holes(labels, generator=gen)
            self._batch = (labels, reals, holes)
        return self._batch

    @master_only
    def _save(self, runner, iteration: int) -> None:
        model = unwrap(runner.model)
        labels, reals, holes = self._fixed_batch(runner, model)
        fakes = model.inpaint(reals, holes, labels, self.sample_model).round().byte().cpu()
        classes = ClassSet(runner.train_dataloader.dataset.metainfo['classes'])
        holed = reals.masked_fill(holes, HOLE_GREY)
        rows = [[classes.colorize(lab.argmax(0).numpy()) for lab in labels],
                [h.permute(1, 2, 0).numpy().astype(np.uint8) for h in holed],
                [f.permute(1, 2, 0).numpy() for f in fakes],
                [r.permute(1, 2, 0).numpy().astype(np.uint8) for r in reals]]
        grid = tile_grid(rows, row_titles=['label', 'input', 'inpainted', 'real'], pad=2,
                         classes=classes)
        path = osp.join(runner.work_dir, 'vis', f'inpaint_iter_{iteration}.png')
        save_rgb(path, grid)
        runner.logger.info(f'inpainting grid written to {path}')
