#!/usr/bin/env python
"""Run the whole mission: data, grades, label ACGAN, SPADE, segmentation ablation, report.

    python tools/run_pipeline.py configs/pipeline/demo.py [--work-dir DIR]
        [--force STAGE ...] [--plan] [--cfg-options key=value ...]

Stages: data, grades, labels, images, gates, segmentation, report. Each writes its outputs
under the work dir and is skipped when they are there and its settings (its config
section, the config files it names, everything upstream) have not changed; a changed
stage re-runs with everything after it. --force STAGE re-runs that stage (and what
follows). An interrupted run, started again, goes on from the stage it was in, and
training from its last checkpoint.

A time plan comes first: a timing probe (a few iterations of each model at its config's
size and batch, on a few dozen phantom images) and, from it, each stage's work and
estimated time on this machine at the configured parallelism. --plan prints it and
stops; the report sets it beside the actual times.

Quality gates (the pipeline config's ``gates`` section) are checked after the labels and
gates stages; with gates.on_fail='stop' a failed gate ends the run there with a message
naming it, exit code 3.

The console shows the stage lines, a progress bar per training run (with one line naming
its log file) and warnings; everything mmengine logs (environment, config, the per-
iteration losses) is in each run's log file, <run work dir>/<timestamp>/<timestamp>.log.
"""
import argparse
import sys
import time

from _tool import add_debug_argument, CfgOptions, quiet_start, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='pipeline config (configs/pipeline/*.py)')
    p.add_argument('--work-dir', help='default: the config\'s work_dir')
    p.add_argument('--force', nargs='+', default=[], metavar='STAGE',
                   help='re-run these stages (and everything after them)')
    p.add_argument('--plan', action='store_true',
                   help='print the time plan (a short timing probe of every model, then '
                        'each stage\'s work and estimated time here) and stop; trains '
                        'nothing in the work dir')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptions, default={},
                   help='override pipeline config keys, e.g. labels.max_iters=100')
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    quiet_start()  # as run_tool does; also when main is called directly
    from fundus_plugins.pipeline import GateFailed, run_pipeline

    t0 = time.time()
    # Flushed at once: the progress bars go to stderr, and a piped stdout would show the
    # stage lines only after them.
    try:
        run_pipeline(args.config, args.work_dir, args.force, dict(args.cfg_options),
                     log=lambda line: print(line, flush=True), plan_only=args.plan)
    except GateFailed as exc:
        print(f'{exc}', file=sys.stderr, flush=True)
        print(f'total wall time {time.time() - t0:.0f} s', flush=True)
        return 3
    print(f'total wall time {time.time() - t0:.0f} s', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'pipeline'))
