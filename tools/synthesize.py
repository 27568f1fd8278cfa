#!/usr/bin/env python
"""From the two checkpoints to N synthetic (image, label) pairs per grade, seeded.

    python tools/synthesize.py --label-config configs/acgan_labels_demo.py \\
        --label-checkpoint work_dirs/acgan_labels_demo/iter_3000.pth \\
        --spade-config configs/spade_fundus_demo.py \\
        --spade-checkpoint work_dirs/spade_fundus_demo/iter_4000.pth \\
        --num-per-grade 50 --out work_dirs/demo/synthetic [--seed 0] [--no-progress] \\
        [--batch-size auto|N] [--writers auto|N]

The label ACGAN samples maps of each grade; they are upsampled to the translator's size
(bilinear on the probabilities, then argmax) and translated. Writes a prepared layout
(images/, labels/, meta.csv with grade_source=synthetic, classes.json) and grid.png
(columns: grades; rows: label map and image). --batch-size auto is 32 on CUDA and 8 on
the CPU; on CUDA the pairs are written in threads while the next batch is translated
(--writers; 0 writes them in the main thread, as on the CPU).
"""
import argparse
import sys
import time
from pathlib import Path

from _tool import (WRITERS_HELP, add_debug_argument, add_fov_arguments, batch_size_arg,
                   positive_int, run_tool, threads_arg)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--label-config', required=True)
    p.add_argument('--label-checkpoint', required=True)
    p.add_argument('--spade-config', required=True)
    p.add_argument('--spade-checkpoint', required=True)
    p.add_argument('--num-per-grade', type=positive_int, required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--grades', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch-size', type=batch_size_arg, default='auto',
                   help='maps translated at once (auto: 32 on CUDA, 8 on the CPU); the '
                        'label maps are sampled 4 batches at a time')
    p.add_argument('--writers', type=threads_arg, default='auto', help=WRITERS_HELP)
    p.add_argument('--device', default='cpu')
    p.add_argument('--amp', action='store_true')
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--no-progress', action='store_true',
                   help='no progress bars (they are written to stderr)')
    add_fov_arguments(p)
    p.add_argument('--data-root', help='override both configs\' data_root (only used to '
                                       'build them)')
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from fundus_plugins.apis import init_model, resolve_fov, synthesize_pairs
    from fundus_plugins.config import load_config

    if args.num_per_grade < 1:
        raise SystemExit('--num-per-grade must be at least 1')
    opts = {'data_root': args.data_root} if args.data_root else None
    label_cfg = load_config(args.label_config, opts)
    label_model = init_model(label_cfg, args.label_checkpoint, args.device)
    spade = init_model(load_config(args.spade_config, opts), args.spade_checkpoint,
                       args.device)
    fov, fov_root = resolve_fov(args.fov, args.fov_root, label_cfg)
    t0 = time.time()
    try:
        rows = synthesize_pairs(label_model, spade, {g: args.num_per_grade for g in args.grades},
                                args.out, args.seed, args.batch_size, args.amp, args.overwrite,
                                fov=fov, fov_root=fov_root, progress=not args.no_progress,
                                writers=args.writers)
    except ValueError as exc:
        raise SystemExit(str(exc))
    print(f'{len(rows)} synthetic pairs written to {args.out} in {time.time() - t0:.1f} s; '
          f'grid: {Path(args.out) / "grid.png"}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'atomic'))
