"""SPADE's multiscale PatchGAN discriminator, returning the features of every layer.

NVlabs/SPADE ``models/networks/discriminator.py``: ``num_D`` PatchGAN discriminators
(n_layers_D conv layers of kernel 4: stride 2 except the last one; channels ndf doubled
up to 512; spectral norm + instance norm on all but the first), each on the input
average-pooled once more than the previous (3 x 3, stride 2). Each returns the list of
its layers' outputs; the last is the patch logit map. Conditioned on the label map by
concatenating it to the image.
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmagic.registry import MODELS
from mmengine.model import BaseModule


class NLayerDiscriminator(nn.Module):

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 4,
                 spectral_norm: bool = True, instance_norm: bool = True):
        super().__init__()
        kw = 4
        padw = int(math.ceil((kw - 1.0) / 2))
        sn = nn.utils.spectral_norm if spectral_norm else (lambda m: m)
        nf = ndf
        seq = [nn.Sequential(nn.Conv2d(input_nc, nf, kw, stride=2, padding=padw),
                             nn.LeakyReLU(0.2, inplace=True))]
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            layer = [sn(nn.Conv2d(nf_prev, nf, kw, stride=stride, padding=padw))]
            if instance_norm:
                layer.append(nn.InstanceNorm2d(nf, affine=False))
            seq.append(nn.Sequential(*layer, nn.LeakyReLU(0.2, inplace=True)))
        seq.append(nn.Sequential(nn.Conv2d(nf, 1, kw, stride=1, padding=padw)))
        self.layers = nn.ModuleList(seq)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


@MODELS.register_module()
class MultiscaleDiscriminator(BaseModule):
    """``num_D`` PatchGANs on successively halved inputs: a list (per scale) of lists
    (per layer) of feature maps; the last of each inner list is the logit map.

    Args:
        input_nc: image channels (3) + label channels.
    """

    def __init__(self, input_nc: int, num_D: int = 2, n_layers_D: int = 4, ndf: int = 64,
                 spectral_norm: bool = True, instance_norm: bool = True,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if num_D < 1 or n_layers_D < 1:
            raise ValueError('MultiscaleDiscriminator: num_D and n_layers_D must be >= 1')
        self.input_nc = input_nc
        self.discriminators = nn.ModuleList(
            NLayerDiscriminator(input_nc, ndf, n_layers_D, spectral_norm, instance_norm)
            for _ in range(num_D))

    def forward(self, x: torch.Tensor) -> List[List[torch.Tensor]]:
        if x.shape[1] != self.input_nc:
            raise ValueError(f'MultiscaleDiscriminator expects {self.input_nc} channels, '
                             f'got {x.shape[1]}')
        out = []
        for i, d in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out
