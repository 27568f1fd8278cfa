"""FID and KID of a folder of images against another, through StyleGAN's Inception.

The network is Tero Karras' TorchScript Inception-v3 (``inception-2015-12-05.pt``, the
one mmagic's ``FrechetInceptionDistance`` loads with ``inception_style='StyleGAN'``):
uint8 RGB in, 2048-d pool features out, resizing done inside. FID uses mmagic's own
formula (``FrechetInceptionDistance._calc_fid``); KID is the unbiased polynomial-kernel
MMD of Binkowski et al. (2018) averaged over random subsets, as in StyleGAN2-ADA.

The network is found as mmagic finds it (``mmagic/evaluation/functional/
inception_utils.py``): ``'auto'`` (or a URL) means the file in mmagic's cache
(``~/.cache/openmmlab/mmagic/inception-2015-12-05.pt``), downloaded there from NVIDIA's
URL when absent; anything else is a local path. FID and KID are measurements, not
training: when the file cannot be had (offline and not cached, a missing local file)
the result says that they were not computed and where to put the file, and carries no
number.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
from mmagic.evaluation.metrics.fid import FrechetInceptionDistance
from mmagic.utils import MMAGIC_CACHE_DIR
from mmengine.logging import print_log

from ..errors import UserFileNotFoundError, UserValueError

#: StyleGAN2-ADA's TorchScript Inception, mmagic's ``TERO_INCEPTION_URL``.
INCEPTION_URL = ('https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/'
                 'inception-2015-12-05.pt')
INCEPTION_FILE = INCEPTION_URL.rsplit('/', 1)[-1]
#: Where downloaded networks are kept: mmagic's cache (read when a path is resolved).
INCEPTION_CACHE_DIR = MMAGIC_CACHE_DIR
#: ``inception_path`` value meaning mmagic's cache, downloading from INCEPTION_URL.
AUTO = 'auto'


def inception_cache_path(url: str = INCEPTION_URL) -> str:
    """The file ``url`` is cached as: ``INCEPTION_CACHE_DIR/<its file name>``."""
    return osp.join(INCEPTION_CACHE_DIR, url.rsplit('/', 1)[-1])


def resolve_inception(source: Optional[str]) -> str:
    """The local file of the Inception network ``source`` names.

    ``'auto'``: mmagic's cache (:func:`inception_cache_path`), downloading
    ``INCEPTION_URL`` there with torch hub's ``download_url_to_file`` when the file is
    absent; an ``http(s)://`` URL: the same with that URL; anything else: a local path.
    Raises FileNotFoundError saying where to put the file when there is none.
    """
    if not source:
        raise UserFileNotFoundError(
            f"no Inception network given: set inception_path / --inception to '{AUTO}' "
            f'(the file in mmagic\'s cache, {inception_cache_path()}, downloaded there from '
            f'{INCEPTION_URL} when online) or to a local copy of {INCEPTION_FILE}')
    source = os.fspath(source)
    if source == AUTO or source.startswith(('http://', 'https://')):
        url = INCEPTION_URL if source == AUTO else source
        path = inception_cache_path(url)
        if osp.isfile(path):
            return path
        print_log(f'Inception: {path} is absent; downloading {url}', logger='current')
        try:
            os.makedirs(osp.dirname(path), exist_ok=True)
            torch.hub.download_url_to_file(url, path)
        except Exception as exc:  # offline, refused, interrupted
            raise UserFileNotFoundError(
                f'Inception file {path} does not exist and downloading {url} failed '
                f'({type(exc).__name__}: {exc}); put {url.rsplit("/", 1)[-1]} ({url}) at '
                f'{path}') from exc
        return path
    if not osp.isfile(source):
        raise UserFileNotFoundError(
            f'Inception file {source} does not exist; put {INCEPTION_FILE} '
            f"({INCEPTION_URL}) there, or set inception_path / --inception to '{AUTO}' "
            f"(mmagic's cache, {inception_cache_path()}, downloaded there when online)")
    return source


def load_inception(source: Optional[str]):
    """The TorchScript Inception :func:`resolve_inception` finds for ``source``, in eval
    mode. FileNotFoundError (saying where to put the file) when there is none; a file
    that is not a TorchScript network is an error naming it."""
    path = resolve_inception(source)
    try:
        net = torch.jit.load(path, map_location='cpu')
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
        raise UserValueError('no images to compute Inception features of')
    return np.concatenate(feats)


def fid_from_features(fake: np.ndarray, real: np.ndarray) -> float:
    if len(fake) < 2 or len(real) < 2:
        raise UserValueError(f'FID needs at least 2 images per side, got {len(fake)} fake and '
                             f'{len(real)} real')
    fid, _, _ = FrechetInceptionDistance._calc_fid(
        fake.mean(0), np.cov(fake, rowvar=False), real.mean(0), np.cov(real, rowvar=False))
    return fid


def kid_from_features(fake: np.ndarray, real: np.ndarray, num_subsets: int = 100,
                      max_subset_size: int = 1000, seed: int = 0) -> float:
    """Unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, mean over subsets."""
    n = min(len(fake), len(real), max_subset_size)
    if n < 2:
        raise UserValueError(f'KID needs at least 2 images per side, got {len(fake)} fake and '
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
    """{'fid', 'kid', 'num_fake', 'num_real'}, or {'fid': None, 'kid': None, 'note'} when
    the Inception network (``inception_path``: a local path, ``'auto'`` or a URL, see
    :func:`resolve_inception`) cannot be had; the note says where to put its file."""
    try:
        net = load_inception(inception_path)
    except FileNotFoundError as exc:
        print_log(f'FID / KID not computed: {exc}', logger='current', level=30)
        return {'fid': None, 'kid': None, 'note': f'not computed: {exc}'}
    fake = inception_features(net, fake_images, device)
    real = inception_features(net, real_images, device)
    return {'fid': fid_from_features(fake, real), 'kid': kid_from_features(fake, real),
            'num_fake': len(fake), 'num_real': len(real)}
