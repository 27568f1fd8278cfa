"""SPADE's losses: multiscale hinge, feature matching, VGG19 perceptual, KL divergence.

NVlabs/SPADE ``models/networks/loss.py`` and ``pix2pix_model.py``:

* hinge: D: mean relu(1 - D(real)) + mean relu(1 + D(fake)); G: -mean D(fake); on the
  last output of every scale, averaged over scales;
* feature matching: sum over the intermediate layers (all but the logit) of
  L1(D_j(fake), D_j(real).detach()), averaged over scales, weight 10;
* VGG19 perceptual: sum_k w_k L1(phi_k(fake), phi_k(real).detach()) over relu1_1,
  relu2_1, relu3_1, relu4_1, relu5_1 with w = 1/32, 1/16, 1/8, 1/4, 1, weight 10. The
  weights come from a local file (nothing is downloaded); without it the term is off and
  the model says so once. Unlike SPADE's code we feed VGG the ImageNet-normalised
  image, which is what its weights expect;
* KL divergence of the VAE encoder: -0.5 * sum(1 + logvar - mu^2 - exp(logvar)), weight
  0.05.
"""
from __future__ import annotations

import os.path as osp
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log

VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
# Indices of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in torchvision's vgg19.features.
VGG_SLICES = (2, 7, 12, 21, 30)


def hinge_d_loss(preds_real: List[List[torch.Tensor]],
                 preds_fake: List[List[torch.Tensor]]) -> torch.Tensor:
    real = sum(F.relu(1 - p[-1]).mean() for p in preds_real) / len(preds_real)
    fake = sum(F.relu(1 + p[-1]).mean() for p in preds_fake) / len(preds_fake)
    return real + fake


def hinge_g_loss(preds_fake: List[List[torch.Tensor]]) -> torch.Tensor:
    return -sum(p[-1].mean() for p in preds_fake) / len(preds_fake)


def feature_matching_loss(preds_fake: List[List[torch.Tensor]],
                          preds_real: List[List[torch.Tensor]]) -> torch.Tensor:
    loss = preds_fake[0][0].new_zeros(())
    for fake, real in zip(preds_fake, preds_real):
        for f, r in zip(fake[:-1], real[:-1]):
            loss = loss + F.l1_loss(f, r.detach())
    return loss / len(preds_fake)


def pooled_l1_loss(fake: torch.Tensor, real: torch.Tensor, pool: int = 1) -> torch.Tensor:
    """L1 between the means of ``pool`` x ``pool`` blocks (pool 1: pixel-wise L1)."""
    if pool > 1:
        fake, real = F.avg_pool2d(fake, pool), F.avg_pool2d(real, pool)
    return F.l1_loss(fake, real)


def kld_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def build_vgg19_features() -> nn.Sequential:
    """torchvision's VGG19 ``features`` up to relu5_1, untrained."""
    from torchvision.models import vgg19
    return vgg19(weights=None).features[:VGG_SLICES[-1]]


class VGGPerceptualLoss(nn.Module):
    """VGG19 perceptual loss with weights from ``weights_path`` (torchvision's
    ``vgg19-dcbb9e9d.pth`` or any state dict with its ``features.*`` keys).

    ``available`` is False, and the loss 0, when no path is given or the file is missing;
    a single log line says so. A file that exists but does not hold VGG19 weights is an
    error naming it.
    """

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

    def __init__(self, weights_path: Optional[str] = None,
                 layer_weights=VGG_LAYER_WEIGHTS):
        super().__init__()
        self.weights_path = weights_path
        self.layer_weights = tuple(layer_weights)
        self.available = bool(weights_path) and osp.isfile(weights_path)
        self.features = None
        if not self.available:
            why = 'no vgg_weights given' if not weights_path else f'{weights_path} not found'
            print_log(f'VGG perceptual loss is OFF ({why}): SPADE trains without it. Put '
                      f"torchvision's vgg19-dcbb9e9d.pth on disk and set the config's "
                      f'vgg_weights to its path to turn it on.', logger='current',
                      level=30)
            return
        features = build_vgg19_features()
        state = torch.load(weights_path, map_location='cpu', weights_only=True)
        state = state.get('state_dict', state)
        feats = {k[len('features.'):]: v for k, v in state.items() if k.startswith('features.')}
        if not feats:
            feats = state
        try:
            features.load_state_dict({k: v for k, v in feats.items()
                                      if int(k.split('.')[0]) < VGG_SLICES[-1]})
        except (RuntimeError, ValueError) as e:
            raise ValueError(f'{weights_path}: not VGG19 weights (expected torchvision '
                             f'vgg19 features.* keys): {e}') from e
        for p in features.parameters():
            p.requires_grad_(False)
        self.features = features.eval()
        self.register_buffer('mean', torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)
        print_log(f'VGG perceptual loss is ON ({weights_path})', logger='current')

    def train(self, mode: bool = True):
        super().train(mode)
        if self.features is not None:
            self.features.eval()  # frozen: no dropout / BN in VGG features anyway
        return self

    def _slices(self, x):
        x = ((x + 1) / 2 - self.mean) / self.std
        outs, start = [], 0
        for end in VGG_SLICES:
            for i in range(start, end):
                x = self.features[i](x)
            outs.append(x)
            start = end
        return outs

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        if not self.available:
            return fake.new_zeros(())
        with torch.no_grad():
            real_feats = self._slices(real)
        fake_feats = self._slices(fake)
        return sum(w * F.l1_loss(f, r) for w, f, r in
                   zip(self.layer_weights, fake_feats, real_feats))
