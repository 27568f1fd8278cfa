"""A seeded run killed between checkpoints and resumed ends bit-identical to one that was
never stopped (CPU, one process): every tensor of the final checkpoint, for the label
ACGAN and SPADE; and --resume passes over a damaged checkpoint and a copied work dir
resumes from its own files."""
import shutil

import pytest
import torch
from mmengine.hooks import Hook

from fundus_plugins.checkpoint import (find_resume_checkpoint, load_checkpoint,
                                       mmengine_checkpoint_globals)
from fundus_plugins.config import build_runner, load_config

from conftest import REPO

ITERS = 4


class Killed(Exception):
    pass


class FirstIter(Hook):
    """Records the iteration a run starts at."""

    def __init__(self):
        self.first = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.first is None:
            self.first = runner.iter


class KillAt(Hook):
    """Stops the run inside iteration ``at`` (after its forward/backward), as a kill."""

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            raise Killed


ACGAN = {'train_cfg.max_iters': ITERS, 'train_cfg.val_interval': 100, 'val_cfg': None,
         'val_dataloader': None, 'val_evaluator': None, 'train_dataloader.batch_size': 4,
         'model.generator.base_channels': 32, 'model.discriminator.base_channels': 16,
         'default_hooks.checkpoint.interval': 2, 'default_hooks.logger.interval': 1,
         # ADA on from the start and moving, so that its draws and its p must resume.
         'model.augment.p': 0.3, 'custom_hooks.1.ada_kimg': 0.1,
         'custom_hooks.1.interval': 1, 'custom_hooks.2.interval': 100}
SPADE = {'image_size': 32, 'model.generator.ngf': 4, 'model.discriminator.ndf': 4,
         'model.discriminator.num_D': 1, 'train_dataloader.batch_size': 2,
         'train_cfg.max_iters': ITERS, 'default_hooks.checkpoint.interval': 2,
         'default_hooks.logger.interval': 1, 'custom_hooks': []}


def _run(config, options, work, kill_at=None, resume=None, random_states=True):
    cfg = load_config(str(REPO / config), options, work_dir=work, resume=resume)
    runner = build_runner(cfg)
    if not random_states:  # the control: a run without RandomStateHook
        runner._hooks = [h for h in runner._hooks if type(h).__name__ != 'RandomStateHook']
    runner.first = FirstIter()
    runner.register_hook(runner.first)
    if kill_at:
        runner.register_hook(KillAt(kill_at))
    with mmengine_checkpoint_globals():
        if kill_at:
            with pytest.raises(Killed):
                runner.train()
        else:
            runner.train()
    return runner


def _final(work):
    return load_checkpoint(str(work / f'iter_{ITERS}.pth'))


@pytest.mark.parametrize('config,options', [('configs/acgan_labels_demo.py', ACGAN),
                                            ('configs/spade_fundus_demo.py', SPADE)],
                         ids=['acgan', 'spade'])
def test_killed_and_resumed_ends_bit_identical(config, options, phantom_root, tmp_path):
    options = dict(options, data_root=str(phantom_root))
    _run(config, options, tmp_path / 'whole')
    _run(config, options, tmp_path / 'cut', kill_at=3)  # after iter_2.pth, inside iter 3
    assert not (tmp_path / 'cut' / 'iter_4.pth').exists()
    shutil.copytree(tmp_path / 'cut', tmp_path / 'control')
    assert _run(config, options, tmp_path / 'cut', resume='auto').first.first == 2
    whole, cut = _final(tmp_path / 'whole'), _final(tmp_path / 'cut')
    assert whole['state_dict'].keys() == cut['state_dict'].keys()
    differ = [k for k, v in whole['state_dict'].items()
              if not torch.equal(v, cut['state_dict'][k])]
    assert differ == [], f'{len(differ)} of {len(whole["state_dict"])} tensors differ'
    for name, state in whole['optimizer'].items():
        for i, s in state['state'].items():
            for key, value in s.items():
                assert torch.equal(torch.as_tensor(value),
                                   torch.as_tensor(cut['optimizer'][name]['state'][i][key]))
    assert 'random_states' in cut
    # The control: resumed without the random states, the run goes elsewhere.
    assert _run(config, options, tmp_path / 'control', resume='auto',
                random_states=False).first.first == 2
    control = _final(tmp_path / 'control')
    assert any(not torch.equal(v, control['state_dict'][k])
               for k, v in whole['state_dict'].items())


def test_resume_passes_over_a_damaged_checkpoint_and_a_copy_uses_its_own(
        phantom_root, tmp_path):
    options = dict(ACGAN, data_root=str(phantom_root))
    work = tmp_path / 'w'
    _run('configs/acgan_labels_demo.py', options, work)
    said = []
    # The newest checkpoint truncated (a disk full, a kill while saving).
    data = (work / 'iter_4.pth').read_bytes()
    (work / 'iter_4.pth').write_bytes(data[:len(data) // 2])
    assert find_resume_checkpoint(work, log=said.append) == str(work / 'iter_2.pth')
    assert 'iter_4.pth: not a complete checkpoint archive' in said[0]
    with pytest.raises(ValueError, match='iter_4.pth: cannot load the checkpoint: not a '
                                         'complete checkpoint archive'):
        load_checkpoint(str(work / 'iter_4.pth'))
    (work / 'iter_4.pth').write_bytes(data)
    # A copied work dir resumes from its own checkpoints, not the original's.
    copy = tmp_path / 'copy'
    shutil.copytree(work, copy)
    assert str(work) in (copy / 'last_checkpoint').read_text()
    said.clear()
    assert find_resume_checkpoint(copy, log=said.append) == str(copy / 'iter_4.pth')
    assert 'outside this work dir' in said[0]
    cfg = load_config(str(REPO / 'configs/acgan_labels_demo.py'), options, work_dir=copy,
                      resume='auto')
    assert cfg.load_from == str(copy / 'iter_4.pth') and cfg.resume
