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

Speed switches that leave what is computed as it is (up to float rounding):
``channels_last`` (channels-last memory format for the networks and their inputs; by
default on a CUDA device only), ``compile`` (``torch.compile`` of the generators' and
the discriminator's forward, with a fall-back to eager execution where it fails; off by
default) and ``translate(..., amp=True)`` (bf16 autocast for translation on a CUDA
device). Inside the generator, each resolution's label map is resized once per forward
and SPADE's modulation is fused (see :mod:`.generator`, :mod:`.architecture`).
"""
from __future__ import annotations

import inspect
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Union

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
from .losses import (TORCHVISION, feature_matching_loss, hinge_d_loss, hinge_g_loss, kld_loss,
                     merge_loss_config, perceptual_loss, pooled_l1_loss)

DEFAULT_LOSS = dict(lambda_feat=10.0, lambda_vgg=10.0, lambda_kld=0.05, lambda_l1=0.0,
                    l1_pool=1)
CHANNELS_LAST = ('auto', True, False)
#: torch.compile's keyword arguments (the ``compile`` dict may give any of them)
COMPILE_KEYS = tuple(name for name in inspect.signature(torch.compile).parameters
                     if name != 'model')


def _run_generator(module, *args, **kwargs):
    """``module(*args, **kwargs)``: the function ``compile`` compiles for the generators
    (the module is an argument, so that one compiled function serves the generator and
    its EMA copy and holds no reference to either)."""
    return module(*args, **kwargs)


def _run_discriminator(module, *args, **kwargs):
    """As :func:`_run_generator`, for the discriminator (a function of its own, so that
    its compiled graphs are cached apart from the generators')."""
    return module(*args, **kwargs)


_RUNNERS = dict(generator=_run_generator, discriminator=_run_discriminator)


def _describe(exc: BaseException, depth: int = 1) -> str:
    """``Type: first line`` of an error, and of the error it wraps (a compiler's error
    inside torch's BackendCompilerFailed, say)."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), '')
    text = f'{type(exc).__name__}: {first}'
    inner = getattr(exc, 'inner_exception', None) or exc.__cause__
    if depth and inner is not None and inner is not exc:
        text += f' ({_describe(inner, depth - 1)})'
    return text


def _compile_options(value) -> Union[None, str, dict]:
    """The ``compile`` switch -> torch.compile's keyword arguments, None (eager) or
    ``'auto'`` (decided on the model's device at the first call)."""
    if value is False or value is None:
        return None
    if value is True:
        return {}
    if isinstance(value, str) and value == 'auto':
        return 'auto'
    if not isinstance(value, dict):
        raise TypeError(f"SPADEGAN.compile must be False, True, 'auto' or a dict of "
                        f'torch.compile keyword arguments, got {value!r}')
    unknown = set(value) - set(COMPILE_KEYS)
    if unknown:
        raise KeyError(f'SPADEGAN.compile: unknown torch.compile argument(s) '
                       f'{sorted(unknown)}; expected some of {list(COMPILE_KEYS)}')
    return dict(value)


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
        channels_last: memory format of the generators, the discriminator (the whole
            model: the VGG too) and their inputs: ``'auto'`` (the default) channels-last
            on a CUDA device and the default (contiguous) format elsewhere; True
            channels-last anywhere; False the default format anywhere. Applied at each
            training step and translation when the model is not in that format yet (so
            after moving it to a device; it undoes another channels-last conversion when
            False, or 'auto' off CUDA).
        compile: False (the default): eager execution; True: ``torch.compile`` (its
            defaults) of the forward of the generator, its EMA copy and the
            discriminator; ``'auto'``: as True when the model is on a CUDA device at the
            first call, eager elsewhere; a dict: torch.compile's keyword arguments
            (``backend``, ``mode``, ``dynamic``, ``fullgraph``, ``options``, ...; others
            are an error here). Compilation happens at the first call. If building the
            compiled function or a compiled forward fails while the same call runs
            eagerly, one warning names the error and the model runs eagerly from then on
            (a call that fails eagerly too raises its eager error; a compiled forward
            that failed after running part of itself has updated that part's batch-norm
            statistics and spectral-norm vectors once more). Errors in a compiled
            backward are not caught. The state dict is unchanged.
    """

    def __init__(self, generator: dict, discriminator: dict,
                 data_preprocessor: Optional[dict] = None, ema_config: Optional[dict] = None,
                 loss_config: Optional[dict] = None, classes: Optional[Sequence] = None,
                 use_od_edge: bool = True, vgg_weights: Optional[str] = TORCHVISION,
                 channels_last: Union[str, bool] = 'auto',
                 compile: Union[bool, str, dict] = False):  # noqa: A002 (the config key)
        self.class_set = resolve_classes(classes)
        if use_od_edge and 'OD' not in self.class_set.codes:
            raise ValueError('SPADEGAN.use_od_edge needs OD in the class list; set '
                             'use_od_edge=False for classes without the optic disc')
        self.use_od_edge = use_od_edge
        if not any(channels_last is c or (isinstance(channels_last, str)
                                          and channels_last == c) for c in CHANNELS_LAST):
            raise ValueError(f"SPADEGAN.channels_last must be 'auto', True or False, got "
                             f'{channels_last!r}')
        compile_options = _compile_options(compile)
        self.label_nc = len(self.class_set) + int(use_od_edge)
        generator = dict(generator)
        if generator.setdefault('label_nc', self.label_nc) != self.label_nc:
            raise ValueError(f'generator.label_nc is {generator["label_nc"]}, but the classes '
                             f'(+ edge map) give {self.label_nc}; leave it out of the config')
        discriminator = dict(discriminator)
        if discriminator.setdefault('input_nc', self.label_nc + 3) != self.label_nc + 3:
            raise ValueError(f'discriminator.input_nc is {discriminator["input_nc"]}, expected '
                             f'{self.label_nc + 3} (label channels + RGB)')
        loss_config = merge_loss_config('SPADEGAN', DEFAULT_LOSS, loss_config)
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
        self.vgg_loss = perceptual_loss(vgg_weights, loss_config['lambda_vgg'])
        self.channels_last = channels_last
        self.compile_options = compile_options
        self._compiled = {}  # role -> compiled runner, built at its first use
        self._compile_error = None  # the error that turned compilation off

    def __getstate__(self):
        # Compiled functions are rebuilt in a copy (deepcopy, pickle) at its first call.
        state = self.__dict__.copy()
        state['_compiled'] = {}
        return state

    # ----------------------------------------------------------------------------------
    def memory_format(self) -> torch.memory_format:
        """The memory format ``channels_last`` asks for on the model's device."""
        if self.channels_last == 'auto':
            cl = self.device.type == 'cuda'
        else:
            cl = self.channels_last
        return torch.channels_last if cl else torch.contiguous_format

    def _prepare(self) -> torch.memory_format:
        """Put the model in :meth:`memory_format` if it is not yet (checked on the
        generator's output conv: one tensor); return that format for the inputs."""
        fmt = self.memory_format()
        gen = self.generator.module if hasattr(self.generator, 'module') else self.generator
        if not gen.conv_img.weight.is_contiguous(memory_format=fmt):
            self.to(memory_format=fmt)
        return fmt

    def _run(self, role: str, module, *args, **kwargs):
        """``module(*args, **kwargs)``, through torch.compile when ``compile`` asks for
        it and it has not failed (see the class docstring)."""
        options = self.compile_options
        if options == 'auto':
            options = {} if self.device.type == 'cuda' else None
        if options is None or self._compile_error is not None:
            return module(*args, **kwargs)
        fn = self._compiled.get(role)
        if fn is None:
            try:
                fn = self._compiled[role] = torch.compile(_RUNNERS[role], **options)
            except Exception as exc:  # an invalid backend, an unknown mode, ...
                self._compile_failed(exc)
                return module(*args, **kwargs)
        try:
            return fn(module, *args, **kwargs)
        except Exception as exc:
            error = exc
        out = module(*args, **kwargs)  # an error that eager execution raises too: raised
        self._compile_failed(error)
        return out

    def _compile_failed(self, exc: BaseException) -> None:
        self._compile_error = _describe(exc)
        self._compiled.clear()
        print_log(f'SPADEGAN: torch.compile({self.compile_options}) failed '
                  f'({self._compile_error}); the generator and the discriminator run eagerly',
                  logger='current', level=30)

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
        return self._run('discriminator', self.discriminator, torch.cat([seg, image], dim=1))

    def _inputs(self, inputs: dict):
        """(real images, generator input) in the model's memory format."""
        fmt = self._prepare()
        return (inputs['img'].contiguous(memory_format=fmt),
                self.label_input(inputs['label']).contiguous(memory_format=fmt))

    def train_discriminator(self, inputs: dict, data_samples: DataSample,
                            optimizer_wrapper: OptimWrapper) -> Dict[str, torch.Tensor]:
        real, seg = self._inputs(inputs)
        with torch.no_grad():
            z, _, _ = self._latent(real)
            fake = self._run('generator', self.generator, seg, z=z)
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
        real, seg = self._inputs(inputs)
        z, mu, logvar = self._latent(real)
        fake = self._run('generator', self.generator, seg, z=z)
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
                  z: Optional[torch.Tensor] = None, amp: bool = False) -> torch.Tensor:
        """One-hot label maps (N, C, H, W) -> images (N, 3, H, W), uint8-range float32.

        ``amp``: run the generator under autocast on a CUDA device, in bf16 (fp16 on a
        GPU without bf16); ignored elsewhere (fp32, as the CPU computes it). Without it
        an autocast context of the caller applies as it is."""
        if not isinstance(amp, bool):
            raise TypeError(f'SPADEGAN.translate: amp must be True or False, got {amp!r}')
        gen = self.generator_ema if (sample_model == 'ema' and self.with_ema_gen) \
            else self.generator
        fmt = self._prepare()
        device = self.device
        if amp and device.type == 'cuda':
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            autocast = torch.autocast('cuda', dtype=dtype)
        else:
            autocast = nullcontext()
        was_training = gen.training
        gen.eval()
        try:
            seg = self.label_input(onehot.to(device).float()).contiguous(memory_format=fmt)
            with autocast:
                fake = self._run('generator', gen, seg, z=z)
        finally:
            gen.train(was_training)
        return self.data_preprocessor.destruct(fake.float(), key='img')

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
