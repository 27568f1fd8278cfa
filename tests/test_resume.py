"""Checkpoints load with torch.load(weights_only=True) and only an mmengine checkpoint's
types allowed (mmengine 0.10.7 alone cannot resume on torch >= 2.6); a checkpoint with
anything else is refused; importing the package changes nothing in mmengine or torch."""
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

from conftest import REPO, child_options


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return {'loss': ((out - data_samples) ** 2).mean()}
        return out


class ToyData(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        x = torch.tensor([float(i), 1.0])
        return dict(inputs=x, data_samples=x.sum(dim=0, keepdim=True))


class Recorder(Hook):
    def __init__(self):
        self.iters = []
        self.start_weight = None

    def before_train(self, runner):
        self.start_weight = runner.model.linear.weight.detach().clone()

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.iters.append(runner.iter)


def _runner(work_dir, max_iters, resume=False, hooks=()):
    return Runner(custom_hooks=list(hooks),
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyData(), sampler=dict(type='DefaultSampler', shuffle=True),
                              batch_size=4, num_workers=0, collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        resume=resume, randomness=dict(seed=0), default_scope='mmengine')


IMPORT_CHANGES_NOTHING = """
import signal, warnings
import torch
from mmengine.dist import utils
from mmengine.model.wrappers import distributed
from mmengine.runner.checkpoint import CheckpointLoader
def state():
    return (dict(CheckpointLoader._schemes), utils._init_dist_pytorch,
            distributed.MMDistributedDataParallel.__init__,
            list(torch.serialization.get_safe_globals()), torch.load.__defaults__,
            [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)],
            list(warnings.filters))
import mmagic.evaluation, mmagic.models, mmseg.models  # their imports may change torch
before = state()
import fundus_plugins
assert state() == before, 'importing fundus_plugins changed mmengine, torch, signals or warnings'
print('unchanged')
"""


def test_importing_the_package_leaves_mmengine_and_torch_as_they_were():
    out = subprocess.run([sys.executable, '-c', IMPORT_CHANGES_NOTHING], capture_output=True,
                         text=True, timeout=300, **child_options())
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'unchanged' in out.stdout


class Payload:
    """Unpickling this would run open(marker, 'w'): a stand-in for hidden code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, 'w')


def test_a_checkpoint_with_a_pickled_payload_is_refused(tmp_path, seg_trained):
    from fundus_plugins.apis import init_model
    from fundus_plugins.config import load_config
    from fundus_plugins.checkpoint import CheckpointRefused, load_checkpoint
    config, ckpt, _ = seg_trained
    marker = tmp_path / 'ran'
    bad = tmp_path / 'payload.pth'
    data = load_checkpoint(str(ckpt))
    data['meta']['note'] = Payload(marker)
    torch.save(data, bad)
    with pytest.raises(CheckpointRefused, match=f'{bad}: refused .* io.open'):
        load_checkpoint(str(bad))
    with pytest.raises(CheckpointRefused, match='payload.pth: refused'):
        init_model(load_config(str(config)), str(bad))
    sys.path.insert(0, str(REPO / 'tools'))
    import test as test_tool
    with pytest.raises(CheckpointRefused, match='payload.pth: refused'):
        test_tool.main([str(config), str(bad), '--work-dir', str(tmp_path / 'w')])
    assert not marker.exists()  # nothing in the file ran
    # The untouched checkpoint loads.
    assert 'state_dict' in load_checkpoint(str(ckpt))


def test_resume_continues_iterations_and_optimizer(tmp_path):
    from fundus_plugins.checkpoint import mmengine_checkpoint_globals
    r1 = _runner(tmp_path, 4)
    r1.train()
    saved = torch.load(tmp_path / 'iter_4.pth', weights_only=False)
    assert saved['meta']['iter'] == 4
    rec = Recorder()
    r2 = _runner(tmp_path, 6, resume=True, hooks=[rec])
    with mmengine_checkpoint_globals(str(tmp_path)):
        r2.train()
    assert rec.iters == [4, 5]                        # went on from the checkpoint
    assert torch.equal(rec.start_weight, saved['state_dict']['linear.weight'])
    final = torch.load(tmp_path / 'iter_6.pth', weights_only=False)
    assert final['meta']['iter'] == 6
    assert final['optimizer']['state'][0]['step'] == 6  # Adam's step count carried over
