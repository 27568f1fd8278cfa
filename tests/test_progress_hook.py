"""ProgressBarHook and QuietConsoleRunner: a bar per run on stderr that ends at n/n (and
starts where a resumed run starts), a console without mmengine's INFO lines, and a log
file that still has everything (environment, config, the LoggerHook's lines)."""
import logging

import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.registry import DATASETS, METRICS, MODELS, RUNNERS
from mmengine.runner import Runner

from fundus_plugins.checkpoint import mmengine_checkpoint_globals
from fundus_plugins.engine import (HeldLog, ProgressBarHook, QuietConsoleRunner, log_file,
                                   show_progress, use_quiet_runner)

from test_resume import ToyModel


@MODELS.register_module(force=True)
class ProgressToyModel(ToyModel):
    """test_resume's toy model, registered, with predictions as a list (one per sample)."""

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = super().forward(inputs, data_samples, mode)
        return out if mode == 'loss' else list(out)


@DATASETS.register_module(force=True)
class ProgressToyData(torch.utils.data.Dataset):
    def __init__(self, n=8):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = torch.tensor([float(i), 1.0])
        return dict(inputs=x, data_samples=x.sum(dim=0, keepdim=True))


@METRICS.register_module(force=True)
class ProgressToyMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results += [float(s) for s in data_samples]

    def compute_metrics(self, results):
        return {'mean_output': sum(results) / len(results)}


def _loader(n=8, sampler='DefaultSampler'):
    return dict(dataset=dict(type='ProgressToyData', n=n), batch_size=4, num_workers=0,
                sampler=dict(type=sampler, shuffle=False),
                collate_fn=dict(type='default_collate'))


def _cfg(work_dir, name, train_cfg, runner_type='QuietConsoleRunner', hooks=(), **extra):
    by_epoch = train_cfg.get('by_epoch', True)
    cfg = Config(dict(
        model=dict(type='ProgressToyModel'), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=_loader(sampler='DefaultSampler' if by_epoch else 'InfiniteSampler'),
        train_cfg=train_cfg, log_processor=dict(by_epoch=by_epoch),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=1,
                                           by_epoch=by_epoch)),
        custom_hooks=list(hooks), randomness=dict(seed=0), default_scope='mmengine',
        **extra))
    if runner_type:
        cfg.runner_type = runner_type
    return cfg


def test_three_iterations_a_bar_on_stderr_and_info_only_in_the_log_file(tmp_path, capsys):
    cfg = _cfg(tmp_path, 'progress_iters', dict(by_epoch=False, max_iters=3),
               hooks=[dict(type='ProgressBarHook', desc='toy run')])
    runner = RUNNERS.build(cfg)
    assert isinstance(runner, QuietConsoleRunner)
    runner.logger.info('an info line the console must not show')
    warning = f'a warning the console shows ({tmp_path.name})'
    runner.logger.warning(warning)
    runner.train()
    out, err = capsys.readouterr()
    assert 'toy run' in err and '3/3' in err
    assert '0/3' in err  # the bar starts at the run's first iteration
    # Nothing at INFO on the console: no environment, config, hook table, loss lines.
    for text in ('System environment', 'Config:', 'Hooks will be executed', 'Iter(train)',
                 'an info line', ' - INFO - '):
        assert text not in out, text
    assert out.count(warning) == 1
    # The log file has it all.
    path = log_file(runner.logger)
    assert path.startswith(str(tmp_path)) and path.endswith('.log')
    logged = open(path).read()
    for text in ('System environment', 'Config:', "type='ProgressBarHook'",
                 'Hooks will be executed', 'Iter(train) [3/3]', 'an info line', warning):
        assert text in logged, text
    # A later run's console does not repeat a warning an earlier run showed; its file has it.
    again = RUNNERS.build(_cfg(tmp_path / 'again', 'progress_again',
                               dict(by_epoch=False, max_iters=1)))
    again.logger.warning(warning)
    assert warning not in capsys.readouterr().out
    assert warning in open(log_file(again.logger)).read()


def test_epochs_count_every_iteration_a_test_pass_has_its_bar(tmp_path, capsys):
    # 2 epochs x 2 iterations (8 items, batch 4), then a test pass of 2 batches.
    cfg = _cfg(tmp_path, 'progress_epochs', dict(by_epoch=True, max_epochs=2),
               hooks=[dict(type='ProgressBarHook', desc='toy epochs')],
               test_dataloader=_loader(), test_cfg=dict(),
               test_evaluator=dict(type='ProgressToyMetric'))
    runner = RUNNERS.build(cfg)
    runner.train()
    runner.test()
    out, err = capsys.readouterr()
    assert 'toy epochs' in err and '4/4' in err
    assert 'toy epochs test' in err and '2/2' in err
    assert 'Epoch(train)' not in out and 'mean_output' not in out
    logged = open(log_file(runner.logger)).read()
    assert 'Epoch(train) [2][2/2]' in logged and 'mean_output' in logged


def test_a_resumed_run_starts_its_bar_where_it_resumes(tmp_path, capsys):
    RUNNERS.build(_cfg(tmp_path, 'progress_first', dict(by_epoch=False, max_iters=3))).train()
    capsys.readouterr()
    cfg = _cfg(tmp_path, 'progress_resumed', dict(by_epoch=False, max_iters=5),
               hooks=[dict(type='ProgressBarHook', desc='resumed')], resume=True)
    with mmengine_checkpoint_globals():  # as the pipeline resumes
        RUNNERS.build(cfg).train()
    err = capsys.readouterr().err
    assert '3/5' in err and '5/5' in err and '0/5' not in err


def test_use_quiet_runner_and_show_progress(tmp_path, capsys):
    cfg = _cfg(tmp_path, 'progress_helpers', dict(by_epoch=False, max_iters=2),
               runner_type=None)
    use_quiet_runner(cfg)
    assert cfg.runner_type == 'QuietConsoleRunner'
    own = _cfg(tmp_path, 'x', dict(by_epoch=False, max_iters=2), runner_type='Runner')
    use_quiet_runner(own)
    assert own.runner_type == 'Runner'  # a config's own runner is kept
    held = HeldLog()  # what loading a config logs before the run's logger exists
    held('an info line held for the log file', logger='current')
    held(f'a warning held ({tmp_path.name})', logger='current', level=logging.WARNING)
    runner = RUNNERS.build(cfg)
    capsys.readouterr()
    lines = []
    show_progress(runner, 'helper run', lines.append, held)
    show_progress(runner, 'helper run', lines.append, held)
    out = capsys.readouterr().out
    assert 'held for the log file' not in out and out.count('a warning held') == 1
    logged = open(log_file(runner.logger)).read()
    assert logged.count('an info line held for the log file') == 1  # replayed once
    assert f'a warning held ({tmp_path.name})' in logged
    assert sum(isinstance(h, ProgressBarHook) for h in runner.hooks) == 1
    # (the path in full: tmp_path is not below the working directory)
    assert lines == [f'helper run: log in {log_file(runner.logger)}'] * 2
    runner.train()
    out, err = capsys.readouterr()
    assert 'helper run' in err and '2/2' in err and 'Iter(train)' not in out


def test_show_progress_quiets_a_plain_runner_after_it_is_built(tmp_path, capsys):
    runner = RUNNERS.build(_cfg(tmp_path, 'progress_plain', dict(by_epoch=False, max_iters=2),
                                runner_type='Runner'))
    assert type(runner) is Runner
    assert 'System environment' in capsys.readouterr().out  # mmengine's console, as it is
    show_progress(runner, 'plain run', lambda line: None)
    console = [h for h in runner.logger.handlers if not isinstance(h, logging.FileHandler)]
    assert console and all(h.level >= logging.WARNING for h in console)
    runner.train()
    out, err = capsys.readouterr()
    assert 'Iter(train)' not in out and '2/2' in err


def test_bad_interval_is_refused():
    with pytest.raises(ValueError, match='mininterval'):
        ProgressBarHook(mininterval=-1)
