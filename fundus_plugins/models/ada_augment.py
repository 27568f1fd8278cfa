"""Adaptive discriminator augmentation (ADA) for label maps and images.

After Karras et al., "Training Generative Adversarial Networks with Limited Data"
(NeurIPS 2020), NVlabs/stylegan2-ada-pytorch ``training/augment.py``: every
augmentation is applied to each sample independently with probability ``p``, to all
that the discriminator sees (real and fake alike), so that the generator cannot learn
the augmentations (they are "non-leaking" for p < ~0.8).

All geometric operations are folded into one 3x3 homogeneous matrix per sample,
``G = G_1 @ G_2 @ ...``, which maps output pixel coordinates (normalised to [-1, 1])
to input coordinates; the batch is then resampled once with ``grid_sample``
(bilinear, pure PyTorch: it runs on CPU and CUDA alike, with no compiled mmcv op).

For label maps the padding is the background class: pixels sampled from outside the
image get all their probability mass on channel ``background_channel``, so every pixel
stays a probability vector (bilinear interpolation is a convex combination). For
images, padding is zero (black, as outside a fundus field of view).

Operations (``*_prob`` multiplies ``p``; 0 turns one off):

=========  ======================================================================
xflip      mirror left-right
rotate90   rotate by a random multiple of 90 degrees
xint       integer translation, up to ``xint_max`` of the image size
scale      isotropic scaling, log2-normal with std ``scale_std``
rotate     arbitrary rotation (applied with prob 1 - sqrt(1 - p), twice, as ADA)
aniso      anisotropic scaling, log2-normal with std ``aniso_std``
xfrac      fractional translation, normal with std ``xfrac_std`` of the image size
noise      additive Gaussian noise, std ~ |N(0, noise_std)|; label maps are
           renormalised to the simplex afterwards
cutout     a square of side ``cutout_size`` (fraction of the image) set to zero
=========  ======================================================================
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def _translate(tx, ty):
    m = _eye_like(tx)
    m[:, 0, 2] = tx
    m[:, 1, 2] = ty
    return m


def _scale(sx, sy):
    m = _eye_like(sx)
    m[:, 0, 0] = sx
    m[:, 1, 1] = sy
    return m


def _rotate(theta):
    m = _eye_like(theta)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0] = c
    m[:, 0, 1] = -s
    m[:, 1, 0] = s
    m[:, 1, 1] = c
    return m


def _eye_like(v):
    return torch.eye(3, device=v.device, dtype=v.dtype).repeat(v.shape[0], 1, 1)


class AdaAugment(nn.Module):
    """Augment a batch with probability ``p`` per operation and sample.

    ``p`` is a buffer, so it is saved in checkpoints and restored on resume; the ADA hook
    (:class:`fundus_plugins.engine.AdaHook`) moves it during training.

    Args:
        kind: ``'label'`` (probability maps, background padding, renormalised noise)
            or ``'image'``.
        background_channel: the channel that gets the padding's mass (label maps).
        p: initial probability.
    """

    def __init__(self, kind: str = 'label', background_channel: int = 0, p: float = 0.0,
                 xflip_prob: float = 1.0, rotate90_prob: float = 1.0, xint_prob: float = 1.0,
                 xint_max: float = 0.125, scale_prob: float = 1.0, scale_std: float = 0.2,
                 rotate_prob: float = 1.0, rotate_max: float = 1.0, aniso_prob: float = 1.0,
                 aniso_std: float = 0.2, xfrac_prob: float = 1.0, xfrac_std: float = 0.125,
                 noise_prob: float = 0.0, noise_std: float = 0.1, cutout_prob: float = 0.0,
                 cutout_size: float = 0.5):
        super().__init__()
        if kind not in ('label', 'image'):
            raise ValueError(f"AdaAugment: kind must be 'label' or 'image', got {kind!r}")
        self.kind = kind
        self.background_channel = background_channel
        self.register_buffer('p', torch.tensor(float(p)))
        self.xflip_prob, self.rotate90_prob = xflip_prob, rotate90_prob
        self.xint_prob, self.xint_max = xint_prob, xint_max
        self.scale_prob, self.scale_std = scale_prob, scale_std
        self.rotate_prob, self.rotate_max = rotate_prob, rotate_max
        self.aniso_prob, self.aniso_std = aniso_prob, aniso_std
        self.xfrac_prob, self.xfrac_std = xfrac_prob, xfrac_std
        self.noise_prob, self.noise_std = noise_prob, noise_std
        self.cutout_prob, self.cutout_size = cutout_prob, cutout_size

    # ------------------------------------------------------------------------------------
    def _gate(self, n, prob, device):
        """Per-sample Bernoulli(p * prob) as a float mask of shape (n,)."""
        return (torch.rand(n, device=device) < self.p * prob).float()

    def geometric_matrix(self, n: int, height: int, width: int,
                         device) -> Optional[torch.Tensor]:
        """(n, 3, 3) output-to-input matrices in normalised coordinates, or None when
        every operation is off (p == 0)."""
        if float(self.p) <= 0:
            return None
        dt = torch.float32
        G = torch.eye(3, device=device, dtype=dt).repeat(n, 1, 1)

        if self.xflip_prob > 0:  # flip: x -> -x
            i = torch.floor(torch.rand(n, device=device) * 2)
            i = torch.where(self._gate(n, self.xflip_prob, device) > 0, i, torch.zeros_like(i))
            G = G @ _scale(1 - 2 * i, torch.ones_like(i))
        if self.rotate90_prob > 0:
            i = torch.floor(torch.rand(n, device=device) * 4)
            i = torch.where(self._gate(n, self.rotate90_prob, device) > 0, i,
                            torch.zeros_like(i))
            G = G @ _rotate(-math.pi / 2 * i)
        if self.xint_prob > 0:  # integer translation, in pixels, as normalised offsets
            t = (torch.rand(n, 2, device=device) * 2 - 1) * self.xint_max
            t = t * self._gate(n, self.xint_prob, device)[:, None]
            tx = torch.round(t[:, 0] * width) * 2 / width
            ty = torch.round(t[:, 1] * height) * 2 / height
            G = G @ _translate(tx, ty)
        if self.scale_prob > 0:
            s = torch.exp2(torch.randn(n, device=device) * self.scale_std)
            s = torch.where(self._gate(n, self.scale_prob, device) > 0, s, torch.ones_like(s))
            G = G @ _scale(s, s)
        p_rot = 1 - torch.sqrt(torch.clamp(1 - self.p * self.rotate_prob, 0, 1))
        if self.rotate_prob > 0:  # pre-rotation, then anisotropy, then post-rotation
            theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * self.rotate_max
            theta = theta * (torch.rand(n, device=device) < p_rot).float()
            G = G @ _rotate(-theta)
        if self.aniso_prob > 0:
            s = torch.exp2(torch.randn(n, device=device) * self.aniso_std)
            s = torch.where(self._gate(n, self.aniso_prob, device) > 0, s, torch.ones_like(s))
            G = G @ _scale(s, 1 / s)
        if self.rotate_prob > 0:
            theta = (torch.rand(n, device=device) * 2 - 1) * math.pi * self.rotate_max
            theta = theta * (torch.rand(n, device=device) < p_rot).float()
            G = G @ _rotate(-theta)
        if self.xfrac_prob > 0:
            t = torch.randn(n, 2, device=device) * self.xfrac_std * 2
            t = t * self._gate(n, self.xfrac_prob, device)[:, None]
            G = G @ _translate(t[:, 0], t[:, 1])
        return G

    def apply_matrix(self, x: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """Resample ``x`` (N, C, H, W) through output-to-input matrices ``G``."""
        n, c, h, w = x.shape
        theta = G[:, :2, :].to(x.dtype)
        grid = F.affine_grid(theta, (n, c, h, w), align_corners=False)
        out = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros',
                            align_corners=False)
        if self.kind == 'label':
            # Put the mass that came from outside the image on the background channel.
            missing = (1 - out.sum(dim=1)).clamp(min=0)
            bg = self.background_channel
            out = torch.cat([out[:, :bg], out[:, bg:bg + 1] + missing[:, None],
                             out[:, bg + 1:]], dim=1)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(self.p) <= 0:
            return x
        n, c, h, w = x.shape
        G = self.geometric_matrix(n, h, w, x.device)
        x = self.apply_matrix(x, G)
        if self.noise_prob > 0:
            sigma = torch.randn(n, 1, 1, 1, device=x.device).abs() * self.noise_std
            sigma = sigma * self._gate(n, self.noise_prob, x.device)[:, None, None, None]
            x = x + torch.randn_like(x) * sigma
            if self.kind == 'label':
                x = x.clamp(min=0)
                x = x / x.sum(dim=1, keepdim=True).clamp(min=1e-8)
        if self.cutout_prob > 0:
            gate = self._gate(n, self.cutout_prob, x.device)[:, None, None, None]
            cy, cx = torch.rand(n, 1, 1, 1, device=x.device), torch.rand(n, 1, 1, 1,
                                                                          device=x.device)
            yy = (torch.arange(h, device=x.device).view(1, 1, h, 1) + 0.5) / h
            xx = (torch.arange(w, device=x.device).view(1, 1, 1, w) + 0.5) / w
            inside = ((yy - cy).abs() < self.cutout_size / 2) & \
                ((xx - cx).abs() < self.cutout_size / 2)
            x = x * (1 - inside.float() * gate)
        return x

    def extra_repr(self) -> str:
        return f'kind={self.kind}, p={float(self.p):.4f}'
