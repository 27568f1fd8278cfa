"""FID and KID of a folder of images against another, from a local Inception file.

The network is Tero Karras' TorchScript Inception-v3 (``inception-2015-12-05.pt``, the
one mmagic's ``FrechetInceptionDistance`` loads with ``inception_style='StyleGAN'``):
uint8 RGB in, 2048-d pool features out, resizing done inside. FID uses mmagic's own
formula (``FrechetInceptionDistance._calc_fid``); KID is the unbiased polynomial-kernel
MMD of Binkowski et al. (2018) averaged over random subsets, as in StyleGAN2-ADA.

Nothing is downloaded: without a file the result says that FID and KID were not
computed and why, and carries no number.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

NOT_COMPUTED = ('not computed: no Inception file (set inception_path / --inception to a '
                'local copy of inception-2015-12-05.pt)')


def load_inception(path: Optional[str]):
    """The TorchScript Inception at ``path``; None when ``path`` is None or absent."""
    if not path or not Path(path).is_file():
        return None
    try:
        net = torch.jit.load(str(path), map_location='cpu')
    except Exception as exc:  # a corrupt or foreign file: name it
        raise RuntimeError(f'{path}: not a TorchScript Inception network ({exc})') from exc
    return net.eval()


@torch.no_grad()
def inception_features(net, images: Iterable[np.ndarray], device: str = 'cpu',
                       batch_size: int = 32) -> np.ndarray:
    """(N, D) features of uint8 RGB images (H, W, 3), any size."""
    net = net.to(device)
    feats, batch = [], []

    def flush():
        if batch:
            x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).to(device)
            feats.append(net(x, return_features=True).float().cpu().numpy())
            batch.clear()

    shape = None
    for img in images:
        if shape is not None and img.shape != shape:
            flush()
        shape = img.shape
        batch.append(np.ascontiguousarray(img, dtype=np.uint8))
        if len(batch) == batch_size:
            flush()
    flush()
    if not feats:
        raise ValueError('no images to compute Inception features of')
    return np.concatenate(feats)


def fid_from_features(fake: np.ndarray, real: np.ndarray) -> float:
    from mmagic.evaluation.metrics.fid import FrechetInceptionDistance
    if len(fake) < 2 or len(real) < 2:
        raise ValueError(f'FID needs at least 2 images per side, got {len(fake)} fake and '
                         f'{len(real)} real')
    fid, _, _ = FrechetInceptionDistance._calc_fid(
        fake.mean(0), np.cov(fake, rowvar=False), real.mean(0), np.cov(real, rowvar=False))
    return fid


def kid_from_features(fake: np.ndarray, real: np.ndarray, num_subsets: int = 100,
                      max_subset_size: int = 1000, seed: int = 0) -> float:
    """Unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, mean over subsets."""
    n = min(len(fake), len(real), max_subset_size)
    if n < 2:
        raise ValueError(f'KID needs at least 2 images per side, got {len(fake)} fake and '
                         f'{len(real)} real')
    d = fake.shape[1]
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(len(fake), n, replace=False)].astype(np.float64)
        y = real[rng.choice(len(real), n, replace=False)].astype(np.float64)
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        total += (a.sum() - np.diag(a).sum()) / (n - 1) - b.sum() * 2 / n
    return float(total / num_subsets / n)


def fid_kid(fake_images: Sequence[np.ndarray], real_images: Sequence[np.ndarray],
            inception_path: Optional[str], device: str = 'cpu') -> dict:
    """{'fid', 'kid', 'num_fake', 'num_real'} or {'fid': None, 'kid': None, 'note'}."""
    net = load_inception(inception_path)
    if net is None:
        note = NOT_COMPUTED if not inception_path else \
            f'not computed: Inception file {inception_path} does not exist'
        return {'fid': None, 'kid': None, 'note': note}
    fake = inception_features(net, fake_images, device)
    real = inception_features(net, real_images, device)
    return {'fid': fid_from_features(fake, real), 'kid': kid_from_features(fake, real),
            'num_fake': len(fake), 'num_real': len(real)}
