"""The inpainting generator: a U-Net whose decoder blocks are SPADE residual blocks.

The encoder reads the image with its hole blanked (hole pixels 0 in the normalised
[-1, 1] range) and the hole mask, ``4`` channels at full resolution, through a 3 x 3
conv and ``num_down`` stride-2 4 x 4 convs (channels ``ngf * 2**i`` capped at
``max_channels``; LeakyReLU 0.2, optional instance norm, spectral norm). At the
bottleneck ``num_middle`` SPADE residual blocks run; the decoder then upsamples
(nearest) ``num_down`` times, each time concatenating the encoder's features of that
resolution (skip connection) and running one :class:`SPADEResnetBlock` down to that
level's channel count. The SPADE layers are conditioned on the label map and the hole
mask (``label_nc`` channels: the one-hot classes plus the mask), resized once per
resolution. A 3 x 3 conv to RGB and tanh end it, as in SPADE's generator.

The generator blanks the hole itself, so nothing of what lies inside the hole reaches
its output; compositing (the input kept outside the hole) is the model's job
(:class:`~.inpaint_gan.SPADEInpaintGAN`).
"""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmagic.registry import MODELS
from mmengine.model import BaseModule

from ..spade.architecture import SPADEResnetBlock, resize_label_map

ENCODER_NORMS = ('none', 'instance')


@MODELS.register_module()
class SPADEInpaintGenerator(BaseModule):
    """(image, hole mask, label map) -> image (N, 3, H, W) in [-1, 1].

    Args:
        label_nc: SPADE conditioning channels: the classes plus one for the hole mask
            (the model sets it from its classes).
        ngf: channels at full resolution; level i has ``min(ngf * 2**i, max_channels)``.
        num_down: stride-2 encoder steps (and decoder upsamplings); the image side must
            be divisible by ``2**num_down``.
        max_channels: channel cap of the deeper levels.
        num_middle: SPADE residual blocks at the bottleneck.
        norm: SPADE's parameter-free norm (``'batch'`` or ``'instance'``).
        encoder_norm: ``'none'`` or ``'instance'`` after the encoder's downsampling
            convs.
        spectral_norm: spectral norm on the encoder's and the SPADE blocks' convs.
        spade_hidden: channels of SPADE's shared label embedding (128 in SPADE).
        fused_spade: SPADE's fused modulation (see :mod:`..spade.architecture`).
    """

    IN_CHANNELS = 4  # RGB with the hole blanked + the hole mask

    def __init__(self, label_nc: int, ngf: int = 64, num_down: int = 4,
                 max_channels: int = 512, num_middle: int = 2, norm: str = 'batch',
                 encoder_norm: str = 'none', spectral_norm: bool = True,
                 spade_hidden: int = 128, fused_spade: bool = True,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        for key, value, low in (('label_nc', label_nc, 1), ('ngf', ngf, 1),
                                ('num_down', num_down, 1), ('max_channels', max_channels, 1),
                                ('num_middle', num_middle, 0), ('spade_hidden', spade_hidden, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f'SPADEInpaintGenerator.{key} must be an integer >= {low}, '
                                 f'got {value!r}')
        if encoder_norm not in ENCODER_NORMS:
            raise ValueError(f'SPADEInpaintGenerator.encoder_norm must be one of '
                             f'{ENCODER_NORMS}, got {encoder_norm!r}')
        self.label_nc, self.num_down = label_nc, num_down
        chans = [min(ngf * 2 ** i, max_channels) for i in range(num_down + 1)]
        self.channels = tuple(chans)
        sn = nn.utils.spectral_norm if spectral_norm else (lambda m: m)

        def act():
            return nn.LeakyReLU(0.2, inplace=True)

        self.enc_in = nn.Sequential(sn(nn.Conv2d(self.IN_CHANNELS, chans[0], 3, padding=1)),
                                    act())
        downs = []
        for i in range(1, num_down + 1):
            layer = [sn(nn.Conv2d(chans[i - 1], chans[i], 4, stride=2, padding=1))]
            if encoder_norm == 'instance':
                layer.append(nn.InstanceNorm2d(chans[i], affine=False))
            downs.append(nn.Sequential(*layer, act()))
        self.enc_down = nn.ModuleList(downs)

        def block(fin, fout):
            return SPADEResnetBlock(fin, fout, label_nc, spectral_norm, norm, spade_hidden,
                                    fused_spade)

        self.middle = nn.ModuleList(block(chans[-1], chans[-1]) for _ in range(num_middle))
        # up[k] brings level num_down - k to level num_down - k - 1 (skip concatenated).
        self.up_blocks = nn.ModuleList(
            block(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(num_down)))
        self.conv_img = nn.Conv2d(chans[0], 3, 3, padding=1)

    def label_pyramid(self, seg: torch.Tensor) -> List[torch.Tensor]:
        """``seg`` resized (nearest) to every level, full resolution first."""
        h, w = seg.shape[2:]
        return [resize_label_map(seg, (h >> i, w >> i)) for i in range(self.num_down + 1)]

    def forward(self, image: torch.Tensor, hole: torch.Tensor,
                seg: torch.Tensor) -> torch.Tensor:
        """``image`` (N, 3, H, W) in [-1, 1], ``hole`` (N, 1, H, W) with 1 inside the hole,
        ``seg`` (N, label_nc, H, W) -> the generated image (N, 3, H, W), everywhere (the
        caller keeps the input outside the hole)."""
        if seg.shape[1] != self.label_nc:
            raise ValueError(f'SPADEInpaintGenerator expects {self.label_nc} label '
                             f'channels, got {seg.shape[1]}')
        h, w = image.shape[2:]
        step = 2 ** self.num_down
        if h % step or w % step:
            raise ValueError(f'SPADEInpaintGenerator: image size {w}x{h} is not divisible '
                             f'by 2**num_down = {step}')
        hole = hole.to(image.dtype)
        x = torch.cat([image.masked_fill(hole > 0.5, 0.0), hole], dim=1)
        feats = [self.enc_in(x)]
        for down in self.enc_down:
            feats.append(down(feats[-1]))
        segs = self.label_pyramid(seg)
        x = feats[-1]
        for blk in self.middle:
            x = blk(x, segs[-1])
        for k, blk in enumerate(self.up_blocks):
            level = self.num_down - k - 1
            x = F.interpolate(x, scale_factor=2, mode='nearest')
            x = blk(torch.cat([x, feats[level]], dim=1), segs[level])
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))
