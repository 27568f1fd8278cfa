"""The holes the inpainting translator paints: lesion regions, dilated, in the field of view.

* The lesion hole of a one-hot label map (N, C, H, W) is every pixel within Euclidean
  distance ``margin`` of a pixel of the hole classes (by default every lesion class but
  the optic disc), inside the field of view (the pixels whose class is not ``BG``,
  index 0). Dilation is a convolution with the disk ``dy**2 + dx**2 <= margin**2``.
* For training, an image whose lesion hole is empty (a healthy image, or one whose
  lesions are all of other classes) gets a random lesion-shaped hole instead: with
  probability ``borrow_prob`` the lesion hole of another image of the batch that has one
  (cut to this image's field of view), otherwise, or when that leaves nothing, a few
  random ellipses (``num_blobs`` of them, semi-axes a fraction ``radius`` of the image
  side, centres drawn among the field-of-view pixels) dilated by ``margin`` and cut to
  the field of view. Every random number comes from torch's CPU generator (or the one
  passed in), so a seeded run, and one resumed with its random states
  (``RandomStateHook``), draws the same holes.

Holes are computed in float32 whatever autocast context the caller runs in, and
returned as bool tensors (N, 1, H, W).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ...classes import ClassSet

#: Defaults of the random holes of lesion-free training images.
DEFAULT_RANDOM_HOLE = dict(borrow_prob=0.5, num_blobs=(1, 8), radius=(0.01, 0.04))


def _no_autocast(device: torch.device):
    return torch.autocast(device_type=device.type, enabled=False)


def disk_kernel(radius: int, device=None) -> torch.Tensor:
    """(1, 1, 2r + 1, 2r + 1) float32: 1 where ``dy**2 + dx**2 <= r**2``."""
    r = torch.arange(-radius, radius + 1, device=device)
    return ((r[:, None] ** 2 + r[None] ** 2) <= radius ** 2).float()[None, None]


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Euclidean dilation of a binary mask (N, 1, H, W) by ``radius`` pixels: every pixel
    within distance ``radius`` of a mask pixel (the image border is not a mask pixel)."""
    mask = mask > 0.5 if mask.dtype != torch.bool else mask
    if radius <= 0:
        return mask.clone()
    with _no_autocast(mask.device):
        hits = F.conv2d(mask.float(), disk_kernel(radius, mask.device), padding=radius)
    return hits > 0.5


def field_of_view(onehot: torch.Tensor) -> torch.Tensor:
    """The field of view of one-hot label maps (N, C, H, W): pixels not of class ``BG``
    (channel 0), as (N, 1, H, W) bool."""
    return onehot[:, :1] < 0.5


def resolve_hole_classes(class_set: ClassSet,
                         hole_classes: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """The codes of ``hole_classes`` (None: every lesion class but ``OD``), checked
    against the class set."""
    if hole_classes is None:
        codes = tuple(c for c in class_set.lesion_codes if c != 'OD')
    else:
        if isinstance(hole_classes, str):
            raise TypeError(f'hole_classes must be a list of class codes, got the string '
                            f'{hole_classes!r}; write [{hole_classes!r}]')
        codes = tuple(hole_classes)
        unknown = [c for c in codes if c not in class_set.lesion_codes]
        if unknown:
            raise KeyError(f'hole_classes: {unknown} not among the lesion classes '
                           f'{list(class_set.lesion_codes)}')
    if not codes:
        raise ValueError(f'hole_classes: no class to paint; the lesion classes are '
                         f'{list(class_set.lesion_codes)} (the optic disc is left out by '
                         f'default)')
    return codes


def _pair(value, name: str, kind, low, high=None):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, kind) for v in value)):
        raise ValueError(f'random_hole.{name} must be a number or a (min, max) pair, got '
                         f'{value!r}')
    lo, hi = value
    if lo < low or hi < lo or (high is not None and hi > high):
        raise ValueError(f'random_hole.{name} = {tuple(value)}: expected {low} <= min <= max'
                         + (f' <= {high}' if high is not None else ''))
    return lo, hi


class LesionHoles:
    """Hole masks of one class set (see the module docstring).

    Args:
        class_set: the run's classes.
        hole_classes: the classes whose regions are painted (None: the lesion classes
            but ``OD``).
        margin: dilation of the lesion regions, in pixels of the image the holes are
            computed for (an integer >= 0).
        random_hole: ``borrow_prob`` (0.5), ``num_blobs`` ((1, 8): min and max, inclusive),
            ``radius`` ((0.01, 0.04): the ellipses' semi-axes as fractions of the image
            side, min and max).
    """

    def __init__(self, class_set: ClassSet, hole_classes: Optional[Sequence[str]] = None,
                 margin: int = 4, random_hole: Optional[dict] = None):
        if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
            raise ValueError(f'margin must be an integer >= 0 (pixels), got {margin!r}')
        random_hole = dict(DEFAULT_RANDOM_HOLE, **(random_hole or {}))
        unknown = set(random_hole) - set(DEFAULT_RANDOM_HOLE)
        if unknown:
            raise KeyError(f'random_hole: unknown key(s) {sorted(unknown)}; expected some of '
                           f'{sorted(DEFAULT_RANDOM_HOLE)}')
        prob = random_hole['borrow_prob']
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
            raise ValueError(f'random_hole.borrow_prob must be a number in [0, 1], got '
                             f'{prob!r}')
        self.num_blobs = _pair(random_hole['num_blobs'], 'num_blobs', int, 1)
        self.radius = _pair(random_hole['radius'], 'radius', (int, float), 0, 1)
        self.borrow_prob = float(prob)
        self.class_set = class_set
        self.codes = resolve_hole_classes(class_set, hole_classes)
        self.indices = tuple(class_set.index(c) for c in self.codes)
        self.margin = margin

    def _check(self, onehot: torch.Tensor) -> None:
        if onehot.ndim != 4 or onehot.shape[1] != len(self.class_set):
            raise ValueError(f'expected one-hot label maps (N, {len(self.class_set)}, H, W) '
                             f'of the classes {list(self.class_set.codes)}, got shape '
                             f'{tuple(onehot.shape)}')

    def lesions(self, onehot: torch.Tensor) -> torch.Tensor:
        """The lesion holes (N, 1, H, W) bool: the hole classes dilated by ``margin``, in
        the field of view."""
        self._check(onehot)
        lesion = (onehot[:, list(self.indices)] > 0.5).any(dim=1, keepdim=True)
        return dilate(lesion, self.margin) & field_of_view(onehot)

    def blobs(self, fov: torch.Tensor, generator: Optional[torch.Generator] = None
              ) -> torch.Tensor:
        """Random ellipses (1, 1, H, W) bool for one field of view (1, 1, H, W), dilated
        by ``margin`` and cut to it; never empty."""
        h, w = fov.shape[-2:]
        flat = fov.reshape(-1).float().cpu()
        if not flat.any():
            raise ValueError('a label map of the batch has no field of view (every pixel '
                             'BG): no hole can be drawn on it')
        lo, hi = self.num_blobs
        k = int(torch.randint(lo, hi + 1, (1,), generator=generator))
        centres = torch.multinomial(flat, k, replacement=True, generator=generator)
        side = min(h, w)
        rlo, rhi = self.radius
        axes = (rlo + (rhi - rlo) * torch.rand(k, 2, generator=generator)) * side
        axes = axes.clamp_min(0.5)  # at least the centre pixel
        angle = torch.rand(k, generator=generator) * math.pi
        device = fov.device
        cy = (centres // w).float().to(device)[:, None, None]
        cx = (centres % w).float().to(device)[:, None, None]
        ys = torch.arange(h, device=device, dtype=torch.float32)[None, :, None] - cy
        xs = torch.arange(w, device=device, dtype=torch.float32)[None, None, :] - cx
        cos, sin = angle.cos().to(device)[:, None, None], angle.sin().to(device)[:, None, None]
        a, b = axes[:, 0].to(device)[:, None, None], axes[:, 1].to(device)[:, None, None]
        u, v = xs * cos + ys * sin, -xs * sin + ys * cos
        inside = ((u / a) ** 2 + (v / b) ** 2 <= 1).any(dim=0)[None, None]
        return dilate(inside, self.margin) & fov

    def sample(self, onehot: torch.Tensor, generator: Optional[torch.Generator] = None
               ) -> torch.Tensor:
        """Training holes (N, 1, H, W) bool: each image's lesion hole, or, where that is
        empty, a random one (borrowed from another image of the batch or drawn as
        ellipses); never empty for an image with a field of view."""
        holes = self.lesions(onehot)
        fov = field_of_view(onehot)
        has = holes.flatten(1).any(dim=1).tolist()
        if all(has):
            return holes
        out = holes.clone()
        donors = [j for j, h in enumerate(has) if h]
        for i, own in enumerate(has):
            if own:
                continue
            hole = None
            if donors and float(torch.rand(1, generator=generator)) < self.borrow_prob:
                j = donors[int(torch.randint(len(donors), (1,), generator=generator))]
                hole = holes[j:j + 1] & fov[i:i + 1]
                if not hole.any():
                    hole = None
            if hole is None:
                hole = self.blobs(fov[i:i + 1], generator)
            out[i:i + 1] = hole
        return out
