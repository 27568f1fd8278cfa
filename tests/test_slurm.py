"""tools/slurm_train.sh and slurm_test.sh against a stand-in srun that records its
command line."""
import os
import subprocess

import pytest

from conftest import REPO, child_options

FAKE_SRUN = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$SRUN_LOG"
echo "PYTHONPATH=$PYTHONPATH" >> "$SRUN_LOG"
"""


@pytest.fixture
def srun(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(FAKE_SRUN)
    (bin_dir / 'srun').chmod(0o755)
    log = tmp_path / 'srun.log'
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}', SRUN_LOG=str(log),
               PYTHON='python3')

    def run(script, *args, **extra):
        if log.exists():
            log.unlink()
        out = subprocess.run(['bash', str(REPO / 'tools' / script), *args],
                             env=dict(env, **extra), capture_output=True, text=True,
                             timeout=60, **child_options())
        return out, (log.read_text().splitlines() if log.exists() else None)
    return run


def test_slurm_train_passes_the_usual_variables_to_srun(srun):
    out, argv = srun('slurm_train.sh', 'gpu', 'unet', 'configs/seg/unet_fundus_real.py',
                     'work_dirs/u', '--amp', GPUS='16', GPUS_PER_NODE='8',
                     CPUS_PER_TASK='6', SRUN_ARGS='--quotatype=auto --time=1:00:00')
    assert out.returncode == 0, out.stderr
    assert argv[:8] == ['-p', 'gpu', '--job-name=unet', '--gres=gpu:8', '--ntasks=16',
                        '--ntasks-per-node=8', '--cpus-per-task=6', '--kill-on-bad-exit=1']
    assert argv[8:10] == ['--quotatype=auto', '--time=1:00:00']
    assert argv[10:13] == ['python3', '-u', str(REPO / 'tools' / 'train.py')]
    assert argv[13:-1] == ['configs/seg/unet_fundus_real.py', '--work-dir', 'work_dirs/u',
                           '--amp', '--launcher', 'slurm']
    assert argv[-1].split(':')[0] == f'PYTHONPATH={REPO}'  # the repo is importable


def test_slurm_train_without_work_dir_and_defaults(srun):
    out, argv = srun('slurm_train.sh', 'p', 'j', 'c.py', '--cfg-options', 'a=1', GPUS='4')
    assert out.returncode == 0, out.stderr
    assert '--gres=gpu:4' in argv and '--ntasks=4' in argv and '--cpus-per-task=5' in argv
    assert '--work-dir' not in argv
    i = argv.index('c.py')
    assert argv[i:i + 5] == ['c.py', '--cfg-options', 'a=1', '--launcher', 'slurm']


def test_slurm_test_and_usage_errors(srun):
    out, argv = srun('slurm_test.sh', 'p', 'j', 'c.py', 'ckpt.pth', '--out', 'm.json')
    assert out.returncode == 0, out.stderr
    i = argv.index(str(REPO / 'tools' / 'test.py'))
    assert argv[i + 1:i + 7] == ['c.py', 'ckpt.pth', '--out', 'm.json', '--launcher', 'slurm']
    out, argv = srun('slurm_test.sh', 'p', 'j', 'c.py')
    assert out.returncode == 2 and 'usage' in out.stderr and argv is None
