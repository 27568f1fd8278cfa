"""What a training run shows on the console: a progress bar, and warnings only.

mmengine's Runner logs at INFO to the console and to its log file
(``<work_dir>/<timestamp>/<timestamp>.log``) alike: the system environment and the full
config while it is built, the table of hooks, and a line every ``LoggerHook.interval``
iterations. A job that trains many runs (the pipeline) buries its own messages under them.

* :class:`ProgressBarHook` draws a tqdm bar on stderr over a run's training iterations:
  ``max_iters`` of an iteration-based loop, ``max_epochs`` x iterations per epoch of an
  epoch-based one (mmengine's ``runner.max_iters`` in both), from the iteration a resumed
  run starts at; and a short bar per validation and test pass.
* :func:`quiet_console` raises the console handler of a run's logger to WARNING: INFO
  records go to the log file only; each distinct warning is shown on the console once
  per process (the file gets every one).
* :class:`QuietConsoleRunner` is mmengine's Runner with that console from the start, so
  the environment and config dumps written while it is built go to the log file only
  (``runner_type = 'QuietConsoleRunner'`` in a config).
* :func:`use_quiet_runner` and :func:`show_progress` do both for a config about to be
  built and the runner built from it (the pipeline's training runs); :class:`HeldLog`
  keeps what loading the config logs until the run's log file exists.

The hook and the runner are registered in mmengine's root registries, so configs of any
scope (mmagic, mmseg) find them.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.logging.logger import FilterDuplicateWarning
from mmengine.registry import HOOKS, RUNNERS
from mmengine.runner import Runner
from tqdm import tqdm

#: Shared by every quieted console: a warning already shown by an earlier run is not
#: shown again (mmengine's own filter forgets with each run's new logger).
_SHOWN_WARNINGS = FilterDuplicateWarning('fundus_plugins console')


def _console_handlers(logger: logging.Logger) -> list:
    # FileHandler is a StreamHandler too; the console is the one that is not a file.
    return [h for h in logger.handlers
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]


def quiet_console(logger: logging.Logger, level: int = logging.WARNING) -> None:
    """Show only records of ``level`` and above on ``logger``'s console handler(s), each
    distinct warning once per process; its file handler keeps everything."""
    for handler in _console_handlers(logger):
        handler.setLevel(max(handler.level, level))
        if _SHOWN_WARNINGS not in handler.filters:
            handler.addFilter(_SHOWN_WARNINGS)


def log_file(logger: logging.Logger) -> Optional[str]:
    """The file ``logger`` writes to (its first file handler's), or None."""
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def short_path(path: str) -> str:
    """``path`` relative to the working directory when it lies below it."""
    rel = os.path.relpath(path)
    return path if rel.startswith('..') else rel


@RUNNERS.register_module()
class QuietConsoleRunner(Runner):
    """mmengine's Runner whose console shows warnings and errors only, from the moment its
    logger exists; everything it logs at INFO (environment, config, hooks, the
    LoggerHook's lines) goes to its log file (see :func:`quiet_console`)."""

    def build_logger(self, log_level='INFO', log_file=None, **kwargs) -> MMLogger:
        logger = super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
        quiet_console(logger)
        return logger


def use_quiet_runner(cfg) -> None:
    """Have the config ``cfg`` build a :class:`QuietConsoleRunner`, unless it names a
    runner of its own (then :func:`show_progress` quiets the console once it is built)."""
    if 'runner_type' not in cfg:
        cfg.runner_type = 'QuietConsoleRunner'


class HeldLog:
    """A stand-in for mmengine's ``print_log`` (``log(msg, logger=..., level=...)``) that
    holds the messages logged while a run's config is loaded, before the run's logger
    exists, so that :func:`show_progress` writes them to that run's log file (and warnings
    to the console) instead of mmengine's console-only default logger."""

    def __init__(self):
        self.records = []

    def __call__(self, msg, logger=None, level=logging.INFO) -> None:
        self.records.append((level, msg))

    def replay(self, logger: logging.Logger) -> None:
        for level, msg in self.records:
            logger.log(level, msg)
        self.records.clear()


def show_progress(runner, desc: str, log=print, held: Optional[HeldLog] = None) -> None:
    """Quiet ``runner``'s console (:func:`quiet_console`), write the messages ``held``
    for it to its logger, give it a :class:`ProgressBarHook` labelled ``desc`` unless it
    has one, and ``log`` one line saying where its log file is."""
    quiet_console(runner.logger)
    if held is not None:
        held.replay(runner.logger)
    if not any(isinstance(h, ProgressBarHook) for h in runner.hooks):
        runner.register_hook(ProgressBarHook(desc=desc))
    path = log_file(runner.logger)
    if path:
        log(f'{desc}: log in {short_path(path)}')


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """A progress bar on stderr over a run's training iterations, and one per
    validation / test pass (on the main process only).

    The training bar counts ``runner.max_iters`` (iterations of an iteration-based loop,
    epochs x iterations per epoch of an epoch-based one) from the iteration the run
    starts at (a resumed run's). It does not change what is logged; with a console that
    shows only warnings (:class:`QuietConsoleRunner`) it is what the console shows of a
    run.

    Args:
        desc: the bars' label (the run's name); validation and test bars add
            ``val`` / ``test`` to it.
        eval_bars: also show a bar per validation and test pass.
        mininterval: seconds between redraws; None: 0.5 on a terminal, 30 otherwise
            (a log file gets every redraw).
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, desc: str = 'train', eval_bars: bool = True,
                 mininterval: Optional[float] = None):
        if mininterval is not None and mininterval < 0:
            raise ValueError(f'ProgressBarHook.mininterval must be >= 0, got {mininterval}')
        self.desc = str(desc)
        self.eval_bars = bool(eval_bars)
        self.mininterval = mininterval
        self._train_bar = None
        self._eval_bar = None
        self._training = False

    def _bar(self, total: int, desc: str, initial: int = 0, leave: bool = True):
        interval = self.mininterval
        if interval is None:
            interval = 0.5 if sys.stderr.isatty() else 30.0
        return tqdm(total=total, initial=initial, desc=desc, unit='it', leave=leave,
                    mininterval=interval, dynamic_ncols=True, file=sys.stderr,
                    disable=not is_main_process())

    # ------------------------------------------------------------------------- training
    def before_train(self, runner) -> None:
        self._training = True

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        # Made at the first iteration, not in before_train: what the other hooks log
        # before training starts comes before the bar, not on its line.
        if self._train_bar is None:
            self._train_bar = self._bar(runner.max_iters, self.desc, initial=runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self._train_bar is not None:
            # The loop counts the iteration after its hooks: runner.iter + 1 are done.
            self._train_bar.update(runner.iter + 1 - self._train_bar.n)

    def after_train(self, runner) -> None:
        self._training = False
        self._close('_train_bar')

    # ------------------------------------------------------------------ validation, test
    def before_val_epoch(self, runner) -> None:
        if self.eval_bars:
            # During training the val bar sits below the training bar and goes when done.
            self._eval_bar = self._bar(len(runner.val_loop.dataloader), f'{self.desc} val',
                                       leave=not self._training)

    def before_test_epoch(self, runner) -> None:
        if self.eval_bars:
            self._eval_bar = self._bar(len(runner.test_loop.dataloader),
                                       f'{self.desc} test')

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._eval_bar is not None:
            self._eval_bar.update(1)

    after_test_iter = after_val_iter

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._close('_eval_bar')

    after_test_epoch = after_val_epoch

    def after_run(self, runner) -> None:
        self._close('_eval_bar')
        self._close('_train_bar')

    def _close(self, name: str) -> None:
        bar = getattr(self, name)
        if bar is not None:
            bar.close()
            setattr(self, name, None)
