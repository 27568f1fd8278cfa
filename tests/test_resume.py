"""Resuming from a checkpoint works on torch >= 2.6 (mmengine 0.10.7 alone fails there)."""
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader


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


def test_local_loader_is_patched():
    import fundus_plugins.compat as compat
    assert CheckpointLoader._get_checkpoint_loader('x.pth') is compat._load_local_checkpoint


def test_resume_continues_iterations_and_optimizer(tmp_path):
    r1 = _runner(tmp_path, 4)
    r1.train()
    saved = torch.load(tmp_path / 'iter_4.pth', weights_only=False)
    assert saved['meta']['iter'] == 4
    rec = Recorder()
    r2 = _runner(tmp_path, 6, resume=True, hooks=[rec])
    r2.train()
    assert rec.iters == [4, 5]                        # went on from the checkpoint
    assert torch.equal(rec.start_weight, saved['state_dict']['linear.weight'])
    final = torch.load(tmp_path / 'iter_6.pth', weights_only=False)
    assert final['meta']['iter'] == 6
    assert final['optimizer']['state'][0]['step'] == 6  # Adam's step count carried over
