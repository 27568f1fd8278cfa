"""The label-map measures of :mod:`.label_stats` as an mmagic metric for the val loop."""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np
import torch
from mmagic.evaluation.metrics.base_gen_metric import GenerativeMetric
from mmagic.registry import METRICS
from mmagic.structures import DataSample
from mmengine.dist import collect_results, is_main_process
from mmengine.logging import print_log

from ..classes import ClassSet
from .label_stats import GRADES, MapSet, compare, format_report, load_maps, summary_scalars


@METRICS.register_module()
class LabelMapMetric(GenerativeMetric):
    """Grade accuracy, optic discs per map, lesion load and diversity of generated maps.

    Generates ``fake_nums`` maps with grades cycling 0..4 (so every grade is equally
    represented) and compares them with the real maps of ``real_root`` (train split for
    the grade classifier, train + test for the distributions), at the generator's size.

    Args:
        real_root: prepared root of the real data.
        classes: class list (default: the val dataset's).
        fake_nums: number of maps to generate.
        sample_model: 'ema' or 'orig'.
    """

    SAMPLER_MODE = 'LabelMaps'
    default_prefix = 'labels'

    def __init__(self, real_root: str, fake_nums: int = 250, classes: Optional[Sequence] = None,
                 sample_model: str = 'ema', seed: int = 0, collect_device: str = 'cpu',
                 prefix: Optional[str] = None):
        super().__init__(fake_nums=fake_nums, real_nums=0, sample_model=sample_model,
                         collect_device=collect_device, prefix=prefix)
        self.real_root = real_root
        self.classes_cfg = classes
        self.seed = seed
        self.report = None

    def prepare(self, module, dataloader) -> None:
        super().prepare(module, dataloader)
        codes = self.classes_cfg or dataloader.dataset.metainfo['classes']
        self.class_set = ClassSet(codes)
        size = module.generator.out_size
        self.real_train = load_maps(self.real_root, self.class_set, size, split='train')
        self.real_test = load_maps(self.real_root, self.class_set, size, split='test')

    def get_metric_sampler(self, model, dataloader, metrics):
        batch_size = dataloader.batch_size
        total = max(m.fake_nums_per_device for m in metrics)
        sample_model = self.sample_model

        class BalancedGradeSampler:
            """Batches of sampling requests whose grades cycle 0, 1, ..., 4."""

            def __len__(self):
                return math.ceil(total / batch_size)

            def __iter__(self):
                for b in range(len(self)):
                    samples = []
                    for k in range(batch_size):
                        ds = DataSample()
                        ds.set_gt_label(torch.tensor((b * batch_size + k) % len(GRADES)))
                        samples.append(ds)
                    yield dict(inputs=dict(sample_model=sample_model, num_batches=batch_size),
                               data_samples=samples)

        return BalancedGradeSampler()

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for pred in data_samples:
            if len(self.fake_results) >= self.fake_nums_per_device:
                return
            out = pred[self.sample_model] if self.sample_model in pred else pred
            probs = out['fake_img']
            grade = int(pred['gt_label']['label'])
            self.fake_results.append((probs.argmax(0).cpu().numpy().astype(np.uint8), grade))

    def evaluate(self) -> dict:
        results = collect_results(self.fake_results, self.fake_nums, self.collect_device)
        metrics = {}
        if is_main_process():
            metrics = self.compute_metrics(results, None)
            metrics = {f'{self.prefix}/{k}': v for k, v in metrics.items()}
        self.fake_results.clear()
        return metrics if is_main_process() else {}

    def compute_metrics(self, results_fake: List, results_real=None) -> dict:
        gen = MapSet.build([m for m, _ in results_fake], [g for _, g in results_fake],
                           self.class_set)
        self.report = compare(gen, self.real_train, self.real_test, self.class_set, self.seed)
        print_log('\n' + format_report(self.report), logger='current')
        return summary_scalars(self.report)
