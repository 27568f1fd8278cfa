#!/usr/bin/env python
"""Translate a folder of label maps into fundus images with a trained SPADE model.

    python tools/translate.py CONFIG CHECKPOINT --labels DIR --out DIR
        [--batch-size auto|N] [--workers auto|N] [--writers auto|N]
        [--device cpu|cuda | --devices cuda:0,cuda:1,...] [--amp] [--no-progress]

DIR (in) is a prepared layout with labels/ and meta.csv (tools/sample_labels.py writes
one); its classes are remapped to the model's. The output is a complete prepared layout:
images/, labels/ (at the image size), meta.csv (grade_source=synthetic) and classes.json.
--batch-size auto is 32 on CUDA and 8 on the CPU; on CUDA, label maps are read and pairs
written in threads beside the translation (--workers, --writers; 0 reads or writes in the
main thread, as on the CPU). --devices spreads the maps over several devices, one
process each with an even share of whole batches. The files are the same whatever the
threads and devices.
"""
import argparse
import sys
import time

from _tool import (WRITERS_HELP, add_debug_argument, batch_size_arg, CfgOptions, run_tool,
                   threads_arg)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--labels', required=True, help='prepared layout of label maps')
    p.add_argument('--out', required=True)
    p.add_argument('--batch-size', type=batch_size_arg, default='auto',
                   help='maps translated at once (auto: 32 on CUDA, 8 on the CPU)')
    p.add_argument('--workers', type=threads_arg, default='auto',
                   help='threads that read the label maps ahead of the translation '
                        '(auto: min(4, CPUs) on CUDA, 0 on the CPU: read in the main thread)')
    p.add_argument('--writers', type=threads_arg, default='auto', help=WRITERS_HELP)
    where = p.add_mutually_exclusive_group()
    where.add_argument('--device', default='cpu')
    where.add_argument('--devices', default=None,
                       help='comma-separated devices to spread the maps over, one process '
                            'each (e.g. cuda:0,cuda:1,cuda:2,cuda:3)')
    p.add_argument('--amp', action='store_true', help='autocast on CUDA')
    p.add_argument('--sample-model', choices=['ema', 'orig'], default='ema')
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--no-progress', action='store_true',
                   help='no progress bars (they are written to stderr)')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptions)
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from fundus_plugins.apis import init_model, translate_layout, translate_layout_spread
    from fundus_plugins.config import load_config

    cfg = load_config(args.config, args.cfg_options)
    common = (args.labels, args.out, args.batch_size, args.amp, args.sample_model,
              args.overwrite)
    kw = dict(progress=not args.no_progress, workers=args.workers, writers=args.writers)
    if args.devices:  # the time includes each process's start and model loading
        t0 = time.time()
        rows = translate_layout_spread(cfg, args.checkpoint, args.devices, *common, **kw)
    else:
        model = init_model(cfg, args.checkpoint, args.device)
        t0 = time.time()
        rows = translate_layout(model, *common, **kw)
    n = len(rows)
    dt = time.time() - t0
    print(f'{n} images written to {args.out} in {dt:.1f} s ({n / max(dt, 1e-9):.1f} img/s)')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'atomic'))
