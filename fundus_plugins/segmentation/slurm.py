"""The ablation's runs as one Slurm job array (``run_ablation(launcher='slurm')``,
``tools/synthetic_ablation.py --launcher slurm``).

Each run that is not finished gets its ``run.json`` (as for ``parallel``), and one array
task: task i runs ``python -m fundus_plugins.segmentation.worker RUN_i/run.json`` with its
console in ``RUN_i/worker.log``. The array is submitted with ``sbatch --wait``, so the
ablation waits for every task and then gathers the runs' ``metrics.json``; a run without
one is named with its log, and the others are kept. The script lies in
``WORK/slurm/array.sh`` (Slurm's own output of task i: ``WORK/slurm/JOBID_i.out``).

Settings, in the conventions of ``tools/slurm_*.sh`` (keys of ``slurm=``, or the
environment): ``partition`` (required), ``gpus_per_task`` (1; 0 runs on CPUs only, with
``cpus_per_task`` torch threads), ``cpus_per_task`` (``CPUS_PER_TASK``, 5),
``max_running`` (tasks at once, Slurm's ``%N``; default: no limit), ``job_name``
(``fundus_ablation``), ``sbatch_args`` (``SBATCH_ARGS``: more sbatch options, split on
spaces, e.g. ``--qos=high --time=4:00:00``), ``sbatch`` (the command, ``sbatch``).
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..errors import UserKeyError, UserValueError

#: The keys of ``slurm=`` and their defaults (None: required, or read from the
#: environment).
SLURM_KEYS = dict(partition=None, gpus_per_task=1, cpus_per_task=None, max_running=None,
                  job_name='fundus_ablation', sbatch_args=None, sbatch='sbatch')


def slurm_settings(slurm: Optional[dict]) -> dict:
    """``slurm`` completed with the defaults and the environment; an unknown key or a
    missing partition is an error naming it."""
    slurm = dict(slurm or {})
    unknown = sorted(set(slurm) - set(SLURM_KEYS))
    if unknown:
        raise UserKeyError(f'slurm: unknown key(s) {unknown}; expected some of '
                           f'{sorted(SLURM_KEYS)}')
    out = dict(SLURM_KEYS, **{k: v for k, v in slurm.items() if v is not None})
    if out['cpus_per_task'] is None:
        out['cpus_per_task'] = int(os.environ.get('CPUS_PER_TASK', 5))
    if out['sbatch_args'] is None:
        out['sbatch_args'] = os.environ.get('SBATCH_ARGS', '')
    if not out['partition']:
        raise UserKeyError('slurm.partition: the Slurm partition to submit the array to '
                           "(e.g. --partition gpu, or segmentation.slurm=dict(partition="
                           "'gpu') in a pipeline config)")
    for key in ('gpus_per_task', 'cpus_per_task'):
        if int(out[key]) < (0 if key == 'gpus_per_task' else 1):
            raise UserValueError(f'slurm.{key} must be a whole number >= '
                                 f'{0 if key == "gpus_per_task" else 1}, got {out[key]}')
    return out


def array_script(run_dirs: Sequence[Path], settings: dict, log_dir: Path,
                 python: str = sys.executable, cwd: Optional[Path] = None) -> str:
    """The sbatch script of the array: one task per run folder, in order."""
    s = settings
    limit = f'%{int(s["max_running"])}' if s.get('max_running') else ''
    lines = ['#!/usr/bin/env bash',
             f'#SBATCH --job-name={s["job_name"]}',
             f'#SBATCH --partition={s["partition"]}',
             f'#SBATCH --array=0-{len(run_dirs) - 1}{limit}',
             '#SBATCH --ntasks=1',
             f'#SBATCH --cpus-per-task={int(s["cpus_per_task"])}']
    if int(s['gpus_per_task']) > 0:
        lines.append(f'#SBATCH --gres=gpu:{int(s["gpus_per_task"])}')
    lines += [f'#SBATCH --output={log_dir}/%A_%a.out',
              '# One run of the synthetic-data ablation per task '
              '(fundus_plugins/segmentation/slurm.py).',
              'set -euo pipefail',
              f'cd {shlex.quote(str(cwd or Path.cwd()))}',
              'export NO_ALBUMENTATIONS_UPDATE=${NO_ALBUMENTATIONS_UPDATE:-1}',
              'export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} '
              'TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}']
    if int(s['gpus_per_task']) == 0:
        lines.append(f'export CUDA_VISIBLE_DEVICES= FUNDUS_THREADS={int(s["cpus_per_task"])}')
    lines.append('RUNS=(' + ' '.join(shlex.quote(str(d)) for d in run_dirs) + ')')
    lines += ['RUN=${RUNS[$SLURM_ARRAY_TASK_ID]}',
              f'exec {shlex.quote(python)} -m fundus_plugins.segmentation.worker '
              '"$RUN/run.json" >> "$RUN/worker.log" 2>&1', '']
    return '\n'.join(lines)


def submit_array(run_dirs: Sequence[Path], work: Path, settings: dict, log=print) -> int:
    """Write ``WORK/slurm/array.sh`` for ``run_dirs`` and submit it with
    ``sbatch --parsable --wait``; returns sbatch's exit code (the highest of the tasks'
    under ``--wait``) once every task has ended."""
    log_dir = (work / 'slurm').resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    script = log_dir / 'array.sh'
    script.write_text(array_script([Path(d).resolve() for d in run_dirs], settings, log_dir))
    cmd = [settings['sbatch'], '--parsable', '--wait'] + \
        shlex.split(settings['sbatch_args']) + [str(script)]
    log(f'{len(run_dirs)} runs as one Slurm job array on partition '
        f'{settings["partition"]} ({settings["gpus_per_task"]} GPU(s), '
        f'{settings["cpus_per_task"]} CPU(s) per task): {" ".join(map(shlex.quote, cmd))}; '
        "each run's console is in its folder's worker.log")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
    except FileNotFoundError:
        raise UserValueError(f'slurm.sbatch: {settings["sbatch"]!r} was not found; is this '
                             'a Slurm login node?') from None
    first = proc.stdout.readline().strip()  # --parsable: the job id, at submission
    job = first.split(';')[0]
    if job:
        log(f'Slurm job {job} submitted; waiting for its {len(run_dirs)} task(s)')
    out, err = proc.communicate()
    if not job:
        raise UserValueError(f'sbatch did not submit the array (exit {proc.returncode}): '
                             f'{err.strip()[-1000:] or out.strip()[-1000:]}; script: {script}')
    if err.strip():
        log(f'sbatch: {err.strip()[-500:]}')
    log(f'Slurm job {job} ended (sbatch exit {proc.returncode})')
    return proc.returncode
