#!/usr/bin/env python
"""Test a trained config: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]``.

Runs the config's test loop (its ``test_dataloader`` / ``test_evaluator``) with the
checkpoint's weights and prints the metrics; ``--out`` also writes them as JSON. A
checkpoint of another model than the config builds is refused, saying which.
"""
import argparse
import json
import os
import os.path as osp
import sys

from _tool import add_debug_argument, CfgOptions, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Test a fundus_plugins config')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--work-dir')
    p.add_argument('--out', help='write the metrics to this JSON file')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptions)
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_debug_argument(p)
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    from fundus_plugins.checkpoint import (check_checkpoint_fits, load_checkpoint,
                                           mmengine_checkpoint_globals)
    from fundus_plugins.config import build_runner, load_config

    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'{args.checkpoint}: checkpoint not found')
    cfg = load_config(args.config, args.cfg_options, work_dir=args.work_dir,
                      launcher=args.launcher)
    cfg.load_from = args.checkpoint
    runner = build_runner(cfg)
    # mmengine loads load_from leniently (a warning, then random weights where keys
    # differ): a checkpoint of another model is refused first, naming both models.
    model = getattr(runner.model, 'module', runner.model)
    state = load_checkpoint(args.checkpoint)
    check_checkpoint_fits(model.state_dict(), {
        k[len('module.'):] if k.startswith('module.') else k: v
        for k, v in state.get('state_dict', state).items()}, state, args.checkpoint,
        cfg.model.get('type'), args.config)
    with mmengine_checkpoint_globals(args.checkpoint):
        metrics = runner.test()
    if args.out and runner.rank == 0:
        with open(args.out, 'w') as f:
            json.dump({k: float(v) if hasattr(v, '__float__') else v
                       for k, v in metrics.items()}, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'none'))
