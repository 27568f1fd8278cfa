"""SPADE's losses: multiscale hinge, feature matching, VGG19 perceptual, KL divergence.

NVlabs/SPADE ``models/networks/loss.py`` and ``pix2pix_model.py``:

* hinge: D: mean relu(1 - D(real)) + mean relu(1 + D(fake)); G: -mean D(fake); on the
  last output of every scale, averaged over scales;
* feature matching: sum over the intermediate layers (all but the logit) of
  L1(D_j(fake), D_j(real).detach()), averaged over scales, weight 10;
* VGG19 perceptual: sum_k w_k L1(phi_k(fake), phi_k(real).detach()) over relu1_1,
  relu2_1, relu3_1, relu4_1, relu5_1 with w = 1/32, 1/16, 1/8, 1/4, 1, weight 10. The
  weights are torchvision's ImageNet VGG19 (``VGG19_Weights.IMAGENET1K_V1``,
  ``vgg19-dcbb9e9d.pth``), found where torchvision keeps them (torch hub's checkpoint
  cache, ``torch.hub.get_dir()/checkpoints``, which follows ``TORCH_HOME``) and
  downloaded there by torch hub when absent, or read from a local file. Weights that
  cannot be had are an error saying where to put the file (see
  :func:`load_vgg19_state`). The frozen network is not part of the model's state dict:
  checkpoints do not carry 80 MB of torchvision's weights, and load into a model built
  with or without the term. Unlike SPADE's code we feed VGG the ImageNet-normalised
  image, which is what its weights expect;
* KL divergence of the VAE encoder: -0.5 * sum(1 + logvar - mu^2 - exp(logvar)), weight
  0.05.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from torchvision.models import VGG19_Weights
from torchvision.models.vgg import cfgs, make_layers

VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
# Indices of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in torchvision's vgg19.features.
VGG_SLICES = (2, 7, 12, 21, 30)
#: torchvision's ImageNet VGG19 weights: where they are published and the file name torch
#: hub caches them under.
VGG19_URL = VGG19_Weights.IMAGENET1K_V1.url
VGG19_FILE = VGG19_URL.rsplit('/', 1)[-1]
#: ``vgg_weights`` value meaning torchvision's own source (torch hub's cache, then the URL).
TORCHVISION = 'torchvision'


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
    """torchvision's VGG19 ``features`` up to relu5_1, untrained (built as torchvision's
    ``vgg19`` builds them, without the 120M-parameter classifier we do not use)."""
    return make_layers(cfgs['E'], batch_norm=False)[:VGG_SLICES[-1]]


def vgg19_cache_path() -> str:
    """Where torchvision keeps VGG19's ImageNet weights: torch hub's checkpoint cache,
    ``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth`` (``$TORCH_HOME/hub/checkpoints``;
    by default ``~/.cache/torch/hub/checkpoints``)."""
    return osp.join(torch.hub.get_dir(), 'checkpoints', VGG19_FILE)


def vgg19_instructions() -> str:
    """Where to put the VGG19 weights, or how to do without them."""
    return (f"Put torchvision's {VGG19_FILE} ({VGG19_URL}) at {vgg19_cache_path()} (torch "
            f"hub's cache, which TORCH_HOME moves) and set vgg_weights='{TORCHVISION}', or "
            f"set vgg_weights to the path of a local copy; or train without the VGG "
            f"perceptual term: loss_config lambda_vgg=0 (or vgg_weights=None).")


def _read_weights(path: str) -> dict:
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # not a torch file, or one holding more than tensors
        raise ValueError(f'{path}: not a weights file torch.load(weights_only=True) reads '
                         f'(expected VGG19 weights, {VGG19_FILE}): {exc}') from exc
    return state


def load_vgg19_state(weights: str) -> Tuple[dict, str]:
    """(state dict, file) of VGG19 weights named by ``weights``.

    ``'torchvision'``: torchvision's ``vgg19-dcbb9e9d.pth`` from torch hub's checkpoint
    cache (:func:`vgg19_cache_path`), downloaded there with
    ``torch.hub.load_state_dict_from_url`` (hash-checked, as torchvision does) when it is
    absent. Any other string is a local path, used as given. Weights that cannot be had
    (offline and not cached, a missing local file) raise FileNotFoundError saying where to
    put the file and how to turn the term off; a file that torch cannot read with
    ``weights_only=True`` raises ValueError naming it.
    """
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"vgg_weights must be a local path, '{TORCHVISION}' or None, got "
                        f'{weights!r}')
    weights = os.fspath(weights)
    if weights == TORCHVISION:
        path = vgg19_cache_path()
        if osp.isfile(path):
            return _read_weights(path), path
        print_log(f'VGG19 weights: {path} is absent; downloading {VGG19_URL}',
                  logger='current')
        try:
            state = torch.hub.load_state_dict_from_url(VGG19_URL, map_location='cpu',
                                                       check_hash=True, weights_only=True)
        except Exception as exc:  # offline, refused, interrupted, wrong hash
            raise FileNotFoundError(
                f"VGG19 weights for the perceptual loss (vgg_weights='{TORCHVISION}'): "
                f'{path} does not exist and downloading {VGG19_URL} failed '
                f'({type(exc).__name__}: {exc}). {vgg19_instructions()}') from exc
        return state, path
    path = osp.expanduser(weights)
    if not osp.isfile(path):
        raise FileNotFoundError(f'VGG19 weights for the perceptual loss: vgg_weights file '
                                f'{weights} not found. {vgg19_instructions()}')
    return _read_weights(path), path


class VGGPerceptualLoss(nn.Module):
    """VGG19 perceptual loss with torchvision's ImageNet weights.

    Args:
        weights: ``'torchvision'`` (torch hub's cache, downloaded there when absent), the
            path of a local copy (``vgg19-dcbb9e9d.pth`` or any state dict with its
            ``features.*`` keys), or None: no network, ``available`` is False and the
            loss 0. See :func:`load_vgg19_state` for the errors.
        layer_weights: weights of relu1_1 .. relu5_1.

    The frozen network is kept out of the module tree (``state_dict`` has none of its
    weights; ``.to()`` and friends still move it), and ``features.*`` keys of
    checkpoints saved when it was part of the state dict are dropped on load.
    """

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

    def __init__(self, weights: Optional[str] = None, layer_weights=VGG_LAYER_WEIGHTS):
        super().__init__()
        self.layer_weights = tuple(layer_weights)
        self.weights_path = None  # the file the weights were read from
        self._frozen = ()  # (features,): a tuple so that nn.Module does not register it
        self.register_buffer('mean', torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)
        self.register_load_state_dict_pre_hook(_drop_vgg_keys)
        if weights is None:
            return
        state, path = load_vgg19_state(weights)
        if not isinstance(state, dict):
            raise ValueError(f'{path}: not VGG19 weights (expected a state dict with '
                             f'torchvision vgg19 features.* keys, got {type(state).__name__})')
        state = state.get('state_dict', state)
        feats = {k[len('features.'):]: v for k, v in state.items() if k.startswith('features.')}
        if not feats:
            feats = state
        features = build_vgg19_features()
        try:
            features.load_state_dict({k: v for k, v in feats.items()
                                      if int(k.split('.')[0]) < VGG_SLICES[-1]})
        except (RuntimeError, ValueError) as e:
            raise ValueError(f'{path}: not VGG19 weights (expected torchvision '
                             f'vgg19 features.* keys): {e}') from e
        for p in features.parameters():
            p.requires_grad_(False)
        self._frozen = (features.eval(),)
        self.weights_path = path
        print_log(f'VGG perceptual loss is ON ({path})', logger='current')

    @property
    def available(self) -> bool:
        """Whether the network is loaded (False: the loss is 0)."""
        return bool(self._frozen)

    @property
    def features(self) -> Optional[nn.Sequential]:
        """The frozen VGG19 features up to relu5_1, or None."""
        return self._frozen[0] if self._frozen else None

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self._frozen:  # device / dtype moves reach the unregistered network too
            self._frozen[0]._apply(fn, *args, **kwargs)
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


def _drop_vgg_keys(module, state_dict, prefix, *args):
    """Load pre-hook: checkpoints written when the VGG network was part of the state
    dict carry its (torchvision's, frozen) weights; they are not the model's to load."""
    for key in [k for k in state_dict if k.startswith(prefix + 'features.')]:
        del state_dict[key]


def perceptual_loss(vgg_weights: Optional[str], lambda_vgg: float) -> VGGPerceptualLoss:
    """The VGG term of a translator whose weight is ``lambda_vgg``: off (nothing loaded)
    when ``lambda_vgg`` is 0 or ``vgg_weights`` is None, saying so in the log (a warning
    when the weight asks for the term but no weights are named)."""
    if lambda_vgg == 0:
        print_log('VGG perceptual loss is off (loss_config lambda_vgg=0)', logger='current')
        vgg_weights = None
    elif vgg_weights is None:
        print_log(f'VGG perceptual loss is off (vgg_weights=None), although '
                  f'lambda_vgg={lambda_vgg}', logger='current', level=30)
    return VGGPerceptualLoss(vgg_weights)


def merge_loss_config(owner: str, defaults: dict, given: Optional[dict]) -> dict:
    """``defaults`` updated with a model's ``loss_config``; a key the model does not know
    is an error naming ``owner`` (the model) and the keys it takes."""
    merged = dict(defaults, **(given or {}))
    unknown = set(merged) - set(defaults)
    if unknown:
        raise KeyError(f'{owner}.loss_config: unknown key(s) {sorted(unknown)}; expected '
                       f'some of {sorted(defaults)}')
    return merged
