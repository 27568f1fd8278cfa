#!/usr/bin/env python
"""Paint lesions into real healthy fundus images with a trained inpainting translator.

    python tools/inpaint_lesions.py CONFIG CHECKPOINT --healthy ROOT --out DIR
        (--labels DIR | --real-lesions ROOT --num-per-grade N [--grades 1 2 3 4])
        [--seed 0] [--split train|all] [--size N] [--batch-size auto|N]
        [--device cpu|cuda] [--overwrite] [--no-progress] [--cfg-options ...]

CONFIG / CHECKPOINT: a SPADEInpaintGAN (configs/inpaint_fundus.py). --healthy: a prepared
root whose grade-0 images (of its training split unless --split all) take the lesions.
The lesion maps come from --labels, a label-only prepared root with grades (what
tools/sample_labels.py writes from the label ACGAN; every map is placed once), or from
--real-lesions, the real label maps of another prepared root's training split, shuffled
(--num-per-grade maps of each of --grades). Each map is placed on a healthy image (its
disc and field of view kept, mirrored to the disc's side), the placed lesions dilated by
the model's margin are painted, and the rest of the image is copied bit for bit.

The output is a prepared root (images/, labels/, meta.csv, classes.json) with holes/
(255 where painted), inpaint.csv (which healthy image and map each composite came from)
and grid.png (per grade: healthy image, placed map, result, hole edge); the same seed
gives the same files. --size defaults to the config's image_size.
"""
import argparse
import sys
import time

from _tool import add_debug_argument, batch_size_arg, CfgOptions, positive_int, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--healthy', required=True,
                   help='prepared root whose grade-0 images take the lesions')
    p.add_argument('--out', required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--labels', help='label-only prepared root of lesion maps with grades '
                                      '(tools/sample_labels.py)')
    src.add_argument('--real-lesions', metavar='ROOT',
                     help="prepared root whose training split's real label maps are "
                          'shuffled onto the healthy images')
    p.add_argument('--num-per-grade', type=positive_int,
                   help='maps per grade with --real-lesions')
    p.add_argument('--grades', type=int, nargs='+', default=[1, 2, 3, 4],
                   help='grades with --real-lesions (default 1-4)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--split', choices=['train', 'all'], default='train',
                   help='the healthy (and --real-lesions) images to use (default train: '
                        'test images would leak into a training set made from this)')
    p.add_argument('--size', type=positive_int, help="default: the config's image_size")
    p.add_argument('--batch-size', type=batch_size_arg, default='auto',
                   help='images painted at once (auto: 32 on CUDA, 8 on the CPU)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--sample-model', choices=['ema', 'orig'], default='ema')
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--no-progress', action='store_true',
                   help='no progress bars (they are written to stderr)')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptions)
    add_debug_argument(p)
    args = p.parse_args(argv)
    if args.real_lesions and args.num_per_grade is None:
        p.error('--real-lesions needs --num-per-grade')
    if args.labels and args.num_per_grade is not None:
        p.error('--num-per-grade goes with --real-lesions; --labels places every map of '
                'its root once')
    bad = [g for g in args.grades if g not in range(5)]
    if bad:
        p.error(f'--grades: {bad} outside 0-4')
    return args


def real_items(root, classes, grades, num_per_grade, seed, split):
    """``(name, grade, map)``: ``num_per_grade`` real maps of each grade, shuffled between
    the root's images (cycling when the grade has fewer)."""
    from fundus_plugins.inpaint import real_lesion_maps
    for grade in grades:
        maps = real_lesion_maps(root, classes, grade, seed, split)
        for i in range(num_per_grade):
            j = i % len(maps)
            yield f'{maps.sources[j]}_r{i:04d}', grade, maps[j]


def main(argv=None):
    args = parse_args(argv)
    from fundus_plugins.apis import init_model
    from fundus_plugins.config import load_config
    from fundus_plugins.inpaint import inpaint_lesion_maps, label_map_items

    cfg = load_config(args.config, args.cfg_options)
    if cfg.model.get('type') != 'SPADEInpaintGAN':
        raise SystemExit(f'{args.config}: model.type is {cfg.model.get("type")!r}; '
                         f"inpaint_lesions needs an inpainting translator ('SPADEInpaintGAN', "
                         f'configs/inpaint_fundus.py)')
    size = args.size or cfg.get('image_size')
    if not size:
        raise SystemExit(f'{args.config}: no image_size; give --size')
    model = init_model(cfg, args.checkpoint, args.device)
    split = None if args.split == 'all' else args.split
    if args.labels:
        items = label_map_items(args.labels, model.class_set)
    else:
        items = real_items(args.real_lesions, model.class_set, args.grades,
                           args.num_per_grade, args.seed, split)
    t0 = time.time()
    res = inpaint_lesion_maps(model, items, args.healthy, args.out, size, args.seed, split,
                              args.batch_size, args.overwrite, not args.no_progress,
                              args.sample_model)
    dt = time.time() - t0
    n = len(res.rows)
    print(f'{n} inpainted images written to {args.out} in {dt:.1f} s '
          f'({n / max(dt, 1e-9):.1f} img/s) on {res.healthy} healthy images'
          + (f'; {res.empty} placed no lesion (their healthy image is copied unchanged)'
             if res.empty else ''))
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'atomic'))
