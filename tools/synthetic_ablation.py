#!/usr/bin/env python
"""The synthetic-data ablation: a segmentation config at several synthetic fractions.

    python tools/synthetic_ablation.py configs/seg/unet_fundus_demo.py \\
        [--fractions 0 0.25 0.5 0.75] [--seeds 0 1 2] [--work-dir DIR] [--gpus N] \\
        [--launcher slurm --partition P] [--cfg-options data_root=... synthetic_root=...]

For each fraction p (synthetic / (real + synthetic)) and seed it trains the config on the
real training split plus round(real * p / (1 - p)) synthetic pairs drawn by that seed,
tests it on the real held-out split, and writes DIR/results.csv (every run),
DIR/results.md (the verdicts, each fraction's difference to real only with its 95 %
intervals, then the paper's Table 1(c): fraction, count, precision, recall, F1 as mean
[95 % interval over seeds]; per-image and pixel-level) and DIR/results.png. --gpus N
trains N runs at once, one process per GPU (on a machine without one: N CPU processes of
one thread each); --parallel N does the same with the CPUs shared among the N.
--launcher slurm submits the runs as one Slurm job array (--partition, --gpus-per-task,
--cpus-per-task, --max-running, --sbatch-args), waits for it and gathers the results.
Rerunning skips
finished runs and resumes an interrupted one from its last checkpoint. --equal-updates
trains each fraction for about as many updates as the real-only run.
"""
import argparse
import sys
from pathlib import Path

from _tool import add_debug_argument, CfgOptions, positive_int, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='segmentation config (its synthetic_root is used)')
    p.add_argument('--fractions', nargs='+', type=float, default=[0, 0.25, 0.5, 0.75])
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--work-dir', help='default: work_dirs/ablation_<config name>')
    p.add_argument('--max-epochs', type=int, help='override the config\'s epochs')
    p.add_argument('--equal-updates', action='store_true',
                   help='train fraction p for epochs x (1 - p): about as many updates as '
                        'the real-only run (default: the same epochs, as the paper)')
    p.add_argument('--parallel', type=positive_int, default=1,
                   help='runs trained at once, each in a process of its own: one CUDA '
                        'device each, or CPU threads (default 1: one after another)')
    p.add_argument('--gpus', type=positive_int,
                   help='runs trained at once, one process per GPU; on a machine without '
                        'GPUs, this many CPU processes of one thread each')
    p.add_argument('--threads', type=positive_int,
                   help='torch threads per run on the CPU (default: the CPUs divided '
                        'among the parallel runs; one process: torch\'s own)')
    slurm = p.add_argument_group('Slurm (--launcher slurm: one job array, one task per run)')
    slurm.add_argument('--launcher', choices=['none', 'slurm'], default='none')
    slurm.add_argument('--partition', help='the Slurm partition (required with slurm)')
    slurm.add_argument('--gpus-per-task', type=int, default=1,
                       help='GPUs per run (default 1; 0: CPUs only)')
    slurm.add_argument('--cpus-per-task', type=positive_int,
                       help='CPUs per run (default: $CPUS_PER_TASK, else 5)')
    slurm.add_argument('--max-running', type=positive_int,
                       help='runs at once (default: as many as Slurm gives)')
    slurm.add_argument('--sbatch-args', help='more sbatch options, e.g. "--qos=high '
                       '--time=4:00:00" (default: $SBATCH_ARGS)')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptions, default={},
                   help='override config keys, e.g. synthetic_root=DIR data_root=DIR')
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from fundus_plugins.segmentation.ablation import run_ablation

    bad = [f for f in args.fractions if not 0 <= f < 1]
    if bad:
        raise SystemExit(f'--fractions must be in [0, 1); got {bad}')
    work = args.work_dir or str(Path('work_dirs') / f'ablation_{Path(args.config).stem}')
    parallel, threads = args.parallel, args.threads
    if args.gpus:
        if args.parallel > 1:
            raise SystemExit('--gpus and --parallel: give one of them')
        import torch
        parallel = args.gpus
        if not torch.cuda.is_available() and threads is None:
            threads = 1
    slurm = None
    if args.launcher != 'slurm' and (args.partition or args.sbatch_args or args.max_running):
        raise SystemExit('--partition, --sbatch-args and --max-running go with '
                         '--launcher slurm')
    if args.launcher == 'slurm':
        slurm = dict(partition=args.partition, gpus_per_task=args.gpus_per_task,
                     cpus_per_task=args.cpus_per_task, max_running=args.max_running,
                     sbatch_args=args.sbatch_args)
    run_ablation(args.config, work, args.fractions, args.seeds, dict(args.cfg_options),
                 max_epochs=args.max_epochs, equal_updates=args.equal_updates,
                 parallel=parallel, threads=threads, launcher=args.launcher, slurm=slurm)
    print((Path(work) / 'results.md').read_text())
    print(f'written: {work}/results.csv, results.md, results.png')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'ablation'))
