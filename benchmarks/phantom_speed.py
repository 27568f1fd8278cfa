#!/usr/bin/env python
"""Phantom generation speed on one core (target: at least 10 images/s at 512 x 512).

    python benchmarks/phantom_speed.py [--num 50] [--sizes 256 512]

Prints a table: images per second for drawing alone and for drawing plus writing the
prepared layout (PNG image + label), in one process.
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault('OMP_NUM_THREADS', '1')

import cv2  # noqa: E402

cv2.setNumThreads(1)

from fundus_plugins.phantom import draw_phantom, write_phantom_dataset  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--num', type=int, default=50)
    p.add_argument('--sizes', type=int, nargs='+', default=[256, 512])
    args = p.parse_args()
    print(f'| size | images | draw img/s | draw + write img/s | target |')
    print(f'|---|---|---|---|---|')
    for size in args.sizes:
        t0 = time.perf_counter()
        for i in range(args.num):
            draw_phantom(i % 5, size, seed=[0, i])
        draw = args.num / (time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_phantom_dataset(tmp, args.num, size, seed=0, workers=1, progress=False)
            full = args.num / (time.perf_counter() - t0)
        target = '>= 10 img/s' if size == 512 else ''
        print(f'| {size} | {args.num} | {draw:.1f} | {full:.1f} | {target} |')


if __name__ == '__main__':
    main()
