"""Stage 6: report.md with the per-grade figure, the label and image metrics, the
Table 1(c)-style results with their plot, versions, configs and stage wall times."""
from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import numpy as np


def _versions() -> dict:
    import importlib

    out = {'python': platform.python_version()}
    for mod in ('torch', 'torchvision', 'numpy', 'mmengine', 'mmcv', 'mmseg', 'mmagic',
                'fundus_plugins'):
        try:
            out[mod] = importlib.import_module(mod).__version__
        except Exception as exc:  # report what is there, never fail the report on it
            out[mod] = f'unavailable ({type(exc).__name__})'
    return out


def figure(synthetic: Path, out: Path, per_grade: int = 2) -> Path:
    """The paper's Figure 1: one column per grade, rows of label maps and their images."""
    import cv2

    from ..datasets.layout import image_path, label_path, read_classes, read_meta
    from ..visualization import save_rgb, tile_grid

    classes = read_classes(synthetic)
    rows = read_meta(synthetic)
    grades = sorted({r.grade for r in rows if r.grade is not None})
    picked = {g: [r for r in rows if r.grade == g][:per_grade] for g in grades}
    grid, titles = [], []
    for k in range(per_grade):
        labels, images = [], []
        for g in grades:
            if k >= len(picked[g]):
                raise ValueError(f'{synthetic}: fewer than {per_grade} pairs of grade {g}')
            name = picked[g][k].name
            lab = cv2.imread(str(label_path(synthetic, name)), cv2.IMREAD_UNCHANGED)
            img = cv2.cvtColor(cv2.imread(str(image_path(synthetic, name))), cv2.COLOR_BGR2RGB)
            labels.append(classes.colorize(lab))
            images.append(img)
        grid += [labels, images]
        titles += ['label map', 'image']
    return save_rgb(out, tile_grid(grid, col_titles=[f'grade {g}' for g in grades],
                                   row_titles=titles, pad=3, classes=classes))


def run_report(ctx) -> dict:
    from ..apis import load_config
    from ..evaluation.synthetic_quality import format_quality, measure_synthetic
    from ..segmentation.ablation import run_name

    sec, work = ctx.section, ctx.work
    assets = ctx.path('report')
    assets.mkdir(parents=True, exist_ok=True)
    ctx.step('figure: label maps and images per grade', 3)
    figure(ctx.path('synthetic'), assets / 'figure1.png', sec.get('examples_per_grade', 2))
    shutil.copy(ctx.path('segmentation', 'results.png'), assets / 'results.png')
    shutil.copy(ctx.path('labels', 'grid.png'), assets / 'label_maps.png')

    ctx.step('image metrics: label consistency and FID / KID', 3)
    seg = ctx.cfg.segmentation
    seed0 = list(seg.get('seeds', [0]))[0]
    real_run = ctx.path('segmentation', run_name(0.0, seed0))
    quality_md = '(no real-only segmentation run: add fraction 0 to see label consistency)'
    quality = None
    if (real_run / 'metrics.json').is_file():
        from mmengine.runner.checkpoint import find_latest_checkpoint
        from .stages import _model_options
        seg_cfg = load_config(seg.config, _model_options(
            ctx, dict(seg.get('cfg_options') or {}, image_size=ctx.cfg.image_size)))
        quality = measure_synthetic(seg_cfg, find_latest_checkpoint(str(real_run)),
                                    str(ctx.path('synthetic')), str(ctx.path('real')),
                                    sec.get('inception_path'), sec.get('device', 'cpu'),
                                    progress=False)
        quality_md = format_quality(quality)
        (assets / 'quality.json').write_text(json.dumps(quality, indent=2) + '\n')

    ctx.step('writing report.md', 3)
    walls = []
    for name in ('data', 'grades', 'labels', 'images', 'segmentation'):
        st = ctx.state(name) or {}
        walls.append((name, st.get('wall_s')))
    total = sum(w for _, w in walls if w)
    versions = _versions()
    grades_md = (ctx.path('real', 'grades.md')).read_text().strip()
    lines = [
        '# Synthetic fundus data: what is it worth?', '',
        f'Pipeline config: `{ctx.cfg.filename}`; work dir `{work}`.', '',
        '## Figure: sampled label maps and their translated images, one column per grade',
        '', '![figure](report/figure1.png)', '',
        '## Data', '', (ctx.path('data', 'summary.md')).read_text().strip(), '',
        '### Grades of ungraded images', '', grades_md, '',
        '## Label maps (label ACGAN)', '',
        f'Configuration `{ctx.cfg.labels.config}`. Sampled maps: '
        '![label maps](report/label_maps.png)', '',
        (ctx.path('labels', 'analysis.md')).read_text().strip(), '',
        '## Images (SPADE)', '', f'Configuration `{ctx.cfg.images.config}`.', '',
        quality_md.strip(), '',
        '## Segmentation with synthetic data (Table 1(c))', '',
        f'Configuration `{seg.config}`; held-out test split: real images only.', '',
        (ctx.path('segmentation', 'results.md')).read_text().strip(), '',
        '![results](report/results.png)', '',
        '## Run', '',
        '| stage | wall time |', '|---|---|',
    ]
    for name, w in walls:
        lines.append(f'| {name} | {"-" if w is None else f"{w:.0f} s"} |')
    lines += [f'| total (before the report) | {total:.0f} s |', '',
              'Versions: ' + ', '.join(f'{k} {v}' for k, v in versions.items()) + '.', '',
              '<details><summary>Pipeline config</summary>', '', '```python',
              ctx.cfg.pretty_text.strip(), '```', '</details>', '']
    ctx.path('report.md').write_text('\n'.join(lines))
    res = {'wall_s': dict(walls), 'versions': versions}
    if quality:
        lc = quality['label_consistency']['synthetic']
        res['label_consistency_f1'] = {c: v['f1'] for c, v in lc.items()
                                       if not np.isnan(v['f1'])}
    return res


def estimate_report(cfg) -> float:
    return 15 + 5 * cfg.labels.num_per_grade * 0.06
