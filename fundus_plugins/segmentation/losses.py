"""A per-class soft Dice loss for lesion segmentation (registered in mmseg's MODELS).

mmseg 1.2's ``DiceLoss`` flattens all classes of an image into one vector, so its Dice
is dominated by background and retina, which cover almost every pixel; lesions of a few
hundred pixels barely move it, and a model that predicts no lesion at all scores well.
Here every class gets its own soft Dice over the batch, and the loss is one minus their
mean, so a small class weighs as much as a large one.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS


@MODELS.register_module()
class ClassDiceLoss(torch.nn.Module):
    """1 - mean over classes of (2 sum(p t) + s) / (sum(p) + sum(t) + s), softmax p.

    Args:
        loss_weight: multiplies the loss.
        smooth: s; a class absent from truth and prediction scores Dice 1 (no loss).
        ignore_classes: class indices left out of the mean (e.g. background).
        loss_name: the key in the losses (mmseg sums losses of the same name).
    """

    def __init__(self, loss_weight: float = 1.0, smooth: float = 1.0,
                 ignore_classes: Optional[Sequence[int]] = None,
                 loss_name: str = 'loss_dice'):
        super().__init__()
        self.loss_weight = loss_weight
        self.smooth = smooth
        self.ignore_classes = tuple(ignore_classes or ())
        self._loss_name = loss_name

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight=None,
                ignore_index: int = 255, **kwargs) -> torch.Tensor:
        num_classes = pred.shape[1]
        valid = (target != ignore_index).unsqueeze(1).float()
        onehot = F.one_hot(target.clamp(0, num_classes - 1).long(), num_classes)
        onehot = onehot.permute(0, 3, 1, 2).float() * valid
        prob = pred.softmax(dim=1) * valid
        dims = (0, 2, 3)
        inter = (prob * onehot).sum(dims)
        dice = (2 * inter + self.smooth) / (prob.sum(dims) + onehot.sum(dims) + self.smooth)
        keep = [c for c in range(num_classes) if c not in self.ignore_classes]
        return self.loss_weight * (1 - dice[keep].mean())

    @property
    def loss_name(self) -> str:
        return self._loss_name
