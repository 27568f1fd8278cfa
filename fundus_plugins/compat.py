"""Fixes for version mismatches in the pinned stack, applied once on import.

* mmengine 0.10.7 loads local checkpoints with ``torch.load(filename, map_location)``.
  Since torch 2.6 that means ``weights_only=True``, which refuses the Python objects an
  mmengine checkpoint holds (the message hub's ``HistoryBuffer``, numpy scalars, the
  config), so ``--resume`` fails with "Weights only load failed". We register a local
  loader that passes ``weights_only=False``. Only load checkpoints you trust: a pickle
  can run code (the same holds for any mmengine checkpoint on torch < 2.6).
* mmengine 0.10.7 assumes GPUs when distributed: ``init_dist`` calls
  ``torch.cuda.set_device`` and the runner passes ``device_ids=[LOCAL_RANK]`` to DDP,
  both of which fail on a machine without CUDA devices. Without them we initialise the
  process group with gloo (an nccl request is turned into gloo, with a log line) and
  leave ``device_ids`` out, so ``tools/dist_train.sh CONFIG N`` runs N CPU processes.
  Machines with GPUs are untouched.
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


_DIST_PATCHED = False


def _cuda_devices() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def patch_mmengine_cpu_distributed() -> None:
    """Let mmengine's pytorch launcher and DDP wrappers run on CPU-only machines."""
    global _DIST_PATCHED
    if _DIST_PATCHED:
        return
    import os

    import torch.distributed as torch_dist
    from mmengine.dist import utils as dist_utils
    from mmengine.model.wrappers import distributed as mm_ddp

    original_init_dist = dist_utils._init_dist_pytorch

    def init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if _cuda_devices() > 0 or init_backend != 'torch':
            return original_init_dist(backend, init_backend=init_backend, **kwargs)
        if backend == 'nccl':
            from mmengine.logging import print_log
            print_log('no CUDA device: distributed backend nccl -> gloo (CPU processes)',
                      logger='current')
            backend = 'gloo'
        torch_dist.init_process_group(backend=backend, rank=int(os.environ['RANK']),
                                      world_size=int(os.environ['WORLD_SIZE']), **kwargs)

    dist_utils._init_dist_pytorch = init_dist_pytorch

    original_ddp_init = mm_ddp.MMDistributedDataParallel.__init__

    def ddp_init(self, module, detect_anomalous_params=False, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu and _cuda_devices() == 0:
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        original_ddp_init(self, module, detect_anomalous_params=detect_anomalous_params,
                          **kwargs)

    mm_ddp.MMDistributedDataParallel.__init__ = ddp_init
    _DIST_PATCHED = True


def apply_all() -> None:
    patch_mmengine_checkpoint_loading()
    patch_mmengine_cpu_distributed()
