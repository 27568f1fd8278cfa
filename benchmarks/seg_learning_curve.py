#!/usr/bin/env python
"""The segmenter's learning curve on the phantom: where does real-only training plateau?

    python benchmarks/seg_learning_curve.py [--epochs 30] [--every 3] [--seeds 0 1]
        [--num 220 --test 120 --size 128] [--cfg-options key=value ...] [--out FILE]

Draws a phantom (``--num`` images, ``--test`` of them held out), then trains
configs/seg/unet_fundus_demo.py on the real training split for ``--epochs`` epochs,
scoring the held-out split every ``--every`` epochs (the config's own val loop), once
per seed. Prints a table: per epoch, the updates so far, the wall time, and the lesion
F1 of the three measures (mean over seeds, with each seed's pixel F1), so that a
schedule can be picked where the curve has flattened. ``--cfg-options`` change the
segmentation config (batch size, learning rate, schedule, model width).
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--epochs', type=int, default=30)
    p.add_argument('--every', type=int, default=3)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--num', type=int, default=220)
    p.add_argument('--test', type=int, default=120)
    p.add_argument('--size', type=int, default=128)
    p.add_argument('--data', help='a phantom root to reuse (drawn there if missing)')
    p.add_argument('--threads', type=int, help='torch threads (default: torch\'s)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    p.add_argument('--out', help='also write the table (markdown) here')
    args = p.parse_args(argv)

    import torch

    from mmengine.hooks import Hook

    from fundus_plugins.config import load_config, runner_for, set_train_length
    from fundus_plugins.engine.progress_hook import HeldLog
    from fundus_plugins.phantom import write_phantom_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    data = Path(args.data or tempfile.mkdtemp()) / 'phantom'
    if not (data / 'meta.csv').is_file():
        write_phantom_dataset(data, num=args.num, size=args.size, seed=0,
                              test_fraction=args.test / args.num, progress=False)
    curves = {}
    for seed in args.seeds:
        opts = dict(args.cfg_options, data_root=str(data), image_size=args.size)
        cfg = load_config(str(REPO / 'configs/seg/unet_fundus_demo.py'), opts, log=HeldLog())
        set_train_length(cfg, args.epochs)  # a cosine schedule spans the whole run
        cfg.train_cfg.val_interval = args.every
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=args.epochs)
        cfg.randomness = dict(seed=seed)
        work = Path(tempfile.mkdtemp()) / f'seed{seed}'
        runner = runner_for(cfg, work, log=lambda m: None)
        points = []
        start = time.perf_counter()

        class Tap(Hook):  # each val loop's metrics with the time and updates so far
            def after_val_epoch(self, runner, metrics=None):
                points.append(dict(epoch=runner.epoch, updates=runner.iter,
                                   wall=time.perf_counter() - start, **(metrics or {})))

        runner.register_hook(Tap(), priority='VERY_LOW')
        runner.train()
        curves[seed] = points
    rows = ['| epoch | updates | wall s (mean) | paper F1 | image F1 | pixel F1 | '
            'pixel F1 per seed |', '|---|---|---|---|---|---|---|']
    for k, point in enumerate(curves[args.seeds[0]]):
        at = [curves[s][k] for s in args.seeds]

        def mean(key):
            return sum(a.get(key, float('nan')) for a in at) / len(at)

        rows.append(f"| {point['epoch']} | {point['updates']} | {mean('wall'):.0f} | "
                    f"{mean('paper_f1'):.1f} | {mean('image_lesion_mean_f1'):.1f} | "
                    f"{mean('pixel_lesion_mean_f1'):.1f} | "
                    + ' / '.join(f"{a['pixel_lesion_mean_f1']:.1f}" for a in at) + ' |')
    head = (f'Real-only U-Net (configs/seg/unet_fundus_demo.py) on a {args.size} px phantom: '
            f'{args.num - args.test} training and {args.test} test images; seeds '
            f'{args.seeds}; options {json.dumps(args.cfg_options)}; '
            f'{torch.get_num_threads()} thread(s)\n')
    text = head + '\n' + '\n'.join(rows) + '\n'
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
