"""The field of view of sampled label maps: anatomy, not something to sample.

The label generator's argmax decides per pixel between background (``BG``, outside the
field of view) and everything else, and at high grades it leaves background pixels
inside the field of view and ragged rims, which the translator paints as black holes.
So the written maps take their field of view from elsewhere (``fov`` of
:func:`fundus_plugins.apis.sample_label_maps`):

* ``'real'``: the field of view of a real training map, drawn at random (seeded) from a
  prepared root (:class:`RealFovPool`): circles, cut flat where the camera frame cut them;
* ``'fitted'``: a circle fitted to the generator's own field of view (its centroid and
  the radius of a disc of the same area);
* ``'generated'``: the generator's argmax as it is (the paper).

Inside the chosen field of view every pixel keeps the generator's class, and where that
is ``BG`` (a hole, or a band between the generator's rim and the chosen one) it becomes
``RET``; outside it is ``BG``; so lesions and the disc stay inside it.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...datasets.layout import label_path, read_meta

FOV_MODES = ('real', 'fitted', 'generated')


class RealFovPool:
    """The fields of view (label != BG) of a prepared root's maps, at ``size``."""

    def __init__(self, root, size: int, split: Optional[str] = 'train'):
        masks = []
        for row in read_meta(root):
            if split is not None and row.split != split:
                continue
            path = label_path(root, row.name)
            lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if lab is None or lab.ndim != 2:
                raise ValueError(f'{path}: missing or not a single-channel label map')
            fov = (lab != 0).astype(np.uint8)
            if fov.shape != (size, size):
                fov = cv2.resize(fov, (size, size), interpolation=cv2.INTER_NEAREST)
            masks.append(fov.astype(bool))
        if not masks:
            raise ValueError(f'{root}: no label maps in split {split!r} to take fields of '
                             f'view from')
        self.root = str(root)
        self.masks = np.stack(masks)

    def __len__(self):
        return len(self.masks)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, size, size) bool masks drawn with replacement."""
        return self.masks[rng.integers(0, len(self.masks), n)]


def fitted_circles(maps: np.ndarray) -> np.ndarray:
    """(N, H, W) bool: per map, the disc with the centroid and the area of its non-BG
    pixels (the whole square when a map has none)."""
    n, h, w = maps.shape
    yy, xx = np.mgrid[:h, :w]
    out = np.ones((n, h, w), bool)
    for i, m in enumerate(maps):
        ys, xs = np.nonzero(m != 0)
        if ys.size:
            r = np.sqrt(ys.size / np.pi)
            out[i] = (yy - ys.mean()) ** 2 + (xx - xs.mean()) ** 2 <= r * r
    return out


def apply_fov(probs: torch.Tensor, fov: np.ndarray) -> torch.Tensor:
    """(N, H, W) class indices: ``BG`` outside ``fov`` (N, H, W) bool; inside, the
    generator's class, and ``RET`` where that is ``BG`` (a hole, or the band between
    its rim and the real one: retina, not the runner-up class, which would strew discs
    and lesions along the rim)."""
    maps = probs.argmax(1)
    inside = torch.where(maps == 0, torch.ones_like(maps), maps)
    mask = torch.as_tensor(fov, device=probs.device)
    return torch.where(mask, inside, torch.zeros_like(inside))


def maps_with_fov(probs: torch.Tensor, scale: float = 1.0, fov: str = 'generated',
                  pool: Optional[RealFovPool] = None,
                  rng: Optional[np.random.Generator] = None) -> torch.Tensor:
    """(N, C, H, W) probabilities -> (N, H*scale, W*scale) class indices with the field
    of view of ``fov`` (module docstring). Upsampling is bilinear on the probabilities,
    then argmax, as the paper goes from 256 to 512."""
    if fov not in FOV_MODES:
        raise ValueError(f'fov must be one of {FOV_MODES}, got {fov!r}')
    if scale != 1.0:
        probs = F.interpolate(probs, scale_factor=scale, mode='bilinear', align_corners=False)
    maps = probs.argmax(dim=1)
    if fov == 'generated':
        return maps
    if fov == 'fitted':
        mask = fitted_circles(maps.cpu().numpy())
    else:
        if pool is None:
            raise ValueError("fov='real' needs a RealFovPool (a prepared root of real maps)")
        if pool.masks.shape[1:] != tuple(maps.shape[1:]):
            raise ValueError(f'the real fields of view are {pool.masks.shape[1:]} but the '
                             f'maps are {tuple(maps.shape[1:])}')
        mask = pool.draw(len(maps), rng if rng is not None else np.random.default_rng(0))
    return apply_fov(probs, mask)
