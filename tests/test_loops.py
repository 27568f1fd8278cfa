"""FastResumeIterBasedTrainLoop: a resumed run skips the trained batches by their indices,
continuing with the batch mmengine's loop would give, without loading the skipped ones."""
import pytest
from mmengine.dataset import DefaultSampler, InfiniteSampler
from torch.utils.data import DataLoader, Dataset

from fundus_plugins.engine.loops import SkippedBatchSampler, fast_forward_loader


class Counting(Dataset):
    def __init__(self, n):
        self.n, self.loads = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.loads += 1
        return i


def _loader(ds, sampler_type=InfiniteSampler, workers=0):
    sampler = sampler_type(ds, shuffle=True, seed=3)
    return DataLoader(ds, batch_size=4, sampler=sampler, num_workers=workers,
                      collate_fn=lambda batch: list(batch))


def _reference(n_batches, n=10):
    it = iter(_loader(Counting(n)))
    return [next(it) for _ in range(n_batches)]


@pytest.mark.parametrize('workers', [0, 2])
def test_fast_forward_gives_the_batches_after_the_skipped_ones(workers):
    ref = _reference(9)                       # 36 indices: over three passes of 10 images
    ds = Counting(10)
    loader = _loader(ds, workers=workers)
    first = iter(loader)
    next(first)                               # a pass already drew from the sampler
    if workers:
        first._shutdown_workers()
    loads = ds.loads
    fast = fast_forward_loader(loader, 6)
    assert isinstance(fast.batch_sampler, SkippedBatchSampler)
    assert fast.batch_sampler.sampler is loader.batch_sampler.sampler
    it = iter(fast)
    assert [next(it), next(it), next(it)] == ref[6:9]
    if not workers:                           # workers load in their own copies
        assert ds.loads - loads == 12         # the three batches returned, nothing skipped


def test_other_samplers_fall_back_to_mmengine():
    assert fast_forward_loader(_loader(Counting(10), DefaultSampler), 3) is None


def test_skipped_batch_sampler_skips_once():
    class Batches:
        sampler = None

        def __iter__(self):
            return iter([[0], [1], [2]])

        def __len__(self):
            return 3

    s = SkippedBatchSampler(Batches(), 2)
    assert list(s) == [[2]] and list(s) == [[0], [1], [2]] and len(s) == 3


def test_a_resumed_gan_run_takes_the_fast_path(tmp_path, phantom_root):
    from fundus_plugins.config import build_runner, load_config
    from test_acgan_train import REPO, demo_options
    cfg = load_config(str(REPO / 'configs/acgan_labels_demo.py'),
                      demo_options(phantom_root, tmp_path, iters=2))
    build_runner(cfg).train()
    cfg.merge_from_dict({'train_cfg.max_iters': 3})
    cfg.resume = True
    runner = build_runner(cfg)
    from fundus_plugins.checkpoint import mmengine_checkpoint_globals
    with mmengine_checkpoint_globals():  # as tools/train.py resumes
        runner.train()
    assert runner.iter == 3
    assert isinstance(runner.train_loop.dataloader.batch_sampler, SkippedBatchSampler)
    assert int(runner.model.num_d_updates) == 3
