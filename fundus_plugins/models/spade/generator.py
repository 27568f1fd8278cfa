"""The SPADE generator (and its optional VAE style encoder).

NVlabs/SPADE ``models/networks/generator.py``: the label map, downsampled to
``size / 2**k``, goes through a 3 x 3 conv to 16 * ngf channels (or, with the VAE, a
latent z through a linear layer), then SPADE residual blocks and k nearest upsamplings
(k = 5, 6, 7 for ``num_upsampling_layers`` normal / more / most), a 3 x 3 conv to RGB and
tanh. Channels: 16 ngf for head_0, G_middle_0, G_middle_1, then 8, 4, 2, 1 ngf for
up_0 .. up_3 (and ngf / 2 for up_4 with 'most').

The label map is resized (nearest) to each of the k + 1 resolutions once per forward
(:meth:`SPADEGenerator.label_pyramid`) and every block gets the map of its resolution:
the same maps SPADE resizes for each of its layers, computed once.
"""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmagic.registry import MODELS
from mmengine.model import BaseModule

from .architecture import SPADEResnetBlock, resize_label_map

UPSAMPLING = {'normal': 5, 'more': 6, 'most': 7}


@MODELS.register_module()
class SPADEGenerator(BaseModule):
    """Label map (N, label_nc, H, W) -> image (N, 3, H, W) in [-1, 1].

    Args:
        label_nc: input channels (classes, plus one for the OD edge map if used).
        out_size: image side; must be divisible by 2**k.
        ngf: base channel count (64 in SPADE).
        num_upsampling_layers: 'normal' (5), 'more' (6) or 'most' (7).
        use_vae: start from a latent z instead of the downsampled label map; during
            training z comes from the image through the style encoder (``encoder``, a
            ``SPADEEncoder`` config, built inside the generator so that one optimizer
            trains both), when sampling from N(0, 1).
        z_dim: latent size with the VAE.
        norm: parameter-free norm in SPADE ('batch' or 'instance').
        spectral_norm: spectral norm on the residual blocks' convs.
        spade_hidden: channels of SPADE's shared label embedding (128 in SPADE).
        fused_spade: SPADE's gamma and beta as one convolution and its modulation as one
            ``addcmul`` (True, the default; the same parameters and results up to float
            rounding, see :mod:`.architecture`), or as the paper writes it (False).
    """

    def __init__(self, label_nc: int, out_size: int = 512, ngf: int = 64,
                 num_upsampling_layers: str = 'normal', use_vae: bool = False,
                 z_dim: int = 256, norm: str = 'batch', spectral_norm: bool = True,
                 encoder: Optional[dict] = None, spade_hidden: int = 128,
                 fused_spade: bool = True, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if num_upsampling_layers not in UPSAMPLING:
            raise ValueError(f'num_upsampling_layers must be one of {list(UPSAMPLING)}, '
                             f'got {num_upsampling_layers!r}')
        k = UPSAMPLING[num_upsampling_layers]
        if out_size % (2 ** k):
            raise ValueError(f'SPADEGenerator: out_size {out_size} is not divisible by '
                             f'2**{k} ({num_upsampling_layers!r} upsampling)')
        self.label_nc, self.out_size, self.mode = label_nc, out_size, num_upsampling_layers
        self.use_vae, self.z_dim = use_vae, z_dim
        self.num_up = k
        self.sw = out_size // (2 ** k)
        nf = ngf
        self.encoder = None
        if use_vae:
            self.fc = nn.Linear(z_dim, 16 * nf * self.sw * self.sw)
            self.encoder = SPADEEncoder(z_dim=z_dim, **(encoder or {}))
        elif encoder is not None:
            raise ValueError('SPADEGenerator: an encoder needs use_vae=True')
        else:
            self.fc = nn.Conv2d(label_nc, 16 * nf, 3, padding=1)

        def block(fin, fout):
            return SPADEResnetBlock(fin, fout, label_nc, spectral_norm, norm, spade_hidden,
                                    fused_spade)

        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf)
        final_nc = nf
        if num_upsampling_layers == 'most':
            self.up_4 = block(nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)

    def encode(self, image: torch.Tensor):
        """(z, mu, logvar) of the style encoder, z by the reparametrisation trick."""
        if self.encoder is None:
            raise RuntimeError('SPADEGenerator.encode needs use_vae=True')
        mu, logvar = self.encoder(image)
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar), mu, logvar

    @staticmethod
    def up(x):
        return F.interpolate(x, scale_factor=2, mode='nearest')

    def label_pyramid(self, seg: torch.Tensor) -> List[torch.Tensor]:
        """``seg`` resized (nearest) to ``sw * 2**i`` for i = 0 .. k, each from the full
        map (as each SPADE layer would resize it), ``seg`` itself at its own size."""
        return [resize_label_map(seg, (self.sw * 2 ** i,) * 2) for i in range(self.num_up + 1)]

    def forward(self, seg: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        if seg.shape[1] != self.label_nc:
            raise ValueError(f'SPADEGenerator expects {self.label_nc} label channels, '
                             f'got {seg.shape[1]}')
        segs = self.label_pyramid(seg)
        if self.use_vae:
            if z is None:
                z = torch.randn(seg.shape[0], self.z_dim, device=seg.device, dtype=seg.dtype)
            x = self.fc(z).view(-1, self.fc.out_features // (self.sw * self.sw),
                                self.sw, self.sw)
        else:
            x = self.fc(segs[0])
        x = self.head_0(x, segs[0])
        x = self.up(x)
        x = self.G_middle_0(x, segs[1])
        level = 1
        if self.mode in ('more', 'most'):
            x = self.up(x)
            level += 1
        x = self.G_middle_1(x, segs[level])
        ups = [self.up_0, self.up_1, self.up_2, self.up_3]
        if self.mode == 'most':
            ups.append(self.up_4)
        for blk in ups:
            level += 1
            x = blk(self.up(x), segs[level])
        # In place on the last block's output, which no backward needs.
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2, inplace=True)))


@MODELS.register_module()
class SPADEEncoder(BaseModule):
    """VAE style encoder (SPADE ``ConvEncoder``): image -> (mu, logvar) of z.

    Six [conv 3x3 stride 2, instance norm, LeakyReLU] layers on the image resized to 256,
    then two linear layers from the 4 x 4 features.
    """

    def __init__(self, z_dim: int = 256, ndf: int = 64, in_size: int = 256,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.in_size = in_size
        sn = nn.utils.spectral_norm
        chans = [3, ndf, ndf * 2, ndf * 4, ndf * 8, ndf * 8, ndf * 8]
        layers = []
        for i in range(6):
            layers += [sn(nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1)),
                       nn.InstanceNorm2d(chans[i + 1], affine=False), nn.LeakyReLU(0.2)]
        self.layers = nn.Sequential(*layers)
        self.fc_mu = nn.Linear(ndf * 8 * 16, z_dim)
        self.fc_var = nn.Linear(ndf * 8 * 16, z_dim)

    def forward(self, image: torch.Tensor):
        x = F.interpolate(image, size=(self.in_size, self.in_size), mode='bilinear',
                          align_corners=False)
        x = F.adaptive_avg_pool2d(self.layers(x), 4).flatten(1)
        return self.fc_mu(x), self.fc_var(x)
