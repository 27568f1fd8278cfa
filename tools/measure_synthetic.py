#!/usr/bin/env python
"""Measure a synthetic dataset: label consistency and FID / KID.

    python tools/measure_synthetic.py SEG_CONFIG SEG_CHECKPOINT \\
        --synthetic DIR --real ROOT [--inception auto | inception-2015-12-05.pt] \\
        [--healthy ROOT] [--no-progress]

SEG_CONFIG / SEG_CHECKPOINT: a segmentation model trained on real images only (e.g.
configs/seg/unet_fundus_demo.py). It segments the synthetic images; per-class precision,
recall, F1 and IoU against the label maps they were made from are reported beside the
same model's scores on the real test split (the ceiling). FID and KID against the real
test images need StyleGAN's TorchScript Inception (--inception, or `inception_path` in
the seg config): a local file, or 'auto' for mmagic's cache
(~/.cache/openmmlab/mmagic/inception-2015-12-05.pt, downloaded there when online).
Without it the report says they were not computed and where to put the file. For an
inpainted root (tools/inpaint_lesions.py) also the seam ratio at the painted regions'
edges against its healthy images (--healthy, default --real). Writes DIR/quality.md and
DIR/quality.json (or --out PREFIX).
"""
import argparse
import json
import sys
from pathlib import Path

from _tool import add_debug_argument, positive_int, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='segmentation config (trained on real images only)')
    p.add_argument('checkpoint')
    p.add_argument('--synthetic', required=True, help='prepared layout of synthetic pairs')
    p.add_argument('--real', required=True, help='prepared real root (its test split)')
    p.add_argument('--inception',
                   help="StyleGAN's TorchScript Inception for FID / KID: a local "
                        "inception-2015-12-05.pt, 'auto' (mmagic's cache, downloaded "
                        "there when online) or a URL (default: the config's "
                        "inception_path)")
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch-size', type=positive_int, default=8)
    p.add_argument('--out', help='output prefix (default SYNTHETIC/quality)')
    p.add_argument('--healthy',
                   help='with an inpainted root (tools/inpaint_lesions.py): the root of its '
                        'healthy images, for the seam measure (default: --real)')
    p.add_argument('--no-progress', action='store_true',
                   help='no progress bars (they are written to stderr)')
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from fundus_plugins.config import load_config
    from fundus_plugins.evaluation.synthetic_quality import format_quality, measure_synthetic

    inpainted = (Path(args.synthetic) / 'inpaint.csv').is_file()
    if args.healthy and not inpainted:
        raise SystemExit(f'--healthy: {args.synthetic} is not an inpainted root (no '
                         f'inpaint.csv), so there are no seams to measure')
    cfg = load_config(args.config)
    inception = args.inception or cfg.get('inception_path')
    result = measure_synthetic(cfg, args.checkpoint, args.synthetic, args.real, inception,
                               args.device, args.batch_size, progress=not args.no_progress)
    report = format_quality(result)
    if inpainted:  # an inpainted root: its seams
        from fundus_plugins.evaluation.seam import format_seams, measure_seams
        result['seams'] = measure_seams(args.synthetic, args.healthy or args.real,
                                        progress=not args.no_progress)
        report += '\n' + format_seams(result['seams'])
    print(report)
    prefix = Path(args.out) if args.out else Path(args.synthetic) / 'quality'
    prefix.parent.mkdir(parents=True, exist_ok=True)
    Path(f'{prefix}.md').write_text(report)
    Path(f'{prefix}.json').write_text(json.dumps(result, indent=2) + '\n')
    print(f'written: {prefix}.md, {prefix}.json')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'none'))
