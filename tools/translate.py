#!/usr/bin/env python
"""Translate a folder of label maps into fundus images with a trained SPADE model.

    python tools/translate.py CONFIG CHECKPOINT --labels DIR --out DIR
        [--batch-size 8] [--device cpu|cuda] [--amp]

DIR (in) is a prepared layout with labels/ and meta.csv (tools/sample_labels.py writes
one); its classes are remapped to the model's. The output is a complete prepared layout:
images/, labels/ (at the image size), meta.csv (grade_source=synthetic) and classes.json.
"""
import argparse
import sys
import time
from pathlib import Path

from mmengine.config import DictAction


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--labels', required=True, help='prepared layout of label maps')
    p.add_argument('--out', required=True)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--device', default='cpu')
    p.add_argument('--amp', action='store_true', help='autocast on CUDA')
    p.add_argument('--sample-model', choices=['ema', 'orig'], default='ema')
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import cv2
    from tqdm import tqdm

    from fundus_plugins.apis import init_model, load_config, translate_label_maps
    from fundus_plugins.datasets.layout import (MetaRow, label_path, read_classes, read_meta,
                                                write_meta)
    from fundus_plugins.datasets.prepare import init_layout, write_pair

    cfg = load_config(args.config, args.cfg_options)
    model = init_model(cfg, args.checkpoint, args.device)
    src = Path(args.labels)
    rows = read_meta(src)
    lut = model.class_set.remap_from(read_classes(src))

    def maps():
        for row in rows:
            lab = cv2.imread(str(label_path(src, row.name)), cv2.IMREAD_UNCHANGED)
            if lab is None or lab.ndim != 2:
                raise ValueError(f'{label_path(src, row.name)}: missing or not a label map')
            yield lut[lab]

    out = init_layout(args.out, model.class_set, overwrite=args.overwrite)
    t0 = time.time()
    written = []
    results = translate_label_maps(model, maps(), args.batch_size, args.amp, args.sample_model)
    for row, (label, image) in tqdm(zip(rows, results), total=len(rows), desc='translate',
                                    unit='img'):
        write_pair(out, row.name, image, label)
        written.append(MetaRow(row.name, row.grade, 'synthetic', 'spade', 'train'))
    write_meta(out, written)
    dt = time.time() - t0
    print(f'{len(written)} images written to {out} in {dt:.1f} s '
          f'({len(written) / max(dt, 1e-9):.1f} img/s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
