#!/usr/bin/env python
"""Prepare IDRiD / FGADR / DDR (one or several at once) in the prepared layout.

    python tools/prepare_data.py --idrid /data/IDRiD --fgadr /data/FGADR \\
        --fgadr-exclude configs/fgadr_exclude.txt --size 512 --out data/idrid_fgadr

Each image is cropped to its field of view, padded to a square and resized (labels by
nearest neighbour); the split is seeded and stratified by (dataset, grade), 20 % test.

With OD among the classes, images whose source has no optic-disc masks (FGADR, DDR) get a
disc: an ellipse from --od-file where it lists the image (CSV: image,cx,cy,rx,ry,angle in
the original image's pixels), else one predicted by a small disc model trained on the
training images that have disc masks (IDRiD), scored on their held-out test split; the
summary says how many of each and the model's Dice. meta.csv records per image which
classes its source annotates and where its disc comes from (od_source).
"""
import argparse
import json
import sys
import time

from _tool import add_debug_argument, positive_int, run_tool

#: fundus_plugins.classes.DEFAULT_CLASSES, written out so that --help imports nothing of
#: the stack (tests/test_cli.py checks it)
DEFAULT_CLASSES = ('OD', 'MA', 'HE', 'EX', 'SE')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--idrid', help='IDRiD root (holds "A. Segmentation")')
    p.add_argument('--fgadr', help='FGADR root (holds "Seg-set") or the Seg-set folder')
    p.add_argument('--fgadr-exclude', help='text file of FGADR image names to drop')
    p.add_argument('--ddr', help='DDR root (holds "lesion_segmentation")')
    p.add_argument('--od-file', help='CSV of drawn optic-disc ellipses for images without '
                                     'disc masks (image,cx,cy,rx,ry,angle)')
    p.add_argument('--od-model', help='a disc model saved by an earlier run (od_model.pt) to '
                                      'use instead of training one')
    p.add_argument('--od-iters', type=int, help='training iterations of the disc model')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--size', type=positive_int, default=512)
    p.add_argument('--classes', nargs='+', default=list(DEFAULT_CLASSES),
                   help=f'classes in label order (default: {" ".join(DEFAULT_CLASSES)})')
    p.add_argument('--register-class', action='append', default=[], metavar='JSON',
                   help='register a class first, e.g. \'{"code": "VES", "name": "vessel", '
                        '"color": [255, 255, 255], "priority": 8, '
                        '"sources": {"fgadr": "Vessel_Masks"}}\' (repeatable)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--test-fraction', type=float, default=0.2)
    p.add_argument('--workers', type=int, default=1)
    p.add_argument('--overwrite', action='store_true')
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from fundus_plugins.classes import ClassSet, register_lesion_class
    from fundus_plugins.datasets.prepare import format_summary, prepare_dataset
    from fundus_plugins.datasets.sources import read_ddr, read_fgadr, read_idrid
    from fundus_plugins.visualization import preview_dataset

    for text in args.register_class:
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as e:
            raise SystemExit(f'--register-class: not JSON ({e}): {text}')
        register_lesion_class(**spec)
    classes = ClassSet(args.classes)
    records = []
    if args.idrid:
        records += read_idrid(args.idrid, classes)
    if args.fgadr:
        records += read_fgadr(args.fgadr, classes, exclude=args.fgadr_exclude)
    if args.ddr:
        records += read_ddr(args.ddr, classes)
    if not records:
        raise SystemExit('give at least one of --idrid, --fgadr, --ddr')
    t0 = time.time()
    od_model = {}
    if args.od_model:
        od_model['path'] = args.od_model
    if args.od_iters is not None:
        od_model['iters'] = args.od_iters
    summary = prepare_dataset(records, args.out, classes, size=args.size, seed=args.seed,
                              test_fraction=args.test_fraction, workers=args.workers,
                              overwrite=args.overwrite, od_file=args.od_file,
                              od_model=od_model)
    print(format_summary(summary))
    print(f'\nprepared {len(records)} images in {time.time() - t0:.1f} s')
    if summary['per_grade'].keys() - {'ungraded'}:
        print(f'preview: {preview_dataset(args.out, f"{args.out}/preview.png")}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'atomic'))
