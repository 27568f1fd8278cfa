#!/usr/bin/env python
"""Write a procedural fundus phantom in the prepared layout (the embedded default data)
or in the published raw layout of IDRiD, FGADR or DDR.

    python tools/make_phantom.py --num 200 --size 256 --out data/phantom --seed 0
    python tools/make_phantom.py --layout fgadr --num 60 --size 512 --out data/raw/FGADR

Prepared (default): writes images/, labels/, meta.csv (grades balanced unless
--grade-dist, 80/20 split), classes.json, summary.json and preview.png (one column per
grade). Raw layouts (idrid, fgadr, ddr): writes the dataset's own folders, file formats
and grade files, which tools/prepare_data.py reads as it reads the real data (--size is
the side of the drawn field of view; the frame is cut or padded as the dataset's), plus
phantom_truth.csv (the grades and discs drawn) outside the published layout.
"""
import argparse
import sys
import time
from pathlib import Path

from _tool import add_debug_argument, positive_int, run_tool

PREPARED = 'prepared'
# fundus_plugins.phantom_raw.RAW_LAYOUTS and fundus_plugins.phantom.PHANTOM_CLASSES,
# written out so that --help imports nothing of the stack (tests/test_cli.py checks them)
RAW_LAYOUTS = ('idrid', 'fgadr', 'ddr')
PHANTOM_CLASSES = ('OD', 'MA', 'HE', 'EX', 'SE', 'IRMA', 'NV')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--num', type=positive_int, required=True, help='number of images')
    p.add_argument('--size', type=positive_int, default=512,
                   help='side in pixels (default 512); for raw layouts, the side of the '
                        'drawn field of view')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--layout', default=PREPARED, choices=(PREPARED,) + RAW_LAYOUTS,
                   help='prepared (default) or the published raw layout of idrid, fgadr '
                        'or ddr')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--grade-dist', type=float, nargs=5, metavar='W',
                   help='5 weights for grades 0-4 (default: balanced counts)')
    p.add_argument('--classes', nargs='+', default=None,
                   help=f'label classes to write (default: {" ".join(PHANTOM_CLASSES)}); '
                        f'drawn classes not listed are labelled RET (prepared layout only)')
    p.add_argument('--test-fraction', type=float, default=None,
                   help='test split fraction (default 0.2; prepared layout only)')
    p.add_argument('--workers', type=int, default=1)
    p.add_argument('--overwrite', action='store_true', help='replace an existing dataset')
    p.add_argument('--no-preview', action='store_true')
    add_debug_argument(p)
    args = p.parse_args(argv)
    if args.layout != PREPARED:
        for flag, value in (('--classes', args.classes), ('--test-fraction', args.test_fraction)):
            if value is not None:
                p.error(f'{flag} applies to --layout {PREPARED} only, not to --layout '
                        f'{args.layout} (a raw layout publishes the masks its dataset has '
                        f'and its own split)')
    return args


def main(argv=None):
    args = parse_args(argv)
    from fundus_plugins.datasets.prepare import format_summary, summarize
    from fundus_plugins.phantom import write_phantom_dataset
    from fundus_plugins.phantom_raw import format_raw_listing, write_raw_phantom
    from fundus_plugins.visualization import preview_dataset

    t0 = time.time()
    if args.layout != PREPARED:
        result = write_raw_phantom(args.out, args.layout, args.num, args.size, args.seed,
                                   args.grade_dist, args.workers, overwrite=args.overwrite)
        dt = time.time() - t0
        print(format_raw_listing(result))
        print(f'\n{args.num} phantom images ({args.size} px field of view) in {dt:.1f} s '
              f'({args.num / dt:.1f} img/s, {args.workers} worker(s))')
        return 0
    write_phantom_dataset(args.out, args.num, args.size, args.seed, args.grade_dist,
                          args.classes or list(PHANTOM_CLASSES), args.workers,
                          0.2 if args.test_fraction is None else args.test_fraction,
                          args.overwrite)
    dt = time.time() - t0
    summary = summarize(args.out)
    print(format_summary(summary))
    print(f'\n{args.num} phantom images at {args.size} px in {dt:.1f} s '
          f'({args.num / dt:.1f} img/s, {args.workers} worker(s))')
    if not args.no_preview:
        print(f'preview: {preview_dataset(args.out, Path(args.out) / "preview.png")}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'atomic'))
