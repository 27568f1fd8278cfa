#!/usr/bin/env python
"""Compare generated label maps with real ones, per grade and overall.

    python tools/analyze_labels.py GENERATED_DIR --real PREPARED_ROOT [--size S]

GENERATED_DIR is a label-only prepared layout (tools/sample_labels.py writes one).
Reports grade accuracy (a classifier trained on the real train split; its accuracy on
the real test split is the ceiling), the fraction of maps with exactly one optic disc,
lesion load (pixel fraction and component count per class, with Wasserstein-1
distances) and diversity. Writes GENERATED_DIR/analysis.md and analysis.json.
"""
import argparse
import json
import sys
from pathlib import Path

from _tool import add_debug_argument, positive_int, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('generated')
    p.add_argument('--real', required=True, help='prepared root of real data')
    p.add_argument('--size', type=positive_int,
                   help='compare at this size (default: generated maps)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', help='output prefix (default GENERATED_DIR/analysis)')
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import cv2

    from fundus_plugins.datasets.layout import label_path, read_classes, read_meta
    from fundus_plugins.evaluation.label_stats import compare, format_report, load_maps

    gen_root = Path(args.generated)
    classes = read_classes(gen_root)
    size = args.size
    if size is None:
        first = read_meta(gen_root)[0].name
        size = cv2.imread(str(label_path(gen_root, first)), cv2.IMREAD_UNCHANGED).shape[0]
    generated = load_maps(gen_root, classes, size)
    real_train = load_maps(args.real, classes, size, split='train')
    real_test = load_maps(args.real, classes, size, split='test')
    res = compare(generated, real_train, real_test, classes, seed=args.seed)
    report = format_report(res)
    print(report)
    prefix = Path(args.out) if args.out else gen_root / 'analysis'
    prefix.with_suffix('.md').write_text(report)
    prefix.with_suffix('.json').write_text(json.dumps(res, indent=2) + '\n')
    print(f'written: {prefix.with_suffix(".md")}, {prefix.with_suffix(".json")}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'none'))
