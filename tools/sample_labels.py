#!/usr/bin/env python
"""Sample label maps per DR grade from a trained label ACGAN, in the prepared layout.

    python tools/sample_labels.py CONFIG CHECKPOINT --num-per-grade N --out DIR
        [--scale 2] [--seed 0] [--grades 0 1 2 3 4] [--batch-size 32] [--device cpu]
        [--fov auto|real|fitted|generated] [--fov-root PREPARED_ROOT] [--no-progress]

Writes DIR/labels/<name>.png (uint8 class indices, upsampled x scale: bilinear on the
probabilities, then argmax), DIR/meta.csv (grade_source=synthetic), DIR/classes.json and
DIR/grid.png (one row per grade). The same seed gives the same files.
"""
import argparse
import sys
import time
from pathlib import Path

from _tool import (add_debug_argument, add_fov_arguments, CfgOptions, positive_float,
                   positive_int, run_tool)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--num-per-grade', type=positive_int, required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--grades', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    p.add_argument('--scale', type=positive_float, default=2.0,
                   help='upsampling factor (default 2: the paper samples 256, writes 512)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch-size', type=positive_int, default=32)
    p.add_argument('--device', default='cpu')
    p.add_argument('--sample-model', choices=['ema', 'orig'], default='ema')
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--no-progress', action='store_true',
                   help='no progress bars (they are written to stderr)')
    add_fov_arguments(p)
    p.add_argument('--cfg-options', nargs='+', action=CfgOptions)
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from fundus_plugins.apis import init_model, resolve_fov, write_label_samples
    from fundus_plugins.config import load_config

    if args.num_per_grade < 1:
        raise SystemExit('--num-per-grade must be at least 1')
    cfg = load_config(args.config, args.cfg_options)
    model = init_model(cfg, args.checkpoint, args.device)
    fov, fov_root = resolve_fov(args.fov, args.fov_root, cfg)
    out = Path(args.out)
    t0 = time.time()
    rows = write_label_samples(model, args.grades, args.num_per_grade, out, args.scale,
                               args.seed, args.batch_size, args.sample_model,
                               overwrite=args.overwrite, progress=not args.no_progress,
                               fov=fov, fov_root=fov_root)
    side = int(model.generator.out_size * args.scale)  # F.interpolate floors
    print(f'{len(rows)} label maps ({side} x {side}) written to {out} in '
          f'{time.time() - t0:.1f} s; grid: {out / "grid.png"}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'atomic'))
