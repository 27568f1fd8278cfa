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
import os.path as osp
import sys

from mmengine.config import Config, DictAction


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a fundus_plugins config')
    p.add_argument('config', help='config file path')
    p.add_argument('--work-dir', help='where to save logs and checkpoints '
                                      '(default: work_dirs/<config name>)')
    p.add_argument('--resume', nargs='?', type=str, const='auto',
                   help='resume from this checkpoint, or (no value) from the latest one '
                        'in the work dir')
    p.add_argument('--amp', action='store_true', help='automatic mixed precision')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. train_cfg.max_iters=100')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_cfg(args) -> Config:
    import fundus_plugins  # noqa: F401  (registers the components)
    from fundus_plugins.runtime import check_config_keys

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    check_config_keys(cfg, args.config)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        from fundus_plugins.runtime import enable_amp
        enable_amp(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    from fundus_plugins.checkpoint import mmengine_checkpoint_globals
    from fundus_plugins.runtime import build_runner
    runner = build_runner(cfg)
    # Resuming (or load_from) unpickles only the types an mmengine checkpoint holds.
    with mmengine_checkpoint_globals(cfg.get('load_from') or cfg.work_dir):
        runner.train()
    return 0


if __name__ == '__main__':
    sys.exit(main())
