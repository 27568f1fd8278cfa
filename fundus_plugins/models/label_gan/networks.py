"""Generator and discriminator of the grade-conditioned label-map ACGAN.

Generator (DESIGN.md): noise z (128) and a learned embedding of the DR grade, linear to
``base_channels`` x 4 x 4, then one [upsample x2, conv 3x3, BN, ReLU] block per doubling
up to ``out_size`` (six for 256), a 3x3 conv to C channels and a softmax over channels:
every pixel is a probability vector over the classes (BG, RET, OD, lesions).

Discriminator: [conv 4x4 stride 2, LeakyReLU 0.2] blocks down to 4 x 4, then two heads
on the flattened features: a real/fake logit and grade logits (the auxiliary classifier
of ACGAN, Odena et al. 2017). Spectral norm on every layer by default.

Son et al.'s public code differs in a few places, which options reproduce
(configs/acgan_labels_paper.py): its generator multiplies the noise by the grade
embedding (``embed_mode='multiply'``) and has no norm or activation after the linear
layer (``fc_norm=False``); its discriminator has 3x3 convs (``kernel_size=3``) each
followed by BatchNorm (``batch_norm=True``) and no spectral norm.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
from mmagic.registry import MODELS
from mmengine.model import BaseModule


def _num_doublings(size: int, what: str) -> int:
    n = math.log2(size / 4)
    if size < 8 or n != int(n):
        raise ValueError(f'{what}: size must be 4 x a power of two and at least 8, got {size}')
    return int(n)


def _channels(base: int, n: int, minimum: int) -> list[int]:
    """base, base/2, ... (n + 1 values), never below ``minimum``."""
    return [max(minimum, base // (2 ** i)) for i in range(n + 1)]


class _CondBatchNorm(nn.Module):
    """BatchNorm whose scale and shift come from the grade (conditional BN)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x, label):
        return self.bn(x) * self.gamma(label)[:, :, None, None] + \
            self.beta(label)[:, :, None, None]


@MODELS.register_module()
class LabelMapGenerator(BaseModule):
    """Noise + DR grade -> (N, C, H, W) class probabilities.

    Args:
        out_channels: C, the number of classes (from the config's class list).
        out_size: output side (a power of two times 4).
        noise_size: length of z.
        num_classes: number of DR grades (5).
        embed_dim: length of the grade embedding concatenated to z.
        base_channels: channels at 4 x 4; halved at every block.
        min_channels: floor of the channel schedule.
        conditional_bn: also condition every block's BatchNorm on the grade.
        padding_mode: padding of the 3 x 3 convs ('zeros' or 'reflect'); reflection
            gives the border pixels real neighbours instead of zeros.
        embed_mode: how the grade enters: ``'concat'`` (z and the embedding side by
            side) or ``'multiply'`` (z times the embedding, element-wise, as the ACGAN
            of PyTorch-GAN and Son et al.'s code; needs ``embed_dim == noise_size``).
        fc_norm: BatchNorm and ReLU after the linear layer; False feeds its output to
            the first block as it is (Son et al.'s code).
    """

    def __init__(self, out_channels: int, out_size: int = 256, noise_size: int = 128,
                 num_classes: int = 5, embed_dim: int = 128, base_channels: int = 512,
                 min_channels: int = 16, conditional_bn: bool = False,
                 padding_mode: str = 'zeros', embed_mode: str = 'concat',
                 fc_norm: bool = True, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if out_channels < 2:
            raise ValueError(f'LabelMapGenerator: out_channels must be >= 2, got {out_channels}')
        if embed_mode not in ('concat', 'multiply'):
            raise ValueError(f"LabelMapGenerator.embed_mode must be 'concat' or 'multiply', "
                             f'got {embed_mode!r}')
        if embed_mode == 'multiply' and embed_dim != noise_size:
            raise ValueError(f"LabelMapGenerator: embed_mode='multiply' needs embed_dim == "
                             f'noise_size, got embed_dim={embed_dim}, noise_size={noise_size}')
        n = _num_doublings(out_size, 'LabelMapGenerator.out_size')
        self.out_channels = out_channels
        self.out_size = out_size
        self.noise_size = noise_size
        self.num_classes = num_classes
        self.conditional_bn = conditional_bn
        self.embed_mode = embed_mode
        ch = _channels(base_channels, n, min_channels)
        self.embed = nn.Embedding(num_classes, embed_dim)
        fc_in = noise_size + embed_dim if embed_mode == 'concat' else noise_size
        self.fc = nn.Linear(fc_in, ch[0] * 16)
        # Per channel over 4 x 4: works at batch 1.
        self.fc_norm = nn.BatchNorm2d(ch[0]) if fc_norm else None
        self.convs = nn.ModuleList(
            nn.Conv2d(ch[i], ch[i + 1], 3, padding=1, bias=False, padding_mode=padding_mode)
            for i in range(n))
        if conditional_bn:
            self.norms = nn.ModuleList(_CondBatchNorm(ch[i + 1], num_classes) for i in range(n))
        else:
            self.norms = nn.ModuleList(nn.BatchNorm2d(ch[i + 1]) for i in range(n))
        self.to_logits = nn.Conv2d(ch[-1], out_channels, 3, padding=1,
                                   padding_mode=padding_mode)
        self.base = ch[0]

    def forward(self, noise: torch.Tensor, label: torch.Tensor, return_noise: bool = False,
                return_logits: bool = False):
        """``noise`` (N, noise_size) or an int batch size; ``label`` (N,) grades."""
        if isinstance(noise, int):
            noise = torch.randn(noise, self.noise_size, device=self.fc.weight.device)
        label = label.long().view(-1).to(noise.device)
        if label.numel() != noise.shape[0]:
            raise ValueError(f'{noise.shape[0]} noise vectors but {label.numel()} grades')
        if label.numel() and (label.min() < 0 or label.max() >= self.num_classes):
            raise ValueError(f'grades must be in 0..{self.num_classes - 1}, got '
                             f'{label.unique().tolist()}')
        if self.embed_mode == 'concat':
            h = self.fc(torch.cat([noise, self.embed(label)], dim=1))
        else:
            h = self.fc(noise * self.embed(label))
        h = h.view(-1, self.base, 4, 4)
        if self.fc_norm is not None:
            h = torch.relu(self.fc_norm(h))
        for conv, norm in zip(self.convs, self.norms):
            h = conv(nn.functional.interpolate(h, scale_factor=2, mode='nearest'))
            h = norm(h, label) if self.conditional_bn else norm(h)
            h = torch.relu(h)
        logits = self.to_logits(h)
        out = logits if return_logits else torch.softmax(logits, dim=1)
        if return_noise:
            return dict(fake_img=out, noise_batch=noise, label=label)
        return out


def minibatch_std(x: torch.Tensor, group: int) -> torch.Tensor:
    """Append one channel: the mean over features of the std over each group of samples."""
    n, c, h, w = x.shape
    g = min(group, n)
    while n % g:
        g -= 1
    y = x.view(g, n // g, c, h, w)
    y = (y - y.mean(0)).pow(2).mean(0).add(1e-8).sqrt()      # (n/g, c, h, w)
    y = y.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1).repeat(g, 1, h, w)  # (n, 1, h, w)
    return torch.cat([x, y], dim=1)


@MODELS.register_module()
class LabelMapDiscriminator(BaseModule):
    """(N, C, H, W) label maps -> real/fake logits (N,) and grade logits (N, num_classes).

    Args:
        in_channels: C.
        in_size: input side (4 x a power of two).
        num_classes: number of DR grades; 0 drops the auxiliary head.
        base_channels: channels after the first block; doubled per block up to
            ``max_channels``.
        spectral_norm: wrap every conv and linear layer in spectral normalisation.
        minibatch_std_group: if > 0, append the minibatch standard deviation of the
            4 x 4 features over groups of this many samples as one more channel
            (Karras et al. 2018): a collapsed generator's batch has none, which the
            discriminator then sees. 0 turns it off.
        kernel_size: of the stride-2 convs, 4 or 3 (Son et al.'s code); both halve
            the size.
        batch_norm: BatchNorm after every conv (whose bias is then dropped), as DCGAN
            and Son et al.'s code.
    """

    def __init__(self, in_channels: int, in_size: int = 256, num_classes: int = 5,
                 base_channels: int = 64, max_channels: int = 512,
                 spectral_norm: bool = True, minibatch_std_group: int = 0,
                 kernel_size: int = 4, batch_norm: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        n = _num_doublings(in_size, 'LabelMapDiscriminator.in_size')
        if kernel_size not in (3, 4):
            raise ValueError(f'LabelMapDiscriminator.kernel_size must be 3 or 4, got '
                             f'{kernel_size}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        sn = nn.utils.spectral_norm if spectral_norm else (lambda m: m)
        chans = [in_channels] + [min(max_channels, base_channels * 2 ** i) for i in range(n)]
        layers = []
        for i in range(n):
            layers.append(sn(nn.Conv2d(chans[i], chans[i + 1], kernel_size, stride=2,
                                       padding=1, bias=not batch_norm)))
            if batch_norm:
                layers.append(nn.BatchNorm2d(chans[i + 1]))
            layers.append(nn.LeakyReLU(0.2))
        self.features = nn.Sequential(*layers)
        self.mbstd_group = minibatch_std_group
        feat = (chans[-1] + (1 if minibatch_std_group > 0 else 0)) * 16
        self.adv_head = sn(nn.Linear(feat, 1))
        self.cls_head = sn(nn.Linear(feat, num_classes)) if num_classes > 0 else None

    def forward(self, x: torch.Tensor):
        if x.shape[1] != self.in_channels:
            raise ValueError(f'LabelMapDiscriminator expects {self.in_channels} channels, '
                             f'got {x.shape[1]}')
        h = self.features(x)
        if self.mbstd_group > 0:
            h = minibatch_std(h, self.mbstd_group)
        h = h.flatten(1)
        adv = self.adv_head(h).view(-1)
        cls = self.cls_head(h) if self.cls_head is not None else None
        return adv, cls
