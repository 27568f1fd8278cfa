#!/usr/bin/env python
"""Print a config exactly as tools/train.py (and tools/test.py) will run it.

    python tools/print_config.py CONFIG [--cfg-options key=value ...] [--work-dir DIR]
                                        [--amp] [--resume [CKPT]] [--out FILE]

It goes through the same loading as the tools (fundus_plugins.config.load_config):
``--cfg-options`` merged, a changed run setting (``lesion_classes``, ``data_root``,
``image_size`` ...) carried into the components that held its old value (each such field
is listed first), the work dir, mixed precision and resume set as the tools set them.
Nothing else is filled in; without options the result is what mmengine's own
``Config.fromfile`` reads, plus the work dir. ``--out`` also writes it as a config file.
"""
import argparse
import sys

from _tool import add_debug_argument, CfgOptions, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Print a config as the tools run it')
    p.add_argument('config', help='config file path')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptions,
                   help='override config keys, as for tools/train.py')
    p.add_argument('--work-dir', help='as for tools/train.py')
    p.add_argument('--amp', action='store_true', help='as for tools/train.py')
    p.add_argument('--resume', nargs='?', type=str, const='auto', help='as for tools/train.py')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--out', help='also write the config to this file (.py, .json or .yaml)')
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from fundus_plugins.config import load_config

    cfg = load_config(args.config, args.cfg_options, work_dir=args.work_dir,
                      launcher=args.launcher, amp=args.amp, resume=args.resume,
                      log=lambda msg, **kw: print(f'# {msg}'))
    print(cfg.pretty_text)
    if args.out:
        cfg.dump(args.out)
        print(f'# written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'none'))
