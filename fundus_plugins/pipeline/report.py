"""Stage 6: report.md with the per-grade figure, the label and image metrics, the
Table 1(c)-style results with their plot, versions, configs and stage wall times."""
from __future__ import annotations

import importlib
import json
import platform
import shutil
from pathlib import Path

import cv2
import numpy as np

from ..datasets.layout import image_path, label_path, read_classes, read_meta
from ..evaluation.synthetic_quality import format_quality
from ..evaluation.seam import format_seams
from ..segmentation.ablation import (KIND_TITLES, format_table, load_results,
                                     modes_side_by_side, per_class_table, run_name,
                                     side_by_side, summarize)
from ..segmentation.compare import KINDS, comparison_table, verdict_sentence
from ..evaluation.intervals import fmt_interval
from .gates import format_gates, summary_line
from .plan import format_plan, time_plan
from ..visualization import save_rgb, tile_grid
from .common import (PROTOCOLS, image_modes, paper_counts_note, protocol_dir,
                     synthetic_dir)


def _versions() -> dict:
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


MODE_TITLES = {'full': 'whole-image synthesis (SPADE)',
               'inpaint': 'lesions inpainted into real healthy images'}


def run_report(ctx) -> dict:
    sec, work = ctx.section, ctx.work
    assets = ctx.path('report')
    assets.mkdir(parents=True, exist_ok=True)
    modes = image_modes(ctx.cfg)
    ctx.step('figure: label maps and images per grade', 3)
    if 'full' in modes:
        figure(synthetic_dir(ctx, 'full'), assets / 'figure1.png',
               sec.get('examples_per_grade', 2))
    if 'inpaint' in modes:
        shutil.copy(synthetic_dir(ctx, 'inpaint') / 'grid.png', assets / 'inpaint_grid.png')
    seg = ctx.cfg.segmentation
    protocols = list(seg.get('protocols', PROTOCOLS))
    for mode in modes:
        shutil.copy(protocol_dir(ctx, protocols[0], mode) / 'results.png',
                    assets / ('results.png' if mode == 'full' else f'results_{mode}.png'))
    shutil.copy(ctx.path('labels', 'grid.png'), assets / 'label_maps.png')

    ctx.step('image metrics of the gates stage: label consistency, FID / KID, seams', 3)
    seed0 = list(seg.get('seeds', [0]))[0]
    quality, quality_md = {}, {}
    for mode in modes:
        path = ctx.path('gates', f'quality_{mode}.json')
        quality[mode] = json.loads(path.read_text())
        quality_md[mode] = format_quality(quality[mode])
        if 'seams' in quality[mode]:
            quality_md[mode] += '\n\n' + format_seams(quality[mode]['seams'])
        shutil.copy(path, assets / ('quality.json' if mode == 'full'
                                    else f'quality_{mode}.json'))
    gates = json.loads(ctx.path('gates.json').read_text()) \
        if ctx.path('gates.json').is_file() else {}

    ctx.step('writing report.md', 3)
    walls = []
    for name in ('data', 'grades', 'labels', 'images', 'gates', 'segmentation'):
        st = ctx.state(name) or {}
        walls.append((name, st.get('wall_s')))
    total = sum(w for _, w in walls if w)
    versions = _versions()
    grades_md = (ctx.path('real', 'grades.md')).read_text().strip()
    on_fail = (ctx.cfg.get('gates') or {}).get('on_fail', 'warn')
    lines = [
        '# Synthetic fundus data: what is it worth?', '',
        f'Pipeline config: `{ctx.cfg.filename}`; work dir `{work}`. Synthetic images: '
        + ' and '.join(MODE_TITLES[m] for m in modes) + '.', '',
        '## Verdicts', '', *verdict_lines(ctx, modes, protocols), '',
        '## Quality gates', '',
        (f'{summary_line(gates)} (gates.on_fail = {on_fail!r}). '
         + ('A verdict on synthetic data that failed its gates says little about '
            'synthetic data that passes them.' if any(
                c['passed'] is False for g in gates.values() for c in g) else
            'The synthetic data is what the gates ask of it.')) if gates
        else 'No gate was checked.', '', format_gates(gates).strip() if gates else '', '']
    if 'full' in modes:
        lines += ['## Figure: sampled label maps and their translated images, one column per '
                  'grade', '', '![figure](report/figure1.png)', '']
    if 'inpaint' in modes:
        lines += ['## Figure: lesions painted into real healthy images, one column per grade',
                  '', 'Rows: the healthy training image, the sampled map placed on it (its '
                  'own disc and field of view), the inpainted result, and the painted '
                  "region's edge.", '', '![inpainting](report/inpaint_grid.png)', '']
    lines += [
        '## Data', '', (ctx.path('data', 'summary.md')).read_text().strip(), '',
        '### Grades of ungraded images', '', grades_md, '',
        '## Label maps (label ACGAN)', '',
        f'Configuration `{ctx.cfg.labels.config}`. Sampled maps: '
        '![label maps](report/label_maps.png)', '',
        (ctx.path('labels', 'analysis.md')).read_text().strip(), '']
    if 'full' in modes:
        lines += ['## Images (SPADE)', '', f'Configuration `{ctx.cfg.images.config}`.', '',
                  quality_md['full'].strip(), '']
    if 'inpaint' in modes:
        lines += ['## Images (inpainting)', '',
                  f'Configuration `{ctx.cfg.images.inpaint.config}`; the lesions of the same '
                  'sampled maps, painted into real healthy (grade-0) training images.', '',
                  quality_md['inpaint'].strip(), '']
    lines += ['## Segmentation with synthetic data (Table 1(c))', '',
              f'Configuration `{seg.config}`; held-out test split: real images only.', '']
    if len(modes) > 1:
        rows = {m: summarize(load_results(protocol_dir(ctx, protocols[0], m)))
                for m in modes}
        lines += [f'### Whole-image synthesis beside inpainting ('
                  f'{protocols[0].replace("_", " ")}; lesion F1, %)', '',
                  modes_side_by_side(rows, MODE_TITLES).strip(), '',
                  'Both modes use the same sampled label maps at the same counts; the '
                  'real-only row is one run, shared.', '']
    for mode in modes:
        if len(modes) > 1:
            lines += [f'### {MODE_TITLES[mode].capitalize()}', '']
        lines += [segmentation_section(ctx, protocols, lambda c, p: protocol_dir(c, p, mode),
                                       seed0).strip(), '',
                  '![results](report/results.png)' if mode == 'full'
                  else f'![results](report/results_{mode}.png)', '']
    lines += ['## Run', '']
    plan = time_plan(ctx.cfg, ctx.runner, probe=False)
    if plan is not None:
        lines += ['The time plan (from the timing probe before the run; '
                  'fundus_plugins/pipeline/plan.py) beside the actual wall times:', '',
                  format_plan(plan, {k: w for k, w in walls if w is not None}).strip(), '']
    else:
        lines += ['| stage | wall time |', '|---|---|']
        for name, w in walls:
            lines.append(f'| {name} | {"-" if w is None else f"{w:.0f} s"} |')
        lines += [f'| total (before the report) | {total:.0f} s |', '']
    lines += ['Versions: ' + ', '.join(f'{k} {v}' for k, v in versions.items()) + '.', '',
              '<details><summary>Pipeline config</summary>', '', '```python',
              ctx.cfg.pretty_text.strip(), '```', '</details>', '']
    ctx.path('report.md').write_text('\n'.join(lines))
    res = {'wall_s': dict(walls), 'versions': versions, 'modes': modes}
    for mode, q in quality.items():
        key = 'label_consistency_f1' if mode == 'full' else f'label_consistency_f1_{mode}'
        lc = q['label_consistency']['synthetic']
        res[key] = {c: v['f1'] for c, v in lc.items() if not np.isnan(v['f1'])}
        if 'seams' in q:
            res['seam_ratio'] = q['seams']['seam_ratio']
    res['gates_failed'] = [c['gate'] for g in gates.values() for c in g
                           if c['passed'] is False]
    return res


PROTOCOL_TITLES = {'fixed_epochs': "the paper's protocol (the same epochs for every "
                                   'fraction)',
                   'equal_updates': 'the equal-updates control'}


def comparisons(ctx, mode: str, protocol: str) -> list:
    path = protocol_dir(ctx, protocol, mode) / 'comparison.json'
    return json.loads(path.read_text()) if path.is_file() else []


def verdict_lines(ctx, modes, protocols) -> list:
    """The report's opening: per image mode and protocol, each fraction's verdict in words
    (pixel F1), then one table of every measure's difference and verdict."""
    lines, table = [], []
    seeds = len(list(ctx.cfg.segmentation.get('seeds', [0])))
    for mode in modes:
        for protocol in protocols:
            comp = comparisons(ctx, mode, protocol)
            lines += [f'**{MODE_TITLES[mode].capitalize()}, {PROTOCOL_TITLES[protocol]}** '
                      '(lesion F1, pixel measure, against real only):', '']
            lines += [f'- {verdict_sentence(c)}' for c in comp if c['kind'] == 'pixel'] \
                or ['- no comparison (no fraction above 0, or no real-only run)']
            lines.append('')
            for f in sorted({c['fraction'] for c in comp}):
                cells = [MODE_TITLES[mode], protocol.replace('_', ' '), f'{f * 100:.0f} %']
                for kind in KINDS:
                    c = next((c for c in comp if c['kind'] == kind and c['fraction'] == f),
                             None)
                    cells.append('-' if c is None else fmt_interval(
                        c['combined']['mean'], c['combined']['low'], c['combined']['high'],
                        signed=True) + f" {c['verdict']}")
                table.append('| ' + ' | '.join(cells) + ' |')
    if table:
        lines += ['| synthetic images | protocol | fraction | ' + ' | '.join(
            f'{k} F1 difference [95 %], verdict' for k in KINDS) + ' |',
            '|---|---|---|---|---|---|', *table, '']
    lines.append(
        f'Differences are in F1 points against the real-only runs, paired by seed ({seeds} '
        'seed(s)); the interval adds the spread over seeds and the paired bootstrap over '
        'test images (with one seed it covers the test images only, not training noise); '
        "verdicts are at 95 % after Holm's correction over the fractions. "
        'Every interval is in the tables of the segmentation section.')
    return lines


READING = (
    'How to read it: under the paper\'s protocol every run trains the same number of '
    'epochs, so a run with more synthetic images also gets more parameter updates (up to 4x '
    'at 75 %); the equal-updates control trains the run at fraction p for epochs x (1 - p), '
    'about the updates of the real-only run. A gain under the paper\'s protocol that '
    'vanishes under the control came from the longer training, not from the synthetic '
    'images; a gain that holds under both is the data\'s.')


def segmentation_section(ctx, protocols, protocol_dir, seed0) -> str:
    """The report's Table 1(c) part: counts, the three measures under both protocols side
    by side, the per-class scores of the real-only run with the images each was scored
    on, and each protocol's full tables."""
    rows = {p: summarize(load_results(protocol_dir(ctx, p))) for p in protocols}
    first = rows[protocols[0]]
    counts = ctx.cfg.get('counts') or {}
    lines = []
    if first:
        need = {r['fraction']: r['num_synthetic'] for r in first}
        lines += [paper_counts_note(first[0]['num_real'], need), '']
        if counts and counts.get('real') != first[0]['num_real']:
            lines += [f"(The count planned before training was {counts['real']}.)", '']
    lesions = [c for c in ctx.cfg.get('lesion_classes', []) if isinstance(c, str) and c != 'OD']
    lines += [f'Measures (lesion scores over {", ".join(lesions) or "the lesion classes"}; '
              'BG, RET and the optic disc are left out, the disc is reported on its own '
              'below):', '']
    lines += [f'- **{k}**: {v}.' for k, v in KIND_TITLES.items()]
    lines += ['', "Son et al.'s Table 1(c) is the paper measure (F1 .4694 / .4965 / .4824 / "
              '.4522 at 0 / 25 / 50 / 75 %); their published numbers also carry their '
              "code's loss of the first pooled class in their fixed class order, MA here "
              '(PaperLesionMetric(class0_bug=True), '
              'configs/seg/unet_fundus_real_as_published.py); here it is off.', '']
    if set(protocols) == set(PROTOCOLS):
        lines += ['### The paper\'s protocol beside the equal-updates control (lesion F1, %)',
                  '', side_by_side(rows['fixed_epochs'], rows['equal_updates']).strip(), '',
                  READING, '']
    real_only = protocol_dir(ctx, protocols[0]) / run_name(0.0, seed0) / 'metrics.json'
    if real_only.is_file():
        metrics = json.loads(real_only.read_text())
        lines += [f'### Per class, real-only run (seed {seed0}), F1 %', '',
                  per_class_table(metrics, ctx.cfg.get('lesion_classes', [])).strip(), '',
                  'Images scored: the test images whose source annotates the class (paper, '
                  'pixel); for the image measure, those with the class in truth or '
                  'prediction.', '']
    for p in protocols:
        comp = json.loads((protocol_dir(ctx, p) / 'comparison.json').read_text()) \
            if (protocol_dir(ctx, p) / 'comparison.json').is_file() else []
        if comp:
            lines += [f'### Difference to real only, {p.replace("_", " ")} (F1 points)', '']
            for kind in KINDS:
                lines += [f'{KIND_TITLES[kind]}:', '', comparison_table(comp, kind).strip(),
                          '']
        lines += [f'<details><summary>All scores, {p.replace("_", " ")}</summary>', '',
                  format_table(rows[p]).strip(), '', '</details>', '']
    return '\n'.join(lines)


def estimate_report(cfg) -> float:
    return 15 + 5 * cfg.labels.num_per_grade * 0.06
