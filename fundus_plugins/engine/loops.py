"""An iteration-based train loop that resumes without loading the batches it skips.

mmengine's ``IterBasedTrainLoop`` resumes at iteration N by drawing N batches from the
data loader and throwing them away, so that training goes on with the batch it would
have had. Every one of them is read from disk and augmented: resuming the CPU demo's
SPADE at iteration 1600 spent 8 minutes on it, and a paper-scale run resumed at 50,000
iterations would read 200,000 images at 512 px before its first update.

``FastResumeIterBasedTrainLoop`` draws the same N batches of *indices* from the batch
sampler instead (a few milliseconds), then loads from there: training continues with the
same images in the same order as mmengine's loop would give. It does so where the
sampler is mmengine's ``InfiniteSampler`` (every iteration-based config of this project);
with any other sampler it falls back to mmengine's behaviour.
"""
from __future__ import annotations

from mmengine.dataset import InfiniteSampler
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import DataLoader


class SkippedBatchSampler:
    """A batch sampler that leaves out the first ``skip`` batches of ``batch_sampler``
    (once: a second pass over it starts at its beginning)."""

    def __init__(self, batch_sampler, skip: int):
        self.batch_sampler = batch_sampler
        self.sampler = batch_sampler.sampler  # what DistSamplerSeedHook looks for
        self.skip = skip

    def __iter__(self):
        it = iter(self.batch_sampler)
        for _ in range(self.skip):
            next(it)
        self.skip = 0
        yield from it

    def __len__(self):
        return len(self.batch_sampler)


class _Skipped:
    """Stands in for the first ``n`` batches that the parent loop pulls to skip them."""

    def __init__(self, iterator, n: int):
        self.iterator, self.n = iterator, n

    def __iter__(self):
        return self

    def __next__(self):
        if self.n > 0:
            self.n -= 1
            return None
        return next(self.iterator)


def fast_forward_loader(loader: DataLoader, skip: int):
    """A copy of ``loader`` whose batches start after its first ``skip`` ones, or None
    when its sampler is not an ``InfiniteSampler`` (no cheap equivalent then)."""
    batch_sampler = getattr(loader, 'batch_sampler', None)
    if batch_sampler is None or not isinstance(getattr(batch_sampler, 'sampler', None),
                                               InfiniteSampler):
        return None
    # The sampler draws from one seeded generator that every pass over it shares; a loader
    # iterator may already have drawn from it (workers prefetch). Restart it from its seed:
    # a fresh run's order, as mmengine's loop replays it.
    batch_sampler.sampler.indices = batch_sampler.sampler._indices_of_rank()
    workers = loader.num_workers
    return DataLoader(
        loader.dataset, batch_sampler=SkippedBatchSampler(batch_sampler, skip),
        num_workers=workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
        timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if workers > 0 else None,
        persistent_workers=loader.persistent_workers if workers > 0 else False)


@LOOPS.register_module()
class FastResumeIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` that skips the batches of a resumed run by their indices.

    Same arguments as mmengine's loop; use it as ``train_cfg = dict(type=
    'FastResumeIterBasedTrainLoop', max_iters=...)``.
    """

    def run(self):
        loader = fast_forward_loader(self.dataloader, self._iter) if self._iter > 0 else None
        if loader is not None:
            old = self.dataloader_iterator._iterator
            if hasattr(old, '_shutdown_workers'):  # it must not draw from the sampler again
                old._shutdown_workers()
            self.dataloader = loader
            self.dataloader_iterator = _Skipped(_InfiniteDataloaderIterator(loader),
                                                self._iter)
            print_log(f'Resuming at iteration {self._iter}: the {self._iter} batches '
                      'already trained on are skipped by their indices, not loaded '
                      "(mmengine's 'Advance dataloader' warning next is about them)",
                      logger='current')
        return super().run()
