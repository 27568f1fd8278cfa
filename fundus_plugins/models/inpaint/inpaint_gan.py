"""SPADE-conditioned lesion inpainting as an mmagic GAN: a real image with holes, its hole
mask and its label map to the image with only the holes painted.

The generator (:class:`~.generator.SPADEInpaintGenerator`) reads the image with the hole
blanked (0 in the normalised range) and the mask; its SPADE layers are conditioned on the
one-hot label map and the mask. Its output is kept inside the hole only:

    x_hat = where(hole, G(x, hole, m), x)       # outside the hole: x itself, bit for bit

Training (mmagic's ``BaseGAN.train_step``: one discriminator and one generator update per
iteration) reconstructs real images: the hole is each image's own lesion regions
(``hole_classes``, default the lesion classes but OD) dilated by ``margin`` pixels, in the
field of view; a lesion-free image gets a random lesion-shaped hole (another image's
lesion hole, or random ellipses; :mod:`.holes`), drawn from torch's generator. The
discriminator and the generator step of one iteration use the same holes. With D
conditioned on the label map and the mask, ``D(x, m, hole)``:

    L_D = hinge_D(D(x), D(x_hat); W)
    L_G = hinge_G(D(x_hat); W) + lambda_feat * FM(D(x_hat), D(x))
          + lambda_vgg * VGG(x_hat, x) + lambda_l1 * mean_{hole} |G - x|

The discriminator sees the whole composite, but its hinge terms are averaged over the
patches near the hole only (W: 1 on the logits whose cell meets the hole dilated by
``d_context`` pixels, 0 elsewhere; ``d_context=None``: every patch, SPADE's plain hinge):
away from the hole composite and real are the same pixels, and patches there would only
teach D to answer 0.5 while diluting the term the generator learns from. Feature
matching (over all of D's features) and the VGG term compare the composite with the
real image, so they too differ from 0 only where the hole's surroundings see it. The L1
term is the mean absolute error over the hole's pixels. The VGG term uses torchvision's
VGG19 (``vgg_weights``, as in :class:`~..spade.SPADEGAN`); ``lambda_vgg=0`` or
``vgg_weights=None`` turn it off.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmagic.models.base_models import BaseGAN
from mmagic.registry import MODELS
from mmagic.structures import DataSample
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from ...classes import resolve_classes
from ..data_preprocessor import FundusDataPreprocessor
from ..spade.losses import (TORCHVISION, feature_matching_loss, hinge_d_loss, hinge_g_loss,
                            merge_loss_config, perceptual_loss)
from .holes import LesionHoles, field_of_view

DEFAULT_LOSS = dict(lambda_feat=10.0, lambda_vgg=10.0, lambda_l1=10.0, d_context=16)


def _weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def region_hinge_d_loss(preds_real: List[List[torch.Tensor]],
                        preds_fake: List[List[torch.Tensor]],
                        weights: List[torch.Tensor]) -> torch.Tensor:
    """SPADE's multiscale hinge loss of D, each scale's logits averaged with ``weights``
    (one (N, 1, h, w) map per scale)."""
    real = sum(_weighted_mean(F.relu(1 - p[-1]), w) for p, w in zip(preds_real, weights))
    fake = sum(_weighted_mean(F.relu(1 + p[-1]), w) for p, w in zip(preds_fake, weights))
    return (real + fake) / len(preds_real)


def region_hinge_g_loss(preds_fake: List[List[torch.Tensor]],
                        weights: List[torch.Tensor]) -> torch.Tensor:
    """SPADE's multiscale hinge loss of G with weighted logits."""
    return -sum(_weighted_mean(p[-1], w) for p, w in zip(preds_fake, weights)) / len(preds_fake)


def hole_l1_loss(fake: torch.Tensor, real: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference over the hole's pixels (and the 3 channels)."""
    hole = hole.to(fake.dtype)
    return ((fake - real).abs() * hole).sum() / (hole.sum() * fake.shape[1]).clamp_min(1.0)


@MODELS.register_module()
class SPADEInpaintGAN(BaseGAN):
    """Paints the lesion regions of real fundus images from their label maps.

    Args:
        generator: ``SPADEInpaintGenerator`` config (``label_nc`` follows from the
            classes: one channel per class plus the hole mask).
        discriminator: ``MultiscaleDiscriminator`` config (``input_nc`` follows too: RGB,
            the classes and the mask).
        data_preprocessor: default ``FundusDataPreprocessor(image_keys=('img',))``.
        ema_config: mmagic EMA config for the generator (None: no EMA copy).
        loss_config: ``lambda_feat`` (10), ``lambda_vgg`` (10), ``lambda_l1`` (10: L1
            inside the hole; 0: off), ``d_context`` (16: pixels around the hole whose
            patches the hinge terms average over; None: the whole image).
        classes: the config's class list.
        hole_classes: the classes whose regions are holes (None: the lesion classes but
            OD).
        margin: pixels the lesion regions are dilated by (at the training image size).
        random_hole: the random holes of lesion-free images (see
            :class:`~.holes.LesionHoles`): ``borrow_prob``, ``num_blobs``, ``radius``.
        vgg_weights: torchvision's VGG19 weights for the perceptual term, as in
            :class:`~..spade.SPADEGAN` (``'torchvision'``, a path, or None: off).
    """

    def __init__(self, generator: dict, discriminator: dict,
                 data_preprocessor: Optional[dict] = None, ema_config: Optional[dict] = None,
                 loss_config: Optional[dict] = None, classes: Optional[Sequence] = None,
                 hole_classes: Optional[Sequence[str]] = None, margin: int = 4,
                 random_hole: Optional[dict] = None,
                 vgg_weights: Optional[str] = TORCHVISION):
        self.class_set = resolve_classes(classes)
        self.holes = LesionHoles(self.class_set, hole_classes, margin, random_hole)
        num = len(self.class_set)
        self.label_nc = num + 1  # the classes and the hole mask
        generator = dict(generator)
        if generator.setdefault('label_nc', self.label_nc) != self.label_nc:
            raise ValueError(f'generator.label_nc is {generator["label_nc"]}, but the classes '
                             f'(+ the hole mask) give {self.label_nc}; leave it out of the '
                             f'config')
        discriminator = dict(discriminator)
        if discriminator.setdefault('input_nc', num + 4) != num + 4:
            raise ValueError(f'discriminator.input_nc is {discriminator["input_nc"]}, expected '
                             f'{num + 4} (RGB + label channels + the hole mask)')
        loss_config = merge_loss_config('SPADEInpaintGAN', DEFAULT_LOSS, loss_config)
        for key in ('lambda_feat', 'lambda_vgg', 'lambda_l1'):
            lam = loss_config[key]
            if isinstance(lam, bool) or not isinstance(lam, (int, float)) or lam < 0:
                raise ValueError(f'SPADEInpaintGAN.loss_config.{key} must be a number >= 0, '
                                 f'got {lam!r}')
        ctx = loss_config['d_context']
        if ctx is not None and (isinstance(ctx, bool) or not isinstance(ctx, int) or ctx < 0):
            raise ValueError(f'SPADEInpaintGAN.loss_config.d_context must be an integer >= 0 '
                             f'(pixels) or None (the whole image), got {ctx!r}')
        if data_preprocessor is None:
            data_preprocessor = FundusDataPreprocessor(image_keys=('img',))
        with DefaultScope.overwrite_default_scope('mmagic'):
            super().__init__(generator, discriminator, data_preprocessor, 1, 1, None, ema_config,
                             loss_config)
        self.vgg_loss = perceptual_loss(vgg_weights, loss_config['lambda_vgg'])

    # ----------------------------------------------------------------------------------
    def _check_label(self, onehot: torch.Tensor) -> None:
        if onehot.ndim != 4 or onehot.shape[1] != len(self.class_set):
            raise ValueError(f'expected one-hot label maps (N, {len(self.class_set)}, H, W) '
                             f'of the classes {list(self.class_set.codes)}, got shape '
                             f'{tuple(onehot.shape)}')

    def hole_from_label(self, onehot: torch.Tensor) -> torch.Tensor:
        """The lesion holes (N, 1, H, W) bool of one-hot label maps: the hole classes
        dilated by ``margin``, inside the field of view (no random part)."""
        return self.holes.lesions(onehot)

    def training_holes(self, onehot: torch.Tensor,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The training holes (N, 1, H, W) bool: lesion holes, random ones where empty."""
        return self.holes.sample(onehot, generator)

    def _batch(self, inputs: dict) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(real images, one-hot maps, holes) of a training batch. The holes are drawn
        once per batch and kept in ``inputs['hole']`` (a pipeline may give them), so the
        discriminator and generator steps of an iteration share them."""
        real, onehot = inputs['img'], inputs['label']
        self._check_label(onehot)
        hole = inputs.get('hole')
        if hole is None:
            hole = inputs['hole'] = self.training_holes(onehot)
        return real, onehot, (hole > 0.5) if hole.dtype != torch.bool else hole

    def _generate(self, gen, real, onehot, hole) -> Tuple[torch.Tensor, torch.Tensor]:
        """(raw generator output, composite) of normalised images."""
        holef = hole.to(real.dtype)
        raw = gen(real, holef, torch.cat([onehot, holef], dim=1))
        return raw, torch.where(hole, raw, real)

    def _disc(self, images, onehot, hole):
        n = len(images) // len(onehot)
        cond = torch.cat([onehot, hole.to(onehot.dtype)], dim=1)
        return self.discriminator(torch.cat([images, cond.repeat(n, 1, 1, 1)], dim=1))

    def _region_weights(self, hole, preds) -> Optional[List[torch.Tensor]]:
        """Per scale, 1 on the logits whose cell meets the hole dilated by ``d_context``
        (square neighbourhood), 0 elsewhere; None for the whole image."""
        ctx = self.loss_config['d_context']
        if ctx is None:
            return None
        region = hole.float()
        if ctx > 0:
            region = F.max_pool2d(region, 2 * ctx + 1, stride=1, padding=ctx)
        return [F.adaptive_max_pool2d(region, tuple(scale[-1].shape[-2:])) for scale in preds]

    @staticmethod
    def _split(preds, n):
        return ([[f[:n] for f in scale] for scale in preds],
                [[f[n:] for f in scale] for scale in preds])

    def train_discriminator(self, inputs: dict, data_samples: DataSample,
                            optimizer_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        real, onehot, hole = self._batch(inputs)
        with torch.no_grad():
            _, fake = self._generate(self.generator, real, onehot, hole)
        preds = self._disc(torch.cat([fake, real]), onehot, hole)
        preds_fake, preds_real = self._split(preds, len(real))
        weights = self._region_weights(hole, preds_fake)
        if weights is None:
            loss_d = hinge_d_loss(preds_real, preds_fake)
        else:
            loss_d = region_hinge_d_loss(preds_real, preds_fake, weights)
        loss, log_vars = self.parse_losses(dict(loss_d_hinge=loss_d))
        optimizer_wrapper.update_params(loss)
        with torch.no_grad():
            ws = weights or [torch.ones_like(p[-1]) for p in preds_real]
            log_vars['d_real_score'] = torch.stack(
                [_weighted_mean(p[-1], w) for p, w in zip(preds_real, ws)]).mean()
            log_vars['d_fake_score'] = torch.stack(
                [_weighted_mean(p[-1], w) for p, w in zip(preds_fake, ws)]).mean()
        return log_vars

    def train_generator(self, inputs: dict, data_samples: DataSample,
                        optimizer_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        real, onehot, hole = self._batch(inputs)
        raw, fake = self._generate(self.generator, real, onehot, hole)
        preds = self._disc(torch.cat([fake, real]), onehot, hole)
        preds_fake, preds_real = self._split(preds, len(real))
        weights = self._region_weights(hole, preds_fake)
        cfg = self.loss_config
        losses = dict(
            loss_g_hinge=(hinge_g_loss(preds_fake) if weights is None
                          else region_hinge_g_loss(preds_fake, weights)),
            loss_g_feat=cfg['lambda_feat'] * feature_matching_loss(preds_fake, preds_real))
        if self.vgg_loss.available:
            losses['loss_g_vgg'] = cfg['lambda_vgg'] * self.vgg_loss(fake, real)
        if cfg['lambda_l1'] > 0:
            losses['loss_g_l1'] = cfg['lambda_l1'] * hole_l1_loss(raw, real, hole)
        loss, log_vars = self.parse_losses(losses)
        optimizer_wrapper.update_params(loss)
        with torch.no_grad():
            fov = field_of_view(onehot).flatten(1).sum(1).clamp_min(1)
            log_vars['hole_fraction'] = (hole.flatten(1).sum(1) / fov).mean()
        return log_vars

    # ----------------------------------------------------------------------------------
    def _sampling_generator(self, sample_model: str):
        if sample_model not in ('ema', 'orig'):
            raise ValueError(f"sample_model must be 'ema' or 'orig', got {sample_model!r}")
        gen = self.generator_ema if (sample_model == 'ema' and self.with_ema_gen) \
            else self.generator
        return gen.module if is_model_wrapper(gen) else gen

    @staticmethod
    def _batched(value, name: str, ndim: int) -> torch.Tensor:
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value))
        if not isinstance(value, torch.Tensor):
            raise TypeError(f'inpaint: {name} must be a tensor, got {type(value).__name__}')
        if value.ndim == ndim - 1:
            value = value[None]
        return value

    @torch.no_grad()
    def inpaint(self, image: Union[torch.Tensor, np.ndarray],
                hole_mask: Union[torch.Tensor, np.ndarray, None],
                onehot_label: Union[torch.Tensor, np.ndarray],
                sample_model: str = 'ema') -> torch.Tensor:
        """Paint the hole of images from their label maps.

        Args:
            image: (N, 3, H, W) or (3, H, W) RGB, either uint8 in [0, 255] or a float
                tensor normalised to [-1, 1] (as the data preprocessor gives it).
            hole_mask: (N, 1, H, W), (N, H, W) or (H, W) (one mask for every image),
                bool or 0 / 1: where to paint. None: the lesion holes of the label maps
                (:meth:`hole_from_label`).
            onehot_label: (N, C, H, W) or (C, H, W) one-hot maps of the model's classes.
            sample_model: ``'ema'`` (the EMA generator when the model has one) or
                ``'orig'``.

        Returns:
            (N, 3, H, W) float32 in [0, 255] on the model's device: the generator's
            output inside the hole, the input outside it (a uint8 input's values exactly;
            a normalised input mapped back with the data preprocessor).
        """
        image = self._batched(image, 'image', 4)
        onehot = self._batched(onehot_label, 'onehot_label', 4).float()
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f'inpaint: image must be (N, 3, H, W) RGB, got shape '
                             f'{tuple(image.shape)}')
        self._check_label(onehot)
        if onehot.shape[0] != image.shape[0] or onehot.shape[2:] != image.shape[2:]:
            raise ValueError(f'inpaint: label maps {tuple(onehot.shape)} do not match the '
                             f'images {tuple(image.shape)} (N and H, W)')
        device = self.device
        onehot = onehot.to(device)
        if image.dtype == torch.uint8:
            data = image.to(device).float()
            real = data / 127.5 - 1.0
        elif image.is_floating_point():
            real = image.to(device).float()
            if real.numel() and (real.min() < -1 or real.max() > 1):
                raise ValueError(f'inpaint: a float image must be normalised to [-1, 1], got '
                                 f'values in [{float(real.min()):.3g}, '
                                 f'{float(real.max()):.3g}] (pass uint8 for [0, 255])')
            data = self.data_preprocessor.destruct(real, key='img')
        else:
            raise TypeError(f'inpaint: image must be uint8 or a float tensor in [-1, 1], got '
                            f'{image.dtype}')
        if hole_mask is None:
            hole = self.hole_from_label(onehot)
        else:
            hole = self._batched(hole_mask, 'hole_mask', 3).to(device)
            if hole.ndim == 3:
                hole = hole[:, None]
            if hole.shape[0] == 1 and image.shape[0] > 1:
                hole = hole.expand(image.shape[0], -1, -1, -1)
            if hole.ndim != 4 or hole.shape[1] != 1 or hole.shape[0] != image.shape[0] \
                    or hole.shape[2:] != image.shape[2:]:
                raise ValueError(f'inpaint: hole_mask must be (N, 1, H, W), (N, H, W) or '
                                 f'(H, W) of the images\' size {tuple(image.shape[2:])}, got '
                                 f'{tuple(hole_mask.shape)}')
            if hole.dtype != torch.bool:
                if ((hole != 0) & (hole != 1)).any():
                    raise ValueError('inpaint: hole_mask must be bool or hold only 0 and 1')
                hole = hole > 0.5
        gen = self._sampling_generator(sample_model)
        was_training = gen.training
        gen.eval()
        try:
            raw, _ = self._generate(gen, real, onehot, hole)
        finally:
            gen.train(was_training)
        painted = self.data_preprocessor.destruct(raw.float(), key='img')
        return torch.where(hole, painted, data)

    def forward(self, inputs: dict, data_samples: Optional[List] = None,
                mode: Optional[str] = None) -> List[DataSample]:
        """Inpaint ``inputs['img']`` in ``inputs['hole']`` (or the lesion holes of
        ``inputs['label']``) for the val / test loops: DataSamples with ``fake_img``
        (the composite), ``gt_img`` and ``hole``, images in [0, 255]."""
        sample_model = inputs.get('sample_model', 'ema')
        hole = inputs.get('hole')
        if hole is None:
            hole = self.hole_from_label(inputs['label'])
        fake = self.inpaint(inputs['img'], hole, inputs['label'], sample_model)
        real = self.data_preprocessor.destruct(inputs['img'], key='img')
        hole = hole.bool() if hole.dtype != torch.bool else hole
        return [DataSample(fake_img=fake[i], gt_img=real[i], hole=hole[i])
                for i in range(len(fake))]
