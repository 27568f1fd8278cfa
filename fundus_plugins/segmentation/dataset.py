"""The segmentation dataset: real prepared data plus a drawn fraction of synthetic pairs.

Registered in mmseg's DATASETS. The synthetic fraction p is the share of synthetic images
in the training set, synthetic / (real + synthetic), so the synthetic count is
round(real * p / (1 - p)) (the paper: 738 real; 246, 738 and 2214 synthetic for 25, 50 and
75 %), drawn without replacement by ``synthetic_seed`` from the synthetic root. The test
split is real only: asking for synthetic images outside the training split, or a real
root whose test rows are marked synthetic, is an error. Nothing real can enter as
synthetic: the synthetic root may not be the real root, every one of its rows must be
``grade_source=synthetic``, and no name may be one of the real root's.
"""
from __future__ import annotations

import os.path as osp
from typing import Optional

import numpy as np
from mmengine.logging import print_log
from mmseg.registry import DATASETS

from ..datasets import FundusDataset, read_meta
from ..errors import UserValueError


def synthetic_count(num_real: int, fraction: float) -> int:
    """Synthetic images that make ``fraction`` of a training set with ``num_real`` real."""
    if not 0 <= fraction < 1:
        raise UserValueError(f'synthetic_fraction must be in [0, 1), got {fraction}')
    return int(round(num_real * fraction / (1 - fraction)))


@DATASETS.register_module()
class FundusSegDataset(FundusDataset):
    """Args (besides :class:`~fundus_plugins.datasets.FundusDataset`'s, whose
    ``unannotated`` defaults to ``'ignore'`` here: a class an image's source does not
    annotate is left out of the loss on that image, never taught as retina):
        synthetic_root: a prepared root of synthetic pairs (``tools/synthesize.py``).
        synthetic_fraction: p in [0, 1): the synthetic share of the training set.
        synthetic_seed: seed of the draw from ``synthetic_root``.
    """

    def __init__(self, data_root: str, synthetic_root: Optional[str] = None,
                 synthetic_fraction: float = 0.0, synthetic_seed: int = 0,
                 unannotated: str = 'ignore', **kwargs):
        self.synthetic_root = synthetic_root
        self.synthetic_fraction = float(synthetic_fraction)
        self.synthetic_seed = synthetic_seed
        synthetic_count(1, self.synthetic_fraction)  # range check, before any loading
        if self.synthetic_fraction > 0:
            if synthetic_root is None:
                raise UserValueError('FundusSegDataset: synthetic_fraction is '
                                     f'{self.synthetic_fraction} but synthetic_root is not set')
            if kwargs.get('split', 'train') != 'train':
                raise UserValueError('FundusSegDataset: synthetic images go into the training '
                                     f"split only, not split={kwargs.get('split')!r}; the test "
                                     'split stays real')
        super().__init__(data_root, unannotated=unannotated, **kwargs)

    def load_data_list(self) -> list[dict]:
        real = self._load_root(self.data_root, self.split)
        if self.split != 'train':
            bad = [d['name'] for d in real if d['grade_source'] == 'synthetic']
            if bad:
                raise UserValueError(f'{self.data_root}/meta.csv: {len(bad)} row(s) of split '
                                     f'{self.split!r} are synthetic (e.g. {bad[0]}); the test '
                                     'split must be real data only')
        for d in real:
            d['synthetic'] = False
        need = synthetic_count(len(real), self.synthetic_fraction)
        if need == 0:
            return real
        pool = self._load_root(self.synthetic_root, None)
        self._check_no_leakage(pool)
        if len(pool) < need:
            raise UserValueError(
                f'synthetic_fraction {self.synthetic_fraction} of {len(real)} real training '
                f'images needs {need} synthetic images; {self.synthetic_root} has '
                f'{len(pool)}. Synthesize more (tools/synthesize.py) or lower the fraction.')
        rng = np.random.default_rng(self.synthetic_seed)
        picked = [pool[i] for i in sorted(rng.choice(len(pool), need, replace=False))]
        for d in picked:
            d['synthetic'] = True
        print_log(f'FundusSegDataset: {len(real)} real + {need} synthetic training images '
                  f'(fraction {self.synthetic_fraction:g}, seed {self.synthetic_seed}, from '
                  f'{self.synthetic_root})', logger='current')
        return real + picked

    def _check_no_leakage(self, pool: list[dict]) -> None:
        """Refuse a synthetic pool that is, or holds, real data."""
        where = f'synthetic_root {self.synthetic_root}'
        if osp.realpath(self.synthetic_root) == osp.realpath(self.data_root):
            raise UserValueError(f'FundusSegDataset: {where} is the real data_root; real images '
                                 'would enter training as synthetic. Point it at the output of '
                                 'tools/synthesize.py.')
        real = [d['name'] for d in pool if d['grade_source'] != 'synthetic']
        if real:
            raise UserValueError(f'FundusSegDataset: {self.synthetic_root}/meta.csv: {len(real)} '
                                 f'row(s) are not grade_source=synthetic (e.g. {real[0]!r}); a '
                                 'synthetic root holds only generated pairs (tools/synthesize.py)')
        shared = sorted({r.name for r in read_meta(self.data_root)} &
                        {d['name'] for d in pool})
        if shared:
            raise UserValueError(f'FundusSegDataset: {where} shares {len(shared)} image name(s) '
                                 f'with the real data_root {self.data_root} (e.g. {shared[0]!r}); '
                                 'real images must not enter training as synthetic')

    @property
    def num_synthetic(self) -> int:
        return sum(bool(self.get_data_info(i)['synthetic']) for i in range(len(self)))
