#!/usr/bin/env python
"""Train any of the project's configs (label ACGAN, SPADE, segmentation) with mmengine.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--cfg-options key=value ...] [--launcher pytorch]

The config's ``default_scope`` (mmagic or mmseg) decides which library's registries
build it. ``--resume`` with no argument resumes from the latest checkpoint in the work
dir. For several GPUs (or CPU processes) use ``tools/dist_train.sh CONFIG N``.
"""
import argparse
import os
import sys

from _tool import add_debug_argument, CfgOptions, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a fundus_plugins config')
    p.add_argument('config', help='config file path')
    p.add_argument('--work-dir', help='where to save logs and checkpoints '
                                      '(default: work_dirs/<config name>)')
    p.add_argument('--resume', nargs='?', type=str, const='auto',
                   help='resume from this checkpoint, or (no value) from the latest one '
                        'in the work dir')
    p.add_argument('--amp', action='store_true', help='automatic mixed precision')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptions,
                   help='override config keys, e.g. train_cfg.max_iters=100')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_debug_argument(p)
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_cfg(args):
    """The config as this run uses it (``tools/print_config.py`` prints the same)."""
    from fundus_plugins.config import load_config

    return load_config(args.config, args.cfg_options, work_dir=args.work_dir,
                       launcher=args.launcher, amp=args.amp, resume=args.resume)


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    from fundus_plugins.checkpoint import mmengine_checkpoint_globals
    from fundus_plugins.config import build_runner
    from fundus_plugins.locks import run_lock

    # One work dir, one run: a second training on it is refused, naming this one.
    with run_lock(cfg.work_dir, 'tools/train.py', cfg.get('launcher')):
        runner = build_runner(cfg)
        # Resuming (or load_from) unpickles only the types an mmengine checkpoint holds.
        with mmengine_checkpoint_globals(cfg.get('load_from') or cfg.work_dir):
            runner.train()
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'train', resume_flag='--resume'))
