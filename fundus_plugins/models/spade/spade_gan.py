"""SPADE as an mmagic GAN: label maps (one-hot, plus an optic-disc edge map) to images.

Training follows NVlabs/SPADE ``pix2pix_model.py`` on mmagic's ``BaseGAN.train_step``
(one discriminator and one generator update per iteration):

    L_D = hinge_D(D(m, x), D(m, G(m)))
    L_G = hinge_G(D(m, G(m))) + 10 * FM(D(m, G(m)), D(m, x)) + 10 * VGG(G(m), x)
          [+ 0.05 * KL(E(x))]         # with the VAE (the generator's style encoder)
          [+ lambda_l1 * |P(G(m)) - P(x)|_1]  # off (0) in the paper config

where m is the label input and D sees the image concatenated to m. The VGG term uses
torchvision's ImageNet VGG19 weights (``vgg_weights``, see :mod:`.losses`); building the
model fails, saying where to put the file, when they are asked for and cannot be had.
The L1 term is our addition (pix2pix's), for short runs without VGG such as the CPU
demo; P is average pooling over ``l1_pool`` x ``l1_pool`` blocks (1, the default: none),
which compares colours and blobs but not where fine detail lies. The learning rates
follow SPADE's TTUR in the configs (G: lr / 2, D: lr * 2, Adam betas (0, 0.9)).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmagic.models.base_models import BaseGAN
from mmagic.registry import MODELS
from mmagic.structures import DataSample
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from ...classes import resolve_classes
from ..data_preprocessor import FundusDataPreprocessor
from .losses import (TORCHVISION, VGGPerceptualLoss, feature_matching_loss, hinge_d_loss,
                     hinge_g_loss, kld_loss, pooled_l1_loss)

DEFAULT_LOSS = dict(lambda_feat=10.0, lambda_vgg=10.0, lambda_kld=0.05, lambda_l1=0.0,
                    l1_pool=1)


def od_edges(od: torch.Tensor) -> torch.Tensor:
    """Boundary of the optic-disc mask (N, 1, H, W): pixels with a 4-neighbour of the
    other value, on both sides of the boundary (SPADE's instance edges)."""
    edge = torch.zeros_like(od, dtype=torch.bool)
    dx = od[..., :, 1:] != od[..., :, :-1]
    dy = od[..., 1:, :] != od[..., :-1, :]
    edge[..., :, 1:] |= dx
    edge[..., :, :-1] |= dx
    edge[..., 1:, :] |= dy
    edge[..., :-1, :] |= dy
    return edge.to(od.dtype)


@MODELS.register_module()
class SPADEGAN(BaseGAN):
    """SPADE translator from label maps of the config's classes to fundus images.

    Args:
        generator: ``SPADEGenerator`` config (``label_nc`` follows from the classes).
        discriminator: ``MultiscaleDiscriminator`` config (``input_nc`` follows too).
        ema_config: mmagic EMA config for the generator.
        loss_config: ``lambda_feat`` (10), ``lambda_vgg`` (10), ``lambda_kld`` (0.05),
            ``lambda_l1`` (0: off), ``l1_pool`` (1: pixel-wise L1; k: L1 of k x k block
            means).
        vgg_weights: torchvision's ImageNet VGG19 weights for the perceptual loss:
            ``'torchvision'`` (the default: torch hub's cache,
            ``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth``, downloaded there when
            absent and online), the path of a local copy, or None (no perceptual term).
            With ``lambda_vgg`` > 0, weights that cannot be had (offline and not cached, a
            missing file) are an error, raised here, before any training, that says
            where to put the file; with ``lambda_vgg`` 0 nothing is loaded.
        classes: the config's class list.
        use_od_edge: add the optic disc's edge map as one more input channel (SPADE's
            instance edges; the paper's code used the OD channel).
    """

    def __init__(self, generator: dict, discriminator: dict,
                 data_preprocessor: Optional[dict] = None, ema_config: Optional[dict] = None,
                 loss_config: Optional[dict] = None, classes: Optional[Sequence] = None,
                 use_od_edge: bool = True, vgg_weights: Optional[str] = TORCHVISION):
        self.class_set = resolve_classes(classes)
        if use_od_edge and 'OD' not in self.class_set.codes:
            raise ValueError('SPADEGAN.use_od_edge needs OD in the class list; set '
                             'use_od_edge=False for classes without the optic disc')
        self.use_od_edge = use_od_edge
        self.label_nc = len(self.class_set) + int(use_od_edge)
        generator = dict(generator)
        if generator.setdefault('label_nc', self.label_nc) != self.label_nc:
            raise ValueError(f'generator.label_nc is {generator["label_nc"]}, but the classes '
                             f'(+ edge map) give {self.label_nc}; leave it out of the config')
        discriminator = dict(discriminator)
        if discriminator.setdefault('input_nc', self.label_nc + 3) != self.label_nc + 3:
            raise ValueError(f'discriminator.input_nc is {discriminator["input_nc"]}, expected '
                             f'{self.label_nc + 3} (label channels + RGB)')
        loss_config = dict(DEFAULT_LOSS, **(loss_config or {}))
        unknown = set(loss_config) - set(DEFAULT_LOSS)
        if unknown:
            raise KeyError(f'SPADEGAN.loss_config: unknown key(s) {sorted(unknown)}; expected '
                           f'some of {sorted(DEFAULT_LOSS)}')
        pool = loss_config['l1_pool']
        if not isinstance(pool, int) or isinstance(pool, bool) or pool < 1:
            raise ValueError(f'SPADEGAN.loss_config.l1_pool must be an integer >= 1 (1: '
                             f'pixel-wise L1), got {pool!r}')
        lam = loss_config['lambda_vgg']
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or lam < 0:
            raise ValueError(f'SPADEGAN.loss_config.lambda_vgg must be a number >= 0 (0: no '
                             f'VGG perceptual term), got {lam!r}')
        if data_preprocessor is None:
            data_preprocessor = FundusDataPreprocessor(image_keys=('img',))
        # Sub-module configs are mmagic's, whatever scope this model is built in.
        with DefaultScope.overwrite_default_scope('mmagic'):
            super().__init__(generator, discriminator, data_preprocessor, 1, 1, None, ema_config,
                             loss_config)
        if lam == 0:
            print_log('VGG perceptual loss is off (loss_config lambda_vgg=0)',
                      logger='current')
            vgg_weights = None
        elif vgg_weights is None:
            print_log(f'VGG perceptual loss is off (vgg_weights=None), although '
                      f'lambda_vgg={lam}', logger='current', level=30)
        self.vgg_loss = VGGPerceptualLoss(vgg_weights)

    # ----------------------------------------------------------------------------------
    def label_input(self, onehot: torch.Tensor) -> torch.Tensor:
        """One-hot label maps (N, C, H, W) -> generator input (+ OD edge channel)."""
        if onehot.shape[1] != len(self.class_set):
            raise ValueError(f'expected {len(self.class_set)} one-hot channels '
                             f'({list(self.class_set.codes)}), got {onehot.shape[1]}')
        if not self.use_od_edge:
            return onehot
        od = onehot[:, self.class_set.index('OD'):self.class_set.index('OD') + 1]
        return torch.cat([onehot, od_edges(od)], dim=1)

    def _latent(self, real: torch.Tensor):
        """(z, mu, logvar) of the VAE encoder for real images, or Nones without it."""
        if not self.generator.use_vae:
            return None, None, None
        return self.generator.encode(real)

    def _disc(self, seg, image):
        return self.discriminator(torch.cat([seg, image], dim=1))

    def train_discriminator(self, inputs: dict, data_samples: DataSample,
                            optimizer_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        real = inputs['img']
        seg = self.label_input(inputs['label'])
        with torch.no_grad():
            z, _, _ = self._latent(real)
            fake = self.generator(seg, z=z)
        preds = self._disc(torch.cat([seg, seg]), torch.cat([fake, real]))
        preds_fake = [[f[:len(real)] for f in scale] for scale in preds]
        preds_real = [[f[len(real):] for f in scale] for scale in preds]
        losses = dict(loss_d_hinge=hinge_d_loss(preds_real, preds_fake))
        loss, log_vars = self.parse_losses(losses)
        optimizer_wrapper.update_params(loss)
        with torch.no_grad():
            log_vars['d_real_score'] = torch.stack([p[-1].mean() for p in preds_real]).mean()
            log_vars['d_fake_score'] = torch.stack([p[-1].mean() for p in preds_fake]).mean()
        return log_vars

    def train_generator(self, inputs: dict, data_samples: DataSample,
                        optimizer_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        real = inputs['img']
        seg = self.label_input(inputs['label'])
        z, mu, logvar = self._latent(real)
        fake = self.generator(seg, z=z)
        preds = self._disc(torch.cat([seg, seg]), torch.cat([fake, real]))
        preds_fake = [[f[:len(real)] for f in scale] for scale in preds]
        preds_real = [[f[len(real):] for f in scale] for scale in preds]
        cfg = self.loss_config
        losses = dict(loss_g_hinge=hinge_g_loss(preds_fake),
                      loss_g_feat=cfg['lambda_feat'] * feature_matching_loss(preds_fake,
                                                                             preds_real))
        if self.vgg_loss.available:
            losses['loss_g_vgg'] = cfg['lambda_vgg'] * self.vgg_loss(fake, real)
        if cfg['lambda_l1'] > 0:
            losses['loss_g_l1'] = cfg['lambda_l1'] * pooled_l1_loss(fake, real,
                                                                    cfg['l1_pool'])
        if mu is not None:
            losses['loss_g_kld'] = cfg['lambda_kld'] * kld_loss(mu, logvar)
        loss, log_vars = self.parse_losses(losses)
        optimizer_wrapper.update_params(loss)
        return log_vars

    # ----------------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, onehot: torch.Tensor, sample_model: str = 'ema',
                  z: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One-hot label maps (N, C, H, W) -> images (N, 3, H, W), uint8-range floats."""
        gen = self.generator_ema if (sample_model == 'ema' and self.with_ema_gen) \
            else self.generator
        was_training = gen.training
        gen.eval()
        try:
            seg = self.label_input(onehot.to(self.device).float())
            fake = gen(seg, z=z)
        finally:
            gen.train(was_training)
        return self.data_preprocessor.destruct(fake, key='img')

    def forward(self, inputs: dict, data_samples: Optional[List] = None,
                mode: Optional[str] = None) -> List[DataSample]:
        """Translate ``inputs['label']`` (val / test loops): DataSamples with ``fake_img``
        (and ``gt_img`` when ``inputs['img']`` is given), in [0, 255]."""
        sample_model = inputs.get('sample_model', 'ema') if isinstance(inputs, dict) else 'ema'
        fake = self.translate(inputs['label'], sample_model)
        out = []
        for i in range(len(fake)):
            ds = DataSample(fake_img=fake[i])
            if 'img' in inputs:
                ds.gt_img = self.data_preprocessor.destruct(inputs['img'][i], key='img')
            out.append(ds)
        return out


def onehot_from_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N, H, W) class indices -> (N, C, H, W) float one-hot."""
    return F.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).float()
