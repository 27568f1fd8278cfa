#!/usr/bin/env python
"""From the two checkpoints to N synthetic (image, label) pairs per grade, seeded.

    python tools/synthesize.py --label-config configs/acgan_labels_demo.py \\
        --label-checkpoint work_dirs/acgan_labels_demo/iter_3000.pth \\
        --spade-config configs/spade_fundus_demo.py \\
        --spade-checkpoint work_dirs/spade_fundus_demo/iter_2000.pth \\
        --num-per-grade 50 --out work_dirs/demo/synthetic [--seed 0]

The label ACGAN samples maps of each grade; they are upsampled to the translator's size
(bilinear on the probabilities, then argmax) and translated. Writes a prepared layout
(images/, labels/, meta.csv with grade_source=synthetic, classes.json) and grid.png
(columns: grades; rows: label map and image).
"""
import argparse
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--label-config', required=True)
    p.add_argument('--label-checkpoint', required=True)
    p.add_argument('--spade-config', required=True)
    p.add_argument('--spade-checkpoint', required=True)
    p.add_argument('--num-per-grade', type=int, required=True)
    p.add_argument('--out', required=True)
    p.add_argument('--grades', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--device', default='cpu')
    p.add_argument('--amp', action='store_true')
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--data-root', help='override both configs\' data_root (only used to '
                                       'build them)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tqdm import tqdm

    from fundus_plugins.apis import (init_model, load_config, sample_label_maps,
                                     translate_label_maps)
    from fundus_plugins.datasets.layout import MetaRow, write_meta
    from fundus_plugins.datasets.prepare import init_layout, write_pair
    from fundus_plugins.visualization import save_rgb, tile_grid

    if args.num_per_grade < 1:
        raise SystemExit('--num-per-grade must be at least 1')
    opts = {'data_root': args.data_root} if args.data_root else None
    label_model = init_model(load_config(args.label_config, opts), args.label_checkpoint,
                             args.device)
    spade = init_model(load_config(args.spade_config, opts), args.spade_checkpoint,
                       args.device)
    if label_model.class_set != spade.class_set:
        raise SystemExit(f'the label model writes {list(label_model.class_set.codes)} but the '
                         f'translator reads {list(spade.class_set.codes)}')
    scale = spade.generator.out_size / label_model.generator.out_size
    out = init_layout(args.out, spade.class_set, overwrite=args.overwrite)
    t0 = time.time()
    sampled = list(sample_label_maps(label_model, args.grades, args.num_per_grade, scale,
                                     args.seed, args.batch_size * 4, progress=False))
    rows, grid = [], {}
    results = translate_label_maps(spade, (m for _, _, m in sampled), args.batch_size,
                                   args.amp)
    for (grade, i, _), (label, image) in tqdm(zip(sampled, results), total=len(sampled),
                                              desc='synthesize', unit='pair'):
        name = f'syn_g{grade}_{i:05d}'
        write_pair(out, name, image, label)
        rows.append(MetaRow(name, grade, 'synthetic', 'synthetic', 'train'))
        if grade not in grid:
            grid[grade] = (spade.class_set.colorize(label), image)
    write_meta(out, rows)
    cols = sorted(grid)
    save_rgb(Path(out) / 'grid.png', tile_grid(
        [[grid[g][0] for g in cols], [grid[g][1] for g in cols]],
        col_titles=[f'grade {g}' for g in cols], row_titles=['label', 'image'],
        classes=spade.class_set))
    print(f'{len(rows)} synthetic pairs written to {out} in {time.time() - t0:.1f} s; '
          f'grid: {Path(out) / "grid.png"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
