"""The ablation as one Slurm job array (run_ablation(launcher='slurm')), with a stand-in
sbatch that runs the array's tasks here: the array's size and per-task command, the
gathering (the same metrics as one process), a failed task named with its log while the
others are kept, a rerun that submits nothing, and the settings' errors."""
import json
import os
import stat
import sys

import pytest

from fundus_plugins.errors import UserKeyError, UserValueError
from fundus_plugins.segmentation.ablation import run_ablation
from fundus_plugins.segmentation.slurm import array_script, slurm_settings

from conftest import REPO, tiny_seg_options, write_config

KEYS = ('paper_f1', 'image_lesion_mean_f1', 'pixel_lesion_mean_f1', 'aAcc', 'num_synthetic')

# A stand-in for sbatch: records its arguments, prints a job id (--parsable), runs every
# task of the script's --array range with SLURM_ARRAY_TASK_ID set, one after another, and
# exits with the highest task exit code (as sbatch --wait does).
FAKE_SBATCH = r'''#!{python}
import json, os, re, subprocess, sys
script = sys.argv[-1]
text = open(script).read()
first, last = map(int, re.search(r'^#SBATCH --array=(\d+)-(\d+)', text, re.M).groups())
with open(os.environ['FAKE_SBATCH_CALLS'], 'a') as f:
    f.write(json.dumps(sys.argv[1:]) + '\n')
print('4242', flush=True)
codes = [subprocess.call(['bash', script], env=dict(os.environ, SLURM_ARRAY_JOB_ID='4242',
                                                     SLURM_ARRAY_TASK_ID=str(i)))
         for i in range(first, last + 1)]
sys.exit(max(codes))
'''


@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch):
    path = tmp_path / 'bin' / 'sbatch'
    path.parent.mkdir()
    path.write_text(FAKE_SBATCH.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / 'sbatch_calls.jsonl'
    monkeypatch.setenv('FAKE_SBATCH_CALLS', str(calls))
    return path, calls


def test_the_array_trains_what_one_process_trains_and_names_a_failed_run(
        phantom_root, synthetic_root, tmp_path, fake_sbatch):
    sbatch, calls = fake_sbatch
    config = str(write_config(REPO / 'configs/seg/unet_fundus_demo.py', tmp_path / 'seg.py',
                              tiny_seg_options(phantom_root)))
    opts = {'synthetic_root': str(synthetic_root)}
    seq = run_ablation(config, str(tmp_path / 'seq'), [0, 0.5], [0], opts,
                       log=lambda m: None, threads=1)
    work = tmp_path / 'array'
    slurm = dict(partition='gpu', gpus_per_task=0, cpus_per_task=1, sbatch=str(sbatch),
                 sbatch_args='--qos=high --time=1:00:00', max_running=2)
    said = []
    # 0.75 of 16 real needs 48 synthetic pairs; the synthetic root has 30: that task fails.
    with pytest.raises(RuntimeError) as err:
        run_ablation(config, str(work), [0, 0.5, 0.75], [0], opts, log=said.append,
                     launcher='slurm', slurm=slurm)
    msg = str(err.value)
    assert '1 of 3 segmentation runs failed' in msg and 'fraction 0.75, seed 0' in msg
    assert str(work / 'p75_s0' / 'worker.log') in msg
    assert any('FAILED' in m and 'needs 48 synthetic images' in m for m in said)
    assert any('Slurm job 4242 submitted' in m for m in said)
    # One submission: the options, then the script; one task per run, in order.
    [call] = [json.loads(line) for line in calls.read_text().splitlines()]
    assert call[:4] == ['--parsable', '--wait', '--qos=high', '--time=1:00:00']
    script = (work / 'slurm' / 'array.sh').read_text()
    assert call[-1] == str((work / 'slurm' / 'array.sh').resolve())
    assert '#SBATCH --array=0-2%2' in script and '#SBATCH --partition=gpu' in script
    assert '#SBATCH --cpus-per-task=1' in script and '--gres' not in script
    assert f'{sys.executable} -m fundus_plugins.segmentation.worker "$RUN/run.json"' in script
    runs = [str((work / r).resolve()) for r in ('p00_s0', 'p50_s0', 'p75_s0')]
    assert 'RUNS=(' + ' '.join(runs) + ')' in script
    # The finished runs were gathered, with the metrics of one process.
    for r in seq:
        done = json.loads((work / f"p{int(r['fraction'] * 100):02d}_s0" /
                           'metrics.json').read_text())
        assert {k: done[k] for k in KEYS} == {k: r[k] for k in KEYS}
    # A rerun without the failing fraction submits nothing and writes the tables.
    said.clear()
    res = run_ablation(config, str(work), [0, 0.5], [0], opts, log=said.append,
                       launcher='slurm', slurm=slurm)
    assert [r['fraction'] for r in res] == [0, 0.5]
    assert len(calls.read_text().splitlines()) == 1
    assert sum('done before' in m for m in said) == 2
    assert (work / 'results.csv').is_file()


def test_the_array_script_asks_for_gpus_and_the_settings_are_checked(tmp_path,
                                                                       monkeypatch):
    monkeypatch.setenv('CPUS_PER_TASK', '7')
    monkeypatch.setenv('SBATCH_ARGS', '--account=lab')
    s = slurm_settings(dict(partition='a100'))
    assert (s['gpus_per_task'], s['cpus_per_task'], s['sbatch_args']) == (1, 7, '--account=lab')
    script = array_script([tmp_path / 'p00_s0', tmp_path / 'p25_s0'], s, tmp_path / 'logs',
                          python='/opt/py', cwd=tmp_path)
    assert '#SBATCH --array=0-1\n' in script and '#SBATCH --gres=gpu:1' in script
    assert f'#SBATCH --output={tmp_path}/logs/%A_%a.out' in script
    assert 'FUNDUS_THREADS' not in script and f'cd {tmp_path}' in script
    with pytest.raises(UserKeyError, match='slurm.partition'):
        slurm_settings({})
    with pytest.raises(UserKeyError, match=r"unknown key\(s\) \['gpu'\]"):
        slurm_settings(dict(partition='a', gpu=2))
    with pytest.raises(UserValueError, match='slurm.cpus_per_task'):
        slurm_settings(dict(partition='a', cpus_per_task=0))
    with pytest.raises(UserValueError, match="launcher: 'sge'"):
        run_ablation('x.py', str(tmp_path / 'w'), [0], [0], launcher='sge')


def test_a_refused_submission_says_what_sbatch_said(tmp_path):
    refuse = tmp_path / 'sbatch'
    refuse.write_text('#!/bin/sh\necho "sbatch: error: invalid partition specified: nope" >&2'
                      '\nexit 1\n')
    refuse.chmod(0o755)
    from fundus_plugins.segmentation.slurm import submit_array
    with pytest.raises(UserValueError, match='invalid partition specified: nope'):
        submit_array([tmp_path / 'p00_s0'], tmp_path, slurm_settings(
            dict(partition='nope', sbatch=str(refuse))), log=lambda m: None)
    assert os.access(tmp_path / 'slurm' / 'array.sh', os.R_OK)
