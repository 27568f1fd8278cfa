"""The grade-conditioned label-map ACGAN, on mmagic's BaseConditionalGAN.

One training iteration (mmagic's ``BaseGAN.train_step``): ``discriminator_steps``
iterations make one discriminator cycle; after each cycle the generator is updated
``generator_steps`` times. The ratio is set by :class:`GANStepRatioHook` from the config
(2:1 in the paper), so it can change or follow a schedule during training.

Discriminator loss, for a real map x of grade y and a generated map G(z, y') of a
uniformly drawn grade y' (A: the ADA augmentation, identity while p = 0)::

    L_D = s * L_real(D(A(x))) + (1 - s) * L_fake(D(A(x)))     # one-sided smoothing, s = 0.9
        + L_fake(D(A(G(z, y'))))
        + w_aux_d * CE(C(A(x)), y)                                # auxiliary grade classifier
        [+ w_aux_d * CE(C(A(G(z, y'))), y')]                   # only with aux_on_fake_d

Generator loss::

    L_G = L_gen(D(A(G(z, y')))) + w_aux_g * CE(C(A(G(z, y'))), y')
        [+ w_ms / (|G(z1, y) - G(z2, y)| / |z1 - z2|)]            # mode seeking, optional

``w_aux_g > 0`` is what makes the generator honour the grade; the paper's public code
leaves that term out. With ``aux_on_fake_d`` off, the auxiliary classifier learns grades
from real maps only, so the generator can satisfy it only with the lesion load of real
maps of that grade, not with a private code it agrees on with the discriminator.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from mmagic.models.base_models import BaseConditionalGAN
from mmagic.registry import MODELS
from mmagic.structures import DataSample
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from ...classes import resolve_classes
from ..ada_augment import AdaAugment
from ..data_preprocessor import FundusDataPreprocessor
from .fov import maps_with_fov
from .losses import check_loss_type, disc_fake_loss, disc_real_loss, gen_loss

DEFAULT_LOSS = dict(adv_loss='hinge', real_target=0.9, aux_weight_d=1.0, aux_weight_g=1.0,
                    aux_on_fake_d=True, mode_seeking_weight=0.0,
                    entropy_weight=0.0)


def mode_seeking_loss(fake1, fake2, z1, z2, eps=1e-5):
    """Mode-seeking regulariser (Mao et al., CVPR 2019): 1 / (d(G(z1), G(z2)) / d(z1, z2)),
    for pairs with one grade. Small when two noises give different maps, so the generator
    cannot ignore its noise (which a conditional GAN on few images tends to do)."""
    ratio = (fake1 - fake2).abs().mean(dim=(1, 2, 3)) / (z1 - z2).abs().mean(dim=1)
    return (1.0 / (ratio + eps)).mean()


def _with_channels(cfg, key: str, channels: int, what: str):
    """Fill ``cfg[key]`` with the class count, or check it agrees."""
    if not isinstance(cfg, dict):
        return cfg
    cfg = dict(cfg)
    if cfg.setdefault(key, channels) != channels:
        raise ValueError(f'{what}.{key} is {cfg[key]} but the class list '
                         f'has {channels} classes; leave {key} out of the config')
    return cfg


@MODELS.register_module()
class LabelACGAN(BaseConditionalGAN):
    """ACGAN over C-channel label maps, conditioned on the DR grade.

    Args:
        generator, discriminator: configs (``LabelMapGenerator``, ``LabelMapDiscriminator``).
        data_preprocessor: defaults to ``FundusDataPreprocessor`` (no normalisation).
        generator_steps, discriminator_steps: the update ratio until a
            :class:`GANStepRatioHook` sets it.
        num_classes: number of DR grades (5).
        ema_config: mmagic EMA config for the generator, e.g.
            ``dict(type='ExponentialMovingAverage', momentum=0.001)``.
        loss_config: ``adv_loss`` ('hinge' | 'bce'), ``real_target`` (one-sided label
            smoothing, 1.0 = off), ``aux_weight_d``, ``aux_weight_g``, ``aux_on_fake_d``
            (also train the auxiliary classifier on generated maps, as ACGAN does; off,
            the classifier learns grades from real maps only, so the generator can only
            satisfy it with real grade features), ``mode_seeking_weight`` (0 = off),
            ``entropy_weight`` (penalise the mean per-pixel entropy of generated maps:
            confident pixels leave no near-ties for a third class to win, 0 = off).
        augment: ``AdaAugment`` arguments (``kind='label'``), or None for no ADA.
        classes: the config's class list; the generator's output and the
            discriminator's input channels follow from it (``len(ClassSet(classes))``).
        sample_flip: mirror each sampled map left-right with probability 1/2; set it
            when the training maps were aligned to one disc side (``AlignOpticDisc``).
        disc_temperature: the discriminator sees generated maps as
            ``softmax(logits / T)``; T < 1 sharpens them towards the argmax maps that
            sampling writes, so a class that barely wins a pixel (a speck) is as visible
            to the discriminator as it will be in the written map. 1 = the paper.
    """

    def __init__(self, generator: dict, discriminator: dict,
                 data_preprocessor: Optional[dict] = None, generator_steps: int = 1,
                 discriminator_steps: int = 1, noise_size: Optional[int] = None,
                 num_classes: int = 5, ema_config: Optional[dict] = None,
                 loss_config: Optional[dict] = None, augment: Optional[dict] = None,
                 classes: Optional[Sequence] = None, sample_flip: bool = False,
                 disc_temperature: float = 1.0):
        if disc_temperature <= 0:
            raise ValueError(f'LabelACGAN.disc_temperature must be > 0, got {disc_temperature}')
        self.sample_flip = sample_flip
        self.disc_temperature = disc_temperature
        self.class_set = resolve_classes(classes)
        channels = len(self.class_set)
        generator = _with_channels(generator, 'out_channels', channels, 'generator')
        discriminator = _with_channels(discriminator, 'in_channels', channels, 'discriminator')
        loss_config = dict(DEFAULT_LOSS, **(loss_config or {}))
        unknown = set(loss_config) - set(DEFAULT_LOSS)
        if unknown:
            raise KeyError(f'LabelACGAN.loss_config: unknown key(s) {sorted(unknown)}; '
                           f'expected some of {sorted(DEFAULT_LOSS)}')
        check_loss_type(loss_config['adv_loss'])
        if not 0.5 < loss_config['real_target'] <= 1.0:
            raise ValueError(f'LabelACGAN.loss_config.real_target must be in (0.5, 1], got '
                             f'{loss_config["real_target"]}')
        if data_preprocessor is None:
            data_preprocessor = FundusDataPreprocessor()
        # Sub-module configs are mmagic's, whatever scope this model is built in.
        with DefaultScope.overwrite_default_scope('mmagic'):
            super().__init__(generator, discriminator, data_preprocessor, generator_steps,
                             discriminator_steps, noise_size, num_classes, ema_config,
                             loss_config)
        self.augment = AdaAugment(**augment) if augment is not None else None
        # Update counters (saved with the model) and ADA's running sign statistic.
        self.register_buffer('num_d_updates', torch.zeros((), dtype=torch.long))
        self.register_buffer('num_g_updates', torch.zeros((), dtype=torch.long))
        self.register_buffer('ada_stats', torch.zeros(2), persistent=False)

    # ----------------------------------------------------------------------------------
    @property
    def adv_loss(self) -> str:
        return self.loss_config['adv_loss']

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return self.augment(x) if self.augment is not None else x

    def _disc_view(self, probs: torch.Tensor) -> torch.Tensor:
        """Generated probabilities as the discriminator sees them (before ADA)."""
        if self.disc_temperature == 1.0:
            return probs
        return torch.softmax(torch.log(probs.clamp_min(1e-12)) / self.disc_temperature, dim=1)

    def disc_loss(self, adv_real, cls_real, real_labels, adv_fake, cls_fake,
                  fake_labels) -> Dict[str, torch.Tensor]:
        """The discriminator's loss terms (see the module docstring)."""
        cfg = self.loss_config
        losses = dict(
            loss_d_real=disc_real_loss(adv_real, self.adv_loss, cfg['real_target']),
            loss_d_fake=disc_fake_loss(adv_fake, self.adv_loss))
        if cfg['aux_weight_d'] > 0 and cls_real is not None:
            losses['loss_d_aux_real'] = cfg['aux_weight_d'] * F.cross_entropy(cls_real,
                                                                               real_labels)
            if cfg['aux_on_fake_d']:
                losses['loss_d_aux_fake'] = cfg['aux_weight_d'] * F.cross_entropy(
                    cls_fake, fake_labels)
        return losses

    def gen_loss(self, adv_fake, cls_fake, fake_labels) -> Dict[str, torch.Tensor]:
        losses = dict(loss_g_adv=gen_loss(adv_fake, self.adv_loss))
        if self.loss_config['aux_weight_g'] > 0 and cls_fake is not None:
            losses['loss_g_aux'] = self.loss_config['aux_weight_g'] * F.cross_entropy(
                cls_fake, fake_labels)
        return losses

    # ----------------------------------------------------------------------------------
    def train_discriminator(self, inputs: dict, data_samples: DataSample,
                            optimizer_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        real = inputs['img']
        real_labels = self.data_sample_to_label(data_samples)
        if real_labels is None:
            raise KeyError("LabelACGAN needs the DR grade of every real map in "
                           "data_samples.gt_label (PackFundusGenInputs puts it there)")
        real_labels = real_labels.long().view(-1).to(real.device)
        n = real.shape[0]
        noise = self.noise_fn(num_batches=n)
        fake_labels = self.label_fn(num_batches=n)
        with torch.no_grad():
            fake = self.generator(noise, label=fake_labels)
        adv_real, cls_real = self.discriminator(self._augment(real))
        adv_fake, cls_fake = self.discriminator(self._augment(self._disc_view(fake)))
        losses = self.disc_loss(adv_real, cls_real, real_labels, adv_fake, cls_fake,
                                fake_labels)
        loss, log_vars = self.parse_losses(losses)
        optimizer_wrapper.update_params(loss)
        with torch.no_grad():
            self.ada_stats += torch.stack([torch.sign(adv_real).sum(),
                                           torch.tensor(float(n), device=adv_real.device)]
                                          ).to(self.ada_stats.device)
            self.num_d_updates += 1
            log_vars['d_acc_real'] = (adv_real > 0).float().mean()
            log_vars['d_acc_fake'] = (adv_fake < 0).float().mean()
            if cls_real is not None:
                log_vars['d_grade_acc_real'] = (cls_real.argmax(1) == real_labels).float().mean()
        return log_vars

    def train_generator(self, inputs: dict, data_samples: DataSample,
                        optimizer_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        n = inputs['img'].shape[0]
        noise = self.noise_fn(num_batches=n)
        fake_labels = self.label_fn(num_batches=n)
        ms_weight = self.loss_config['mode_seeking_weight']
        if ms_weight > 0 and n >= 2:
            # Pairs (i, i + n/2) share a grade, so the mode-seeking term compares two
            # noises for one grade.
            half = n // 2
            fake_labels[half:2 * half] = fake_labels[:half]
        fake = self.generator(noise, label=fake_labels)
        adv_fake, cls_fake = self.discriminator(self._augment(self._disc_view(fake)))
        losses = self.gen_loss(adv_fake, cls_fake, fake_labels)
        if self.loss_config['entropy_weight'] > 0:
            entropy = -(fake * torch.log(fake.clamp_min(1e-12))).sum(1).mean()
            losses['loss_g_entropy'] = self.loss_config['entropy_weight'] * entropy
        if ms_weight > 0 and n >= 2:
            losses['loss_g_mode_seeking'] = ms_weight * mode_seeking_loss(
                fake[:half], fake[half:2 * half], noise[:half], noise[half:2 * half])
        loss, log_vars = self.parse_losses(losses)
        optimizer_wrapper.update_params(loss)
        with torch.no_grad():
            self.num_g_updates += 1
            if cls_fake is not None:
                log_vars['g_grade_acc_fake'] = (cls_fake.argmax(1) == fake_labels).float().mean()
        return log_vars

    # ----------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, grades: torch.Tensor, noise: Optional[torch.Tensor] = None,
               sample_model: str = 'ema', flips: Optional[torch.Tensor] = None
               ) -> torch.Tensor:
        """Class probabilities (N, C, H, W) for ``grades`` (N,), from the EMA generator
        when there is one (``sample_model='orig'`` for the trained one).

        With ``sample_flip``, map i is mirrored where ``flips[i]`` (drawn at random when
        not given).
        """
        gen = self.generator_ema if (sample_model == 'ema' and self.with_ema_gen) \
            else self.generator
        grades = grades.long().to(self.device)
        if noise is None:
            noise = torch.randn(len(grades), self.noise_size, device=self.device)
        was_training = gen.training
        gen.eval()
        try:
            probs = gen(noise.to(self.device), label=grades)
        finally:
            gen.train(was_training)
        return self._flip(probs, flips)

    def _flip(self, probs: torch.Tensor, flips: Optional[torch.Tensor]) -> torch.Tensor:
        if not self.sample_flip:
            return probs
        if flips is None:
            flips = torch.rand(len(probs)) < 0.5
        flips = flips.to(probs.device).view(-1, 1, 1, 1)
        return torch.where(flips, probs.flip(-1), probs)

    def forward(self, inputs, data_samples=None, mode=None):
        """mmagic's sampling forward (val / test loops), with ``sample_flip`` applied."""
        outputs = super().forward(inputs, data_samples, mode)
        if self.sample_flip:
            for out in outputs:
                for holder in (out, out.get('ema'), out.get('orig')):
                    if holder is not None and 'fake_img' in holder:
                        holder.fake_img = self._flip(holder.fake_img[None], None)[0]
        return outputs


def label_maps_from_probs(probs: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """(N, C, H, W) probabilities -> (N, H*scale, W*scale) class indices, the generator's
    own field of view (see :mod:`.fov` for the others). Upsampling is bilinear on the
    probabilities, then argmax, as the paper does to go from 256 to 512."""
    return maps_with_fov(probs, scale, 'generated')
