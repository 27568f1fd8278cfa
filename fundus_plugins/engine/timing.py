"""Timing of the runs built while a :func:`recording` is open: the pipeline's time plan
(:mod:`fundus_plugins.pipeline.plan`) trains each model for a few iterations and reads
here how long an iteration took, how long testing took per image, and the peak GPU
memory.

Nothing is recorded, and no hook is added, unless a recording is open:
:func:`fundus_plugins.config.runner_for` calls :func:`attach` on every runner it builds,
which does nothing otherwise.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

from mmengine.hooks import Hook

_OPEN: List['Recording'] = []


class Recording:
    """What the runners built during a :func:`recording` measured: one dict per runner
    (``work_dir``, ``iter_s`` (the seconds of each training iteration, in order),
    ``test_s`` and ``test_images``, ``peak_mem_mb`` (CUDA; None on the CPU))."""

    def __init__(self):
        self.runs: List[dict] = []

    def find(self, work_dir) -> Optional[dict]:
        """The last run whose work dir is ``work_dir`` or lies under it (mmengine makes
        a runner's work dir absolute; ``work_dir`` may be relative)."""
        want = Path(work_dir).resolve()
        for run in reversed(self.runs):
            have = Path(run['work_dir']).resolve()
            if have == want or want in have.parents:
                return run
        return None


@contextmanager
def recording():
    """Record the timing of every runner that :func:`attach` sees until the block ends."""
    rec = Recording()
    _OPEN.append(rec)
    try:
        yield rec
    finally:
        _OPEN.remove(rec)


def attach(runner) -> None:
    """Give ``runner`` a :class:`TimingHook` feeding the open recording, if any."""
    if _OPEN:
        runner.register_hook(TimingHook(_OPEN[-1]), priority='VERY_LOW')


def _cuda_sync() -> bool:
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        return True
    return False


class TimingHook(Hook):
    """Seconds per training iteration (from the end of one to the end of the next, so
    data loading counts), test seconds and images, and the peak CUDA memory."""

    def __init__(self, rec: Recording):
        self.rec = rec
        self.entry: Optional[dict] = None
        self.last = 0.0

    def _entry(self, runner) -> dict:
        if self.entry is None:
            self.entry = dict(work_dir=str(runner.work_dir), iter_s=[], test_s=None,
                              test_images=None, peak_mem_mb=None)
            self.rec.runs.append(self.entry)
        return self.entry

    def _peak(self, entry) -> None:
        import torch
        if torch.cuda.is_available():
            mb = torch.cuda.max_memory_allocated() / 2 ** 20
            entry['peak_mem_mb'] = max(entry['peak_mem_mb'] or 0.0, round(mb, 1))

    def before_train(self, runner) -> None:
        self._entry(runner)
        if _cuda_sync():
            import torch
            torch.cuda.reset_peak_memory_stats()
        self.last = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        _cuda_sync()
        now = time.perf_counter()
        self._entry(runner)['iter_s'].append(now - self.last)
        self.last = now

    def after_train(self, runner) -> None:
        self._peak(self._entry(runner))

    def before_test_epoch(self, runner) -> None:
        _cuda_sync()
        self.test_start = time.perf_counter()

    def after_test_epoch(self, runner, metrics=None) -> None:
        _cuda_sync()
        entry = self._entry(runner)
        entry['test_s'] = time.perf_counter() - self.test_start
        entry['test_images'] = len(runner.test_dataloader.dataset)
        self._peak(entry)
