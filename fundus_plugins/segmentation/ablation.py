"""The synthetic-data ablation: one segmentation config trained at several synthetic
fractions with several seeds, each tested on the real held-out split, then tabulated
(the paper's Table 1(c): fraction, synthetic count, precision, recall, F1, mean +- std
over seeds) and plotted.

By default every run trains for the config's epochs (the paper's protocol), so a larger
training set also gets more parameter updates; ``equal_updates=True`` trains the run at
fraction p for round(epochs x (1 - p)) epochs instead (at least 1), about the number of
updates of the real-only run, which separates what the synthetic images add from what
the longer training adds.

Every run lives in ``WORK/p{fraction}_s{seed}/`` and ends with ``metrics.json``; a run
whose ``metrics.json`` exists is not trained again, and an interrupted run resumes from
its last checkpoint, so the whole ablation can be stopped and restarted.
"""
from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from mmengine.logging import print_log

from ..checkpoint import mmengine_checkpoint_globals
from ..config import load_config, runner_for, set_train_length
from ..engine.progress_hook import HeldLog, show_progress, use_quiet_runner

SCORES = ('precision', 'recall', 'f1')
KINDS = ('paper', 'image', 'pixel')  # the paper's measure first
#: What each kind's lesion score is, for the tables (fundus_plugins/segmentation/metrics.py).
KIND_TITLES = {
    'paper': "Son et al.'s measure (paper_*): per image, lesion classes pooled (exact-class "
             'TP; an image with no lesion and no prediction scores 1, one with no TP 0), '
             'averaged over images',
    'image': 'Per image and class (image_lesion_mean_*): empty cases left out, averaged over '
             'images, then over the lesion classes',
    'pixel': 'Pixel level (pixel_lesion_mean_*): pixels pooled over the test split per class, '
             'then averaged over the lesion classes',
}


def score_key(kind: str, score: str) -> str:
    """The metrics key of a kind's lesion score (see KIND_TITLES)."""
    return f'paper_{score}' if kind == 'paper' else f'{kind}_lesion_mean_{score}'


def run_name(fraction: float, seed: int) -> str:
    return f'p{int(round(fraction * 100)):02d}_s{seed}'


def _run_one(config: str, fraction: float, seed: int, work: Path, cfg_options: dict,
             log=print, max_epochs: Optional[int] = None, equal_updates: bool = False,
             quiet: bool = False) -> dict:
    """Train and test one (fraction, seed); returns its metrics. ``quiet``: the console
    shows a progress bar and warnings only, the rest goes to the run's log file."""
    # Quiet: what loading the config logs goes to the run's log file, not the console.
    held = HeldLog() if quiet else print_log
    cfg = load_config(config, dict(cfg_options, synthetic_fraction=fraction,
                                   synthetic_seed=seed), log=held)
    if max_epochs is not None:
        set_train_length(cfg, int(max_epochs))
    epochs = cfg.train_cfg.get('max_epochs')
    if equal_updates:
        if epochs is None:
            raise KeyError('equal_updates needs an epoch-based config (train_cfg.max_epochs)')
        epochs = max(1, int(round(epochs * (1 - fraction))))
        set_train_length(cfg, epochs)
    cfg.randomness = dict(seed=seed)
    if quiet:
        use_quiet_runner(cfg)
    # Tested once, at the end, rather than validated during training.
    runner = runner_for(cfg, work, no_val=True, log=lambda m: log(f'  {m}'))
    if quiet:
        show_progress(runner, f'{work.parent.name}/{work.name}', lambda m: log(f'  {m}'), held)
    dataset = runner.train_dataloader.dataset
    num_synthetic = dataset.num_synthetic
    num_real = len(dataset) - num_synthetic
    with mmengine_checkpoint_globals(str(work)):  # an interrupted run resumes
        runner.train()
        metrics = {k: float(v) for k, v in runner.test().items()}
    metrics.update(fraction=fraction, seed=seed, num_real=num_real,
                   num_synthetic=num_synthetic, epochs=epochs)
    return metrics


def run_ablation(config: str, work_dir: str, fractions: Sequence[float] = (0, .25, .5, .75),
                 seeds: Sequence[int] = (0, 1, 2), cfg_options: Optional[dict] = None,
                 log=print, max_epochs: Optional[int] = None,
                 equal_updates: bool = False, quiet: bool = False) -> list[dict]:
    """Every (fraction, seed) run, trained or read back; then the tables and the plot.
    ``max_epochs`` shortens (or lengthens) the config's schedule; ``equal_updates`` see
    the module docstring; ``quiet``: each run shows a progress bar and its warnings on
    the console, and logs the rest to its log file only."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    runs = [(f, s) for f in fractions for s in seeds]
    # A run's cost grows with its training set: real / (1 - fraction) images.
    cost = {f: 1.0 if equal_updates else 1.0 / (1.0 - f) for f in fractions}
    results, spent, trained = [], 0.0, 0.0
    for i, (fraction, seed) in enumerate(runs, 1):
        run_dir = work / run_name(fraction, seed)
        done = run_dir / 'metrics.json'
        left = sum(cost[f] for f, _ in runs[i - 1:])
        eta = f', about {spent / trained * left / 60:.1f} min left' if trained else ''
        if done.is_file():
            log(f'[run {i}/{len(runs)}] fraction {fraction:g}, seed {seed}: done before '
                f'({done})')
            results.append(json.loads(done.read_text()))
            continue
        log(f'[run {i}/{len(runs)}] fraction {fraction:g}, seed {seed}{eta}')
        start = time.time()
        results.append(_run_one(config, fraction, seed, run_dir, cfg_options or {}, log,
                                max_epochs, equal_updates, quiet))
        spent += time.time() - start
        trained += cost[fraction]
        results[-1]['wall_s'] = round(time.time() - start, 1)
        done.write_text(json.dumps(results[-1], indent=2) + '\n')
    write_results(results, work)
    return results


def load_results(work_dir) -> list[dict]:
    """The metrics.json of every finished run directly under ``work_dir``."""
    return [json.loads(p.read_text()) for p in sorted(Path(work_dir).glob('p*_s*/metrics.json'))]


def summarize(results: Sequence[dict]) -> list[dict]:
    """One row per fraction: counts and mean / std over seeds of every mean score."""
    rows = []
    for fraction in sorted({r['fraction'] for r in results}):
        group = [r for r in results if r['fraction'] == fraction]
        row = {'fraction': fraction, 'seeds': len(group),
               'num_real': group[0]['num_real'], 'num_synthetic': group[0]['num_synthetic'],
               'epochs': group[0].get('epochs')}
        for kind in KINDS:
            for score in SCORES:
                vals = np.array([r.get(score_key(kind, score), np.nan) for r in group],
                                dtype=float)
                row[f'{kind}_{score}_mean'] = float(np.nanmean(vals)) \
                    if np.isfinite(vals).any() else math.nan
                row[f'{kind}_{score}_std'] = float(np.nanstd(vals)) \
                    if np.isfinite(vals).any() else math.nan
        rows.append(row)
    return rows


def _pm(row, kind, score):
    m, s = row.get(f'{kind}_{score}_mean', math.nan), row.get(f'{kind}_{score}_std', math.nan)
    return '-' if math.isnan(m) else f'{m:.2f} +- {s:.2f}'


def format_table(rows: Sequence[dict], kinds: Sequence[str] = KINDS) -> str:
    lines = []
    for kind in kinds:
        lines += [f'**{KIND_TITLES[kind]}; % mean +- std over seeds**', '',
                  '| synthetic fraction | real + synthetic | epochs | precision | recall | F1 |',
                  '|---|---|---|---|---|---|']
        for r in rows:
            lines.append(f"| {r['fraction'] * 100:.0f} % | {r['num_real']} + "
                         f"{r['num_synthetic']} | {r.get('epochs') or '-'} | "
                         f"{_pm(r, kind, 'precision')} | "
                         f"{_pm(r, kind, 'recall')} | {_pm(r, kind, 'f1')} |")
        lines.append('')
    seeds = sorted({r['seeds'] for r in rows})
    lines.append(f'Seeds per fraction: {", ".join(map(str, seeds))}. Lesion scores leave out '
                 'BG, RET and the optic disc (reported on its own in metrics.json); a class '
                 'is scored only on images whose source annotates it. In the image and pixel '
                 'means a class the model never predicts has no precision and is left out of '
                 'the precision mean.')
    return '\n'.join(lines) + '\n'


def side_by_side(fixed: Sequence[dict], equal: Sequence[dict]) -> str:
    """One markdown table: per fraction, the lesion F1 of each measure under the paper's
    fixed-epoch protocol and under the equal-updates control (rows of :func:`summarize`)."""
    by_fraction = {r['fraction']: r for r in equal}
    head = ['synthetic fraction', 'real + synthetic', 'epochs (fixed / equal)']
    for kind in KINDS:
        head += [f'{kind} F1, fixed epochs', f'{kind} F1, equal updates']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in fixed:
        e = by_fraction.get(r['fraction'])
        cells = [f"{r['fraction'] * 100:.0f} %", f"{r['num_real']} + {r['num_synthetic']}",
                 f"{r.get('epochs') or '-'} / {(e or {}).get('epochs') or '-'}"]
        for kind in KINDS:
            cells += [_pm(r, kind, 'f1'), _pm(e, kind, 'f1') if e else '-']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def modes_side_by_side(rows: dict, titles: Optional[dict] = None) -> str:
    """One markdown table: per fraction, the lesion F1 of each measure for each way of
    making the synthetic images (``rows``: mode -> rows of :func:`summarize`, in column
    order; ``titles``: mode -> its name in the header)."""
    modes = list(rows)
    titles = titles or {}
    by_mode = {m: {r['fraction']: r for r in rows[m]} for m in modes}
    fractions = sorted({f for m in modes for f in by_mode[m]})
    head = ['synthetic fraction', 'real + synthetic']
    for kind in KINDS:
        head += [f'{kind} F1, {titles.get(m, m)}' for m in modes]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for f in fractions:
        some = next(by_mode[m][f] for m in modes if f in by_mode[m])
        cells = [f'{f * 100:.0f} %', f"{some['num_real']} + {some['num_synthetic']}"]
        for kind in KINDS:
            cells += [_pm(by_mode[m][f], kind, 'f1') if f in by_mode[m] else '-'
                      for m in modes]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def per_class_table(metrics: dict, classes: Sequence[str]) -> str:
    """Per class F1 of the three measures and the test images each was scored on, for
    one run's metrics (the paper's measure applied to the class alone)."""
    lines = ['| class | paper F1 (class alone) | image F1 | pixel F1 | images scored '
             '(paper / image / pixel) |', '|---|---|---|---|---|']

    def f(key):
        v = metrics.get(key)
        return '-' if v is None or (isinstance(v, float) and math.isnan(v)) else f'{v:.2f}'

    for c in classes:
        if f'pixel_f1/{c}' not in metrics:
            continue
        counts = ' / '.join(str(int(metrics.get(f'{k}_images/{c}', 0)))
                            for k in ('paper', 'image', 'pixel'))
        lines.append(f"| {c} | {f(f'paper_f1/{c}')} | {f(f'image_f1/{c}')} | "
                     f"{f(f'pixel_f1/{c}')} | {counts} |")
    return '\n'.join(lines) + '\n'


def plot(rows: Sequence[dict], path: Path) -> None:
    # Imported here: choosing matplotlib's backend at import would set it for the whole
    # process, and only the plot needs it.
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(KINDS), figsize=(4.5 * len(KINDS), 3.4), sharey=True)
    x = [r['fraction'] * 100 for r in rows]
    for ax, kind in zip(axes, KINDS):
        for score, marker in zip(SCORES, 'osD'):
            y = [r[f'{kind}_{score}_mean'] for r in rows]
            e = [r[f'{kind}_{score}_std'] for r in rows]
            ax.errorbar(x, y, yerr=e, marker=marker, capsize=3, label=score)
        ax.set_title({'paper': "Son et al.'s measure (paper_*)",
                      'image': 'per image and class (image_*)',
                      'pixel': 'pixel level (pixel_*)'}[kind], fontsize=10)
        ax.set_xlabel('synthetic share of the training set (%)')
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('score (%)')
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(results: Sequence[dict], work: Path) -> None:
    keys = ['fraction', 'seed', 'num_real', 'num_synthetic']
    keys += sorted({k for r in results for k in r} - set(keys))
    with open(work / 'results.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for r in sorted(results, key=lambda r: (r['fraction'], r['seed'])):
            writer.writerow({k: r.get(k, '') for k in keys})
    rows = summarize(results)
    (work / 'results.md').write_text(format_table(rows))
    plot(rows, work / 'results.png')
