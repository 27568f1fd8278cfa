#!/usr/bin/env python
"""Write a procedural fundus phantom in the prepared layout (the embedded default data).

    python tools/make_phantom.py --num 200 --size 256 --out data/phantom --seed 0

Writes images/, labels/, meta.csv (grades balanced unless --grade-dist, 80/20 split),
classes.json, summary.json and preview.png (one column per grade).
"""
import argparse
import sys
import time
from pathlib import Path

from fundus_plugins.datasets.prepare import format_summary, summarize
from fundus_plugins.phantom import PHANTOM_CLASSES, write_phantom_dataset
from fundus_plugins.visualization import preview_dataset


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--num', type=int, required=True, help='number of images')
    p.add_argument('--size', type=int, default=512, help='side in pixels (default 512)')
    p.add_argument('--out', required=True, help='output folder (prepared layout)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--grade-dist', type=float, nargs=5, metavar='W',
                   help='5 weights for grades 0-4 (default: balanced counts)')
    p.add_argument('--classes', nargs='+', default=list(PHANTOM_CLASSES),
                   help=f'label classes to write (default: {" ".join(PHANTOM_CLASSES)}); '
                        f'drawn classes not listed are labelled RET')
    p.add_argument('--test-fraction', type=float, default=0.2)
    p.add_argument('--workers', type=int, default=1)
    p.add_argument('--overwrite', action='store_true', help='replace an existing dataset')
    p.add_argument('--no-preview', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()
    write_phantom_dataset(args.out, args.num, args.size, args.seed, args.grade_dist,
                          args.classes, args.workers, args.test_fraction, args.overwrite)
    dt = time.time() - t0
    summary = summarize(args.out)
    print(format_summary(summary))
    print(f'\n{args.num} phantom images at {args.size} px in {dt:.1f} s '
          f'({args.num / dt:.1f} img/s, {args.workers} worker(s))')
    if not args.no_preview:
        print(f'preview: {preview_dataset(args.out, Path(args.out) / "preview.png")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
