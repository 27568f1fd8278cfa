#!/usr/bin/env python
"""Run the whole mission: data, grades, label ACGAN, SPADE, segmentation ablation, report.

    python tools/run_pipeline.py configs/pipeline/demo.py [--work-dir DIR]
        [--force STAGE ...] [--cfg-options key=value ...]

Stages: data, grades, labels, images, segmentation, report. Each writes its outputs
under the work dir and is skipped when they are there and its settings (its config
section, the config files it names, everything upstream) have not changed; a changed
stage re-runs with everything after it. --force STAGE re-runs that stage (and what
follows). An interrupted run, started again, goes on from the stage it was in, and
training from its last checkpoint.
"""
import argparse
import sys
import time

from mmengine.config import DictAction


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='pipeline config (configs/pipeline/*.py)')
    p.add_argument('--work-dir', help='default: the config\'s work_dir')
    p.add_argument('--force', nargs='+', default=[], metavar='STAGE',
                   help='re-run these stages (and everything after them)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override pipeline config keys, e.g. labels.max_iters=100')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from fundus_plugins.pipeline import run_pipeline

    t0 = time.time()
    run_pipeline(args.config, args.work_dir, args.force, dict(args.cfg_options))
    print(f'total wall time {time.time() - t0:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
