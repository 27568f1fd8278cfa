"""mmengine 0.10.7 assumes GPUs when distributed: ``init_dist`` calls
``torch.cuda.set_device`` and the runner passes ``device_ids=[LOCAL_RANK]`` to DDP, both of
which fail on a machine without CUDA devices. :func:`patch_mmengine_cpu_distributed`
initialises the process group with gloo instead (an nccl request is turned into gloo, with
a log line) and leaves ``device_ids`` out, so ``tools/dist_train.sh CONFIG N`` runs N CPU
processes. It is applied by :func:`fundus_plugins.config.build_runner` (which the tools
use) for a distributed run on a machine without CUDA devices, never on import; machines
with GPUs are untouched.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as torch_dist
from mmengine.dist import utils as dist_utils
from mmengine.logging import print_log
from mmengine.model.wrappers import distributed as mm_ddp

_DIST_PATCHED = False


def cuda_devices() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def patch_mmengine_cpu_distributed() -> None:
    """Let mmengine's pytorch launcher and DDP wrappers run on CPU-only machines
    (idempotent)."""
    global _DIST_PATCHED
    if _DIST_PATCHED:
        return

    original_init_dist = dist_utils._init_dist_pytorch

    def init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if cuda_devices() > 0 or init_backend != 'torch':
            return original_init_dist(backend, init_backend=init_backend, **kwargs)
        if backend == 'nccl':
            print_log('no CUDA device: distributed backend nccl -> gloo (CPU processes)',
                      logger='current')
            backend = 'gloo'
        torch_dist.init_process_group(backend=backend, rank=int(os.environ['RANK']),
                                      world_size=int(os.environ['WORLD_SIZE']), **kwargs)

    dist_utils._init_dist_pytorch = init_dist_pytorch

    original_ddp_init = mm_ddp.MMDistributedDataParallel.__init__

    def ddp_init(self, module, detect_anomalous_params=False, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu and cuda_devices() == 0:
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        original_ddp_init(self, module, detect_anomalous_params=detect_anomalous_params,
                          **kwargs)

    mm_ddp.MMDistributedDataParallel.__init__ = ddp_init
    _DIST_PATCHED = True
