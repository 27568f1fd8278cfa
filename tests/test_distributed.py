"""tools/dist_train.sh and dist_test.sh: 2 CPU processes (gloo) for a few iterations."""
import os
import socket
import subprocess
import sys

import pytest
import torch

from fundus_plugins.apis import init_model
from fundus_plugins.config import load_config

from conftest import REPO, child_options, tiny_seg_options, write_config

pytestmark = pytest.mark.skipif(sys.platform == 'win32', reason='bash launcher')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(script, *args, cwd):
    env = dict(os.environ, PORT=str(_free_port()), PYTHON=sys.executable)
    proc = subprocess.run(['bash', str(REPO / 'tools' / script), *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600,
                          **child_options())
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def _acgan_options(root) -> dict:
    """The demo label ACGAN, 2 iterations at batch 2, no validation."""
    return {'data_root': str(root), 'train_dataloader.batch_size': 2,
            'train_cfg.max_iters': 2, 'val_cfg': None, 'val_dataloader': None,
            'val_evaluator': None, 'default_hooks.checkpoint.interval': 2,
            'default_hooks.logger.interval': 1}


def _both_ranks_started(out):
    # Each rank logs the backend switch once: two lines for two processes.
    assert out.count('distributed backend nccl -> gloo') == 2, out[-4000:]
    assert 'Distributed training: True' in out


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU (gloo) path')
def test_segmentation_trains_and_tests_on_two_cpu_processes(phantom_root, tmp_path):
    config = write_config(REPO / 'configs/seg/unet_fundus_demo.py', tmp_path / 'seg.py',
                          tiny_seg_options(phantom_root))
    out = _run('dist_train.sh', config, 2, '--work-dir', tmp_path / 'w', cwd=tmp_path)
    _both_ranks_started(out)
    ckpt = tmp_path / 'w' / 'epoch_1.pth'
    assert torch.load(ckpt, weights_only=False)['meta']['epoch'] == 1
    init_model(load_config(str(config)), str(ckpt))  # loads strictly into the model
    out = _run('dist_test.sh', config, ckpt, 2, '--work-dir', tmp_path / 't',
               '--out', tmp_path / 'm.json', cwd=tmp_path)
    _both_ranks_started(out)
    assert 'pixel_f1/OD' in (tmp_path / 'm.json').read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU (gloo) path')
def test_label_gan_trains_on_two_cpu_processes(phantom_root, tmp_path):
    config = write_config(REPO / 'configs/acgan_labels_demo.py', tmp_path / 'acgan.py',
                          _acgan_options(phantom_root))
    out = _run('dist_train.sh', config, 2, '--work-dir', tmp_path / 'w', cwd=tmp_path)
    _both_ranks_started(out)
    assert 'MMSeparateDistributedDataParallel' in out or 'Iter(train) [2/2]' in out
    ckpt = tmp_path / 'w' / 'iter_2.pth'
    assert torch.load(ckpt, weights_only=False)['meta']['iter'] == 2
    init_model(load_config(str(config)), str(ckpt))


def test_a_tool_destroys_the_process_group_it_started(tmp_path):
    # Left to the interpreter's exit, a gloo group can abort a finished process (SIGABRT,
    # "terminate called without an active exception"): run_tool destroys it, on success
    # and on a user error alike.
    import torch.distributed as dist

    from _tool import run_tool
    from fundus_plugins.errors import UserError

    def main(fail):
        dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store{int(fail)}',
                                rank=0, world_size=1)
        if fail:
            raise UserError('bad input')
        return 0

    assert run_tool(lambda: main(False), 'none') == 0
    assert not dist.is_initialized()
    assert run_tool(lambda: main(True), 'none') == 2
    assert not dist.is_initialized()
