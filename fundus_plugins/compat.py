"""Fixes for version mismatches in the pinned stack, applied once on import.

* mmengine 0.10.7 loads local checkpoints with ``torch.load(filename, map_location)``.
  Since torch 2.6 that means ``weights_only=True``, which refuses the Python objects an
  mmengine checkpoint holds (the message hub's ``HistoryBuffer``, numpy scalars, the
  config), so ``--resume`` fails with "Weights only load failed". We register a local
  loader that passes ``weights_only=False``. Only load checkpoints you trust: a pickle
  can run code (the same holds for any mmengine checkpoint on torch < 2.6).
"""
from __future__ import annotations

import os.path as osp

import torch

_PATCHED = False


def _load_local_checkpoint(filename, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def patch_mmengine_checkpoint_loading() -> None:
    """Make mmengine's local checkpoint loader work on torch >= 2.6 (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    from mmengine.runner import checkpoint as ckpt

    ckpt.CheckpointLoader.register_scheme(prefixes='', loader=_load_local_checkpoint,
                                          force=True)
    ckpt.load_from_local = _load_local_checkpoint
    _PATCHED = True


def apply_all() -> None:
    patch_mmengine_checkpoint_loading()
