"""Adversarial losses with one-sided label smoothing, for any loss type.

For the non-saturating (BCE) loss, one-sided label smoothing (Salimans et al. 2016)
replaces the discriminator's real target 1 by ``s`` (0.9 by default):

    L_D = BCE(D(x), s) + BCE(D(G(z)), 0)
        = s * softplus(-D(x)) + (1 - s) * softplus(D(x)) + softplus(D(G(z)))

i.e. the real term becomes the convex combination ``s * L_real + (1 - s) * L_fake`` of
the loss for "real" and the loss for "fake" on real samples. We use that form for every
loss type, so smoothing also acts under the hinge loss (where a "target" has no meaning
and the paper's public code's flag did nothing):

    L_D(hinge) = s * relu(1 - D(x)) + (1 - s) * relu(1 + D(x)) + relu(1 + D(G(z)))

The generator's loss is unchanged: softplus(-D(G(z))) (BCE) or -D(G(z)) (hinge).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOSS_TYPES = ('hinge', 'bce')


def _real_term(logits, loss_type):
    return F.relu(1 - logits) if loss_type == 'hinge' else F.softplus(-logits)


def _fake_term(logits, loss_type):
    return F.relu(1 + logits) if loss_type == 'hinge' else F.softplus(logits)


def check_loss_type(loss_type: str) -> str:
    if loss_type not in LOSS_TYPES:
        raise ValueError(f'adversarial loss type must be one of {LOSS_TYPES}, got {loss_type!r}')
    return loss_type


def disc_real_loss(logits: torch.Tensor, loss_type: str = 'hinge',
                   real_target: float = 1.0) -> torch.Tensor:
    """Discriminator loss on real samples, with one-sided smoothing ``real_target``."""
    loss = _real_term(logits, loss_type)
    if real_target != 1.0:
        loss = real_target * loss + (1 - real_target) * _fake_term(logits, loss_type)
    return loss.mean()


def disc_fake_loss(logits: torch.Tensor, loss_type: str = 'hinge') -> torch.Tensor:
    """Discriminator loss on generated samples (never smoothed: one-sided)."""
    return _fake_term(logits, loss_type).mean()


def gen_loss(logits: torch.Tensor, loss_type: str = 'hinge') -> torch.Tensor:
    """Generator loss: non-saturating for BCE, -D(G(z)) for hinge."""
    if loss_type == 'hinge':
        return -logits.mean()
    return F.softplus(-logits).mean()
