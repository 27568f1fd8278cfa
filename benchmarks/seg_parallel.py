#!/usr/bin/env python
"""Segmentation runs on a CPU: one process with all threads, or parallel processes of one
thread each? (the ablation's ``parallel`` / ``threads``)

    python benchmarks/seg_parallel.py [--runs 2] [--epochs 2] [--size 128] [--num 60]

Draws a phantom, then trains ``--runs`` real-only runs of configs/seg/unet_fundus_demo.py
(seeds 0, 1, ...) twice through the ablation: one after another with every CPU thread,
and ``--runs`` at once, one thread each. Prints a table of wall times and runs per
minute, and whether each seed's metrics came out the same both ways.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--runs', type=int, default=2)
    p.add_argument('--epochs', type=int, default=6)
    p.add_argument('--size', type=int, default=128)
    p.add_argument('--num', type=int, default=120, help='phantom images (80 % train)')
    p.add_argument('--batch-size', type=int, default=2)
    p.add_argument('--lr', type=float, default=2e-2,
                   help='constant learning rate (the demo pipeline\'s schedule)')
    p.add_argument('--keep', help='keep the runs in this folder')
    args = p.parse_args(argv)

    from fundus_plugins.phantom import write_phantom_dataset
    from fundus_plugins.segmentation.ablation import run_ablation

    tmp = Path(args.keep or tempfile.mkdtemp())
    data = tmp / 'phantom'
    if not data.exists():
        write_phantom_dataset(data, num=args.num, size=args.size, seed=0, progress=False)
    opts = {'data_root': str(data), 'synthetic_root': str(data), 'image_size': args.size,
            'train_dataloader.batch_size': args.batch_size,
            'optim_wrapper.optimizer.lr': args.lr, 'param_scheduler': []}
    cores = os.cpu_count() or 1
    rows = []
    for name, parallel, threads in (('one process, all threads', 1, cores),
                                    (f'{args.runs} processes, 1 thread each', args.runs, 1)):
        work = tmp / f'parallel{parallel}'
        shutil.rmtree(work, ignore_errors=True)
        t0 = time.perf_counter()
        res = run_ablation(str(REPO / 'configs/seg/unet_fundus_demo.py'), str(work), [0.0],
                           list(range(args.runs)), opts, log=lambda m: None,
                           max_epochs=args.epochs, parallel=parallel, threads=threads)
        wall = time.perf_counter() - t0
        rows.append((name, threads, wall, res))
    print(f'{args.runs} real-only runs of unet_fundus_demo.py, {args.epochs} epochs at '
          f'{args.size} px, batch {args.batch_size}, {cores} CPU(s)\n')
    print('| how | threads per run | wall time | runs per minute |')
    print('|---|---|---|---|')
    for name, threads, wall, _ in rows:
        print(f'| {name} | {threads} | {wall:.1f} s | {60 * args.runs / wall:.2f} |')
    key = 'pixel_lesion_mean_f1'
    same = [a[key] == b[key] for a, b in zip(rows[0][3], rows[1][3])]
    print(f'\nper-seed {key}: ' + '; '.join(
        f'seed {i}: {a[key]:.2f} / {b[key]:.2f}' for i, (a, b) in
        enumerate(zip(rows[0][3], rows[1][3]))) + f' (same: {all(same)})')
    if not args.keep:
        shutil.rmtree(tmp)
    return 0


if __name__ == '__main__':
    sys.exit(main())
