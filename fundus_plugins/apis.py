"""Loading trained models from a config and a checkpoint, for the tools."""
from __future__ import annotations

import os.path as osp

import torch
from mmengine.config import Config


def load_config(path: str, cfg_options: dict | None = None) -> Config:
    """A config with the project's components registered and ``lesion_classes`` applied."""
    import fundus_plugins  # noqa: F401
    from .runtime import apply_run_settings, check_config_keys

    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: config not found')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_config_keys(cfg, path)
    apply_run_settings(cfg)
    return cfg


def build_model(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` in its config's scope (``default_scope``)."""
    from mmengine.registry import DefaultScope, MODELS

    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmagic')):
        return MODELS.build(cfg.model)


def init_model(cfg: Config, checkpoint: str, device: str = 'cpu') -> torch.nn.Module:
    """Build ``cfg.model`` and load ``checkpoint`` into it."""
    from mmengine.runner import load_checkpoint

    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'{checkpoint}: checkpoint not found')
    model = build_model(cfg)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    return model.to(device).eval()
