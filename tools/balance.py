#!/usr/bin/env python
"""Balance a real dataset's DR grades with synthetic pairs.

    python tools/balance.py --real data/idrid_fgadr \\
        --label-config configs/acgan_labels.py --label-checkpoint LABEL.pth \\
        --spade-config configs/spade_fundus.py --spade-checkpoint SPADE.pth \\
        --out data/balance_synthetic [--target N] [--split train] [--seed 0] \\
        [--no-progress]

Counts the graded images of each grade in the real split (train by default) and
generates just enough synthetic pairs per grade to bring every grade to the largest
count (or to --target per grade), written as a prepared layout. Train on the real root
plus this one (e.g. two FundusDataset entries in a ConcatDataset) when a model should not
learn the real grade imbalance (e.g. a grade classifier, or lesion segmentation with
few high-grade images). The held-out test split is never touched.
"""
import argparse
import sys
import time

from _tool import add_debug_argument, positive_int, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--real', required=True, help='prepared real root')
    p.add_argument('--label-config', required=True)
    p.add_argument('--label-checkpoint', required=True)
    p.add_argument('--spade-config', required=True)
    p.add_argument('--spade-checkpoint', required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--target', type=int, help='images per grade (default: the largest count)')
    p.add_argument('--split', default='train', choices=['train', 'test', 'all'])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch-size', type=positive_int, default=8)
    p.add_argument('--device', default='cpu')
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--no-progress', action='store_true',
                   help='no progress bars (they are written to stderr)')
    add_debug_argument(p)
    return p.parse_args(argv)


def balance_counts(grade_counts: dict, target=None) -> dict:
    """Synthetic pairs to add per grade (0-4) so that each reaches ``target`` (default:
    the largest count); a grade already above the target gets none."""
    counts = {g: int(grade_counts.get(g, 0)) for g in range(5)}
    if target is None:
        target = max(counts.values())
    if target < 0:
        raise ValueError(f'target must be >= 0, got {target}')
    return {g: max(0, target - n) for g, n in counts.items()}


def main(argv=None):
    args = parse_args(argv)
    from collections import Counter

    from fundus_plugins.apis import init_model, synthesize_pairs
    from fundus_plugins.config import load_config
    from fundus_plugins.datasets.layout import read_meta

    rows = [r for r in read_meta(args.real) if r.grade is not None and
            (args.split == 'all' or r.split == args.split)]
    if not rows:
        raise SystemExit(f'{args.real}: no graded images in split {args.split!r}')
    real = Counter(r.grade for r in rows)
    need = balance_counts(real, args.target)
    opts = {'data_root': args.real}
    label_model = init_model(load_config(args.label_config, opts), args.label_checkpoint,
                             args.device)
    spade = init_model(load_config(args.spade_config, opts), args.spade_checkpoint,
                       args.device)
    t0 = time.time()
    # The maps take their fields of view from the real images they are added to.
    synthesize_pairs(label_model, spade, need, args.out, args.seed, args.batch_size,
                     overwrite=args.overwrite, name_prefix='bal', fov='real',
                     fov_root=args.real, progress=not args.no_progress)
    print('| grade | real | synthetic added | total |\n|---|---|---|---|')
    for g in range(5):
        print(f'| {g} | {real.get(g, 0)} | {need[g]} | {real.get(g, 0) + need[g]} |')
    print(f'{sum(need.values())} synthetic pairs written to {args.out} in '
          f'{time.time() - t0:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'atomic'))
