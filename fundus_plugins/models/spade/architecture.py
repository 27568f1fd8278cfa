"""SPADE normalisation and the SPADE residual block (Park et al., CVPR 2019).

After NVlabs/SPADE ``models/networks/normalization.py`` and ``architecture.py``:

    SPADE(x, m) = norm(x) * (1 + gamma(m)) + beta(m)

``norm`` is parameter-free (batch norm by default; instance norm by config), and
``gamma``, ``beta`` are 3 x 3 convolutions of a shared 3 x 3 conv + ReLU embedding of the
label map ``m`` resized (nearest) to the size of ``x``. The residual block is two
[SPADE, LeakyReLU 0.2, conv 3x3] steps with a learned 1 x 1 shortcut (SPADE, conv) when
the channel count changes; every conv is spectrally normalised by default.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

PARAM_FREE_NORMS = ('batch', 'instance')


def param_free_norm(kind: str, channels: int) -> nn.Module:
    if kind == 'batch':
        return nn.BatchNorm2d(channels, affine=False)
    if kind == 'instance':
        return nn.InstanceNorm2d(channels, affine=False)
    raise ValueError(f"SPADE param-free norm must be one of {PARAM_FREE_NORMS}, got {kind!r}")


class SPADE(nn.Module):
    """Spatially-adaptive denormalisation of ``x`` by the label map ``segmap``."""

    def __init__(self, norm_nc: int, label_nc: int, hidden: int = 128, kernel_size: int = 3,
                 norm: str = 'batch'):
        super().__init__()
        self.param_free_norm = param_free_norm(norm, norm_nc)
        pad = kernel_size // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size, padding=pad),
                                        nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.shape[2:], mode='nearest')
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """[SPADE, LReLU, conv] x 2 plus a (learned, when fin != fout) shortcut."""

    def __init__(self, fin: int, fout: int, label_nc: int, spectral_norm: bool = True,
                 norm: str = 'batch', hidden: int = 128):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        sn = nn.utils.spectral_norm if spectral_norm else (lambda m: m)
        self.conv_0 = sn(nn.Conv2d(fin, fmiddle, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(fmiddle, fout, 3, padding=1))
        self.norm_0 = SPADE(fin, label_nc, hidden, norm=norm)
        self.norm_1 = SPADE(fmiddle, label_nc, hidden, norm=norm)
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False))
            self.norm_s = SPADE(fin, label_nc, hidden, norm=norm)

    @staticmethod
    def actvn(x):
        return F.leaky_relu(x, 0.2)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(self.actvn(self.norm_0(x, seg)))
        dx = self.conv_1(self.actvn(self.norm_1(dx, seg)))
        return x_s + dx
