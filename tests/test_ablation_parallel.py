"""The ablation's runs fanned out over worker processes (run_ablation(parallel=N)): the
same metrics as one after another, a failed run named with its log while the others
finish, and a rerun that trains only what is missing."""
import json

import pytest
import torch

from fundus_plugins.segmentation.ablation import run_ablation

from conftest import REPO, tiny_seg_options, write_config

KEYS = ('paper_f1', 'image_lesion_mean_f1', 'pixel_lesion_mean_f1', 'aAcc', 'num_synthetic')


def _config(tmp_path, phantom_root):
    return str(write_config(REPO / 'configs/seg/unet_fundus_demo.py', tmp_path / 'seg.py',
                            tiny_seg_options(phantom_root)))


def test_two_cpu_processes_give_the_sequential_metrics(phantom_root, synthetic_root,
                                                       tmp_path):
    config = _config(tmp_path, phantom_root)
    opts = {'synthetic_root': str(synthetic_root)}
    said = []
    # One thread each way: a run's arithmetic depends on its thread count, not on where
    # it runs.
    before = torch.get_num_threads()
    seq = run_ablation(config, str(tmp_path / 'seq'), [0, 0.5], [0], opts,
                       log=lambda m: None, threads=1)
    # The sequential runs pinned one thread in this process, and gave the setting back.
    assert torch.get_num_threads() == before
    par = run_ablation(config, str(tmp_path / 'par'), [0, 0.5], [0], opts, log=said.append,
                       parallel=2, threads=1)
    assert [{k: r[k] for k in KEYS} for r in seq] == [{k: r[k] for k in KEYS} for r in par]
    assert any('2 at a time (CPU processes of 1 thread(s) each)' in m for m in said)
    assert sum('finished in' in m for m in said) == 2
    for run in ('p00_s0', 'p50_s0'):
        assert (tmp_path / 'par' / run / 'worker.log').is_file()
        assert (tmp_path / 'par' / run / 'per_image_pixel.npz').is_file()
    assert (tmp_path / 'par' / 'results.csv').is_file()


def test_a_failed_run_is_named_and_the_others_finish(phantom_root, synthetic_root, tmp_path):
    config = _config(tmp_path, phantom_root)
    work = tmp_path / 'abl'
    # 0.75 of 16 real needs 48 synthetic pairs; the synthetic root has 30: that run fails.
    opts = {'synthetic_root': str(synthetic_root)}
    said = []
    with pytest.raises(RuntimeError) as err:
        run_ablation(config, str(work), [0, 0.5, 0.75], [0], opts, log=said.append,
                     parallel=2, threads=1)
    msg = str(err.value)
    assert '1 of 3 segmentation runs failed' in msg and 'fraction 0.75, seed 0' in msg
    assert str(work / 'p75_s0' / 'worker.log') in msg
    assert 'needs 48 synthetic images' in (work / 'p75_s0' / 'worker.log').read_text()
    assert any('FAILED' in m and 'needs 48 synthetic images' in m for m in said)
    for run in ('p00_s0', 'p50_s0'):  # the others finished
        assert json.loads((work / run / 'metrics.json').read_text())['seed'] == 0
    assert not (work / 'p75_s0' / 'metrics.json').exists()
    # Rerun without the failing fraction: nothing is trained again.
    said.clear()
    res = run_ablation(config, str(work), [0, 0.5], [0], opts, log=said.append, parallel=2,
                       threads=1)
    assert [r['fraction'] for r in res] == [0, 0.5]
    assert sum('done before' in m for m in said) == 2 and not any('started' in m
                                                                  for m in said)
