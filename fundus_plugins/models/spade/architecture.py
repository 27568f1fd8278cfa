"""SPADE normalisation and the SPADE residual block (Park et al., CVPR 2019).

After NVlabs/SPADE ``models/networks/normalization.py`` and ``architecture.py``:

    SPADE(x, m) = norm(x) * (1 + gamma(m)) + beta(m)

``norm`` is parameter-free (batch norm by default; instance norm by config), and
``gamma``, ``beta`` are 3 x 3 convolutions of a shared 3 x 3 conv + ReLU embedding of the
label map ``m`` resized (nearest) to the size of ``x``. The residual block is two
[SPADE, LeakyReLU 0.2, conv 3x3] steps with a learned 1 x 1 shortcut (SPADE, conv) when
the channel count changes; every conv is spectrally normalised by default.

Fused modulation (``fused=True``, the default): ``gamma`` and ``beta`` run as one
convolution with ``2 * norm_nc`` outputs, its weights the two convs' weights
concatenated at each call (so the parameters, the state-dict keys ``mlp_gamma.*`` /
``mlp_beta.*`` and checkpoints stay as they were) and the ``1 +`` folded into gamma's
bias, and the modulation is one ``addcmul``: ``beta + norm(x) * (1 + gamma)``. That is
one convolution and one element-wise pass instead of two convolutions and three passes;
the result equals the unfused formula up to float rounding (``fused=False`` computes it
as written above).
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


def resize_label_map(segmap: torch.Tensor, size) -> torch.Tensor:
    """``segmap`` resized (nearest) to ``size`` (H, W); the map itself when it has that
    size already (nearest resizing to the same size is the identity)."""
    if tuple(segmap.shape[2:]) == tuple(size):
        return segmap
    return F.interpolate(segmap, size=tuple(size), mode='nearest')


class SPADE(nn.Module):
    """Spatially-adaptive denormalisation of ``x`` by the label map ``segmap``.

    ``segmap`` may have any size: it is resized (nearest) to that of ``x`` unless it has
    it already (the generator passes maps resized once per resolution and forward).
    ``fused``: gamma and beta as one convolution and the modulation as one ``addcmul``
    (see the module docstring); the parameters are the same either way.
    """

    def __init__(self, norm_nc: int, label_nc: int, hidden: int = 128, kernel_size: int = 3,
                 norm: str = 'batch', fused: bool = True):
        super().__init__()
        self.norm_nc, self.fused = norm_nc, fused
        self.param_free_norm = param_free_norm(norm, norm_nc)
        pad = kernel_size // 2
        # In place: the conv's backward needs its input, not its output, so the ReLU
        # may overwrite it (one activation less to keep for training).
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size, padding=pad),
                                        nn.ReLU(inplace=True))
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)

    def gamma_beta(self, actv: torch.Tensor):
        """``(1 + gamma, beta)`` of the label embedding ``actv`` by one convolution."""
        g, b = self.mlp_gamma, self.mlp_beta
        weight = torch.cat([g.weight, b.weight])
        bias = torch.cat([g.bias + 1, b.bias])
        out = F.conv2d(actv, weight, bias, g.stride, g.padding, g.dilation, g.groups)
        return out.split(self.norm_nc, dim=1)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        actv = self.mlp_shared(resize_label_map(segmap, x.shape[2:]))
        if self.fused:
            gamma1, beta = self.gamma_beta(actv)
            return torch.addcmul(beta, normalized, gamma1)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """[SPADE, LReLU, conv] x 2 plus a (learned, when fin != fout) shortcut.

    ``seg`` is the label map, resized (nearest) to the size of ``x`` by the SPADE layers
    unless it has it already."""

    def __init__(self, fin: int, fout: int, label_nc: int, spectral_norm: bool = True,
                 norm: str = 'batch', hidden: int = 128, fused: bool = True):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        sn = nn.utils.spectral_norm if spectral_norm else (lambda m: m)
        self.conv_0 = sn(nn.Conv2d(fin, fmiddle, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(fmiddle, fout, 3, padding=1))
        self.norm_0 = SPADE(fin, label_nc, hidden, norm=norm, fused=fused)
        self.norm_1 = SPADE(fmiddle, label_nc, hidden, norm=norm, fused=fused)
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False))
            self.norm_s = SPADE(fin, label_nc, hidden, norm=norm, fused=fused)

    @staticmethod
    def actvn(x):
        # In place on a SPADE output, which no backward needs (only the conv after it).
        return F.leaky_relu(x, 0.2, inplace=True)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        seg = resize_label_map(seg, x.shape[2:])  # once for the block's SPADE layers
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(self.actvn(self.norm_0(x, seg)))
        dx = self.conv_1(self.actvn(self.norm_1(dx, seg)))
        return x_s + dx
