"""Helpers the hooks share."""
from __future__ import annotations

from mmengine.model import is_model_wrapper


def unwrap(model):
    """The model inside an mmengine / DDP wrapper (``runner.model``), or ``model``."""
    return model.module if is_model_wrapper(model) else model
