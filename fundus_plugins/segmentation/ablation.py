"""The synthetic-data ablation: one segmentation config trained at several synthetic
fractions with several seeds, each tested on the real held-out split, then tabulated
(the paper's Table 1(c): fraction, synthetic count, precision, recall, F1, mean +- std
over seeds) and plotted.

By default every run trains for the config's epochs (the paper's protocol), so a larger
training set also gets more parameter updates; ``equal_updates=True`` trains the run at
fraction p for round(epochs x (1 - p)) epochs instead (at least 1), about the number of
updates of the real-only run, which separates what the synthetic images add from what
the longer training adds.

Every run lives in ``WORK/p{fraction}_s{seed}/`` and ends with ``metrics.json`` and the
per-image scores of its test images (``per_image_<kind>.npz``); a run whose
``metrics.json`` exists is not trained again, and an interrupted run resumes from its
last checkpoint, so the whole ablation can be stopped and restarted. The tables give
every score with its 95 % interval over seeds, and every fraction's difference to the
real-only runs with its intervals and verdict (:mod:`.compare`).

``parallel=N`` trains N runs at once, each in a process of its own
(``python -m fundus_plugins.segmentation.worker``, its console in the run's
``worker.log``): on CUDA one GPU each (``CUDA_VISIBLE_DEVICES``), on the CPU ``threads``
threads each (default: the CPUs divided among the N). A failed run is named with its log
and the others finish; the ablation then stops with the list. Each run gets the same
arguments as in one process, so a run's metrics do not depend on N where the thread
count does not change its arithmetic (set ``threads`` to pin it).

``launcher='slurm'`` submits the runs that are not finished as one Slurm job array instead
(:mod:`.slurm`; ``slurm``: its partition, GPUs and CPUs per task, sbatch options), waits
for it and gathers the results the same way.

One folder, one run (:mod:`fundus_plugins.locks`): the ablation holds the lock of its work
dir, and each run the lock of its run folder (a parallel run in its worker process), so a
second ablation on the same folder, or another process on a run's folder, is refused at
once, naming the holder.
"""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from mmengine.logging import print_log

from ..checkpoint import mmengine_checkpoint_globals
from ..errors import UserKeyError, UserValueError
from ..evaluation.intervals import LEVEL, fmt_interval, t_interval
from ..config import load_config, runner_for, set_train_length
from ..locks import folder_lock
from ..threads import torch_threads
from ..engine.progress_hook import HeldLog, show_progress, use_quiet_runner
from .slurm import slurm_settings, submit_array
from .compare import (KINDS, comparison_table, compare_to_real, score_key,
                      verdict_sentence, write_comparison)

SCORES = ('precision', 'recall', 'f1')
#: How the runs are launched: in this machine's processes, or as one Slurm job array.
LAUNCHERS = ('none', 'slurm')
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
#: The metrics whose per-image scores each run keeps (per_image_<kind>.npz).
PER_IMAGE_METRICS = ('PaperLesionMetric', 'LesionImageMetric', 'LesionPixelMetric')


def run_name(fraction: float, seed: int) -> str:
    return f'p{int(round(fraction * 100)):02d}_s{seed}'


def _run_one(config: str, fraction: float, seed: int, work: Path, cfg_options: dict,
             log=print, max_epochs: Optional[int] = None, equal_updates: bool = False,
             quiet: bool = False) -> dict:
    """Train and test one (fraction, seed) in its run folder ``work``, which it locks
    (a worker process of ``parallel`` too); returns its metrics. ``quiet``: the console
    shows a progress bar and warnings only, the rest goes to the run's log file."""
    with folder_lock(work, f'ablation run {work.name}'):
        return _train_and_test(config, fraction, seed, work, cfg_options, log, max_epochs,
                               equal_updates, quiet)


def _train_and_test(config: str, fraction: float, seed: int, work: Path, cfg_options: dict,
                    log=print, max_epochs: Optional[int] = None, equal_updates: bool = False,
                    quiet: bool = False) -> dict:
    # Quiet: what loading the config logs goes to the run's log file, not the console.
    held = HeldLog() if quiet else print_log
    cfg = load_config(config, dict(cfg_options, synthetic_fraction=fraction,
                                   synthetic_seed=seed), log=held)
    if max_epochs is not None:
        set_train_length(cfg, int(max_epochs))
    epochs = cfg.train_cfg.get('max_epochs')
    if equal_updates:
        if epochs is None:
            raise UserKeyError('equal_updates needs an epoch-based config (train_cfg.max_epochs)')
        epochs = max(1, int(round(epochs * (1 - fraction))))
        set_train_length(cfg, epochs)
    cfg.randomness = dict(seed=seed)
    keep_per_image(cfg, work)
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


def keep_per_image(cfg, work: Path) -> None:
    """Point the config's fundus test metrics at ``work`` for their per-image scores
    (``per_image_<kind>.npz``, the bootstrap's input)."""
    evaluator = cfg.test_evaluator
    metrics = evaluator.get('metrics', [evaluator]) if isinstance(evaluator, dict) \
        else evaluator
    for metric in metrics:
        if isinstance(metric, dict) and metric.get('type') in PER_IMAGE_METRICS:
            metric['per_image_dir'] = str(work)


def run_ablation(config: str, work_dir: str, fractions: Sequence[float] = (0, .25, .5, .75),
                 seeds: Sequence[int] = (0, 1, 2), cfg_options: Optional[dict] = None,
                 log=print, max_epochs: Optional[int] = None,
                 equal_updates: bool = False, quiet: bool = False, parallel: int = 1,
                 threads: Optional[int] = None, launcher: str = 'none',
                 slurm: Optional[dict] = None) -> list[dict]:
    """Every (fraction, seed) run, trained or read back; then the tables and the plot.
    ``max_epochs`` shortens (or lengthens) the config's schedule; ``equal_updates``,
    ``parallel``, ``threads``, ``launcher`` and ``slurm``: see the module docstring;
    ``quiet``: each run shows a progress bar and its warnings on the console, and logs
    the rest to its log file only."""
    if launcher not in LAUNCHERS:
        raise UserValueError(f'launcher: {launcher!r}; expected one of {list(LAUNCHERS)}')
    if launcher == 'slurm':
        slurm = slurm_settings(slurm)  # errors before anything runs
    work = Path(work_dir)
    # One folder, one ablation (each run also locks its own folder, in _run_one).
    with folder_lock(work, 'the synthetic-data ablation'):
        return _run_ablation(config, work, fractions, seeds, cfg_options, log, max_epochs,
                             equal_updates, quiet, parallel, threads, slurm)


def _run_ablation(config, work: Path, fractions, seeds, cfg_options, log, max_epochs,
                  equal_updates, quiet, parallel, threads, slurm=None) -> list[dict]:
    runs = [(f, s) for f in fractions for s in seeds]
    spec = dict(config=str(config), cfg_options=dict(cfg_options or {}),
                max_epochs=max_epochs, equal_updates=bool(equal_updates))
    # A run's cost grows with its training set: real / (1 - fraction) images.
    cost = {f: 1.0 if equal_updates else 1.0 / (1.0 - f) for f in fractions}
    results, todo = {}, []
    for i, (fraction, seed) in enumerate(runs, 1):
        done = work / run_name(fraction, seed) / 'metrics.json'
        if done.is_file():
            log(f'[run {i}/{len(runs)}] fraction {fraction:g}, seed {seed}: done before '
                f'({done})')
            results[fraction, seed] = json.loads(done.read_text())
        else:
            todo.append((i, fraction, seed))
    clock = _Clock(cost, [f for _, f, _ in todo])
    if slurm is not None and todo:
        results.update(_run_slurm(todo, len(runs), work, spec, slurm, log))
    elif parallel > 1 and len(todo) > 1:
        results.update(_run_parallel(todo, len(runs), work, spec, parallel, threads, clock,
                                     log))
    else:
        for i, fraction, seed in todo:
            log(f'[run {i}/{len(runs)}] fraction {fraction:g}, seed {seed}{clock.eta()}')
            start = time.time()
            run_dir = work / run_name(fraction, seed)
            with folder_lock(run_dir, f'ablation run {run_dir.name}'), \
                    torch_threads(threads or None):
                metrics = _run_one(config, fraction, seed, run_dir, spec['cfg_options'], log,
                                   max_epochs, equal_updates, quiet)
                metrics['wall_s'] = round(time.time() - start, 1)
                save_metrics(run_dir, metrics)
            clock.finished(fraction, metrics['wall_s'])
            results[fraction, seed] = metrics
    ordered = [results[r] for r in runs]
    write_results(ordered, work)
    return ordered


def save_metrics(run_dir: Path, metrics: dict) -> None:
    """metrics.json, written whole (its presence marks the run finished)."""
    tmp = run_dir / '.metrics.json.partial'
    tmp.write_text(json.dumps(metrics, indent=2) + '\n')
    os.replace(tmp, run_dir / 'metrics.json')


class _Clock:
    """Time left in an ablation: the mean wall time per unit of cost so far, times the
    cost of the runs left (cost: the training set's size relative to real only)."""

    def __init__(self, cost: dict, left: Sequence[float]):
        self.cost, self.left = cost, list(left)
        self.spent = self.units = 0.0
        self.lanes = 1

    def finished(self, fraction: float, wall: float) -> None:
        self.left.remove(fraction)
        self.spent += wall
        self.units += self.cost[fraction]

    def eta(self) -> str:
        if not self.units:
            return ''
        left = self.spent / self.units * sum(self.cost[f] for f in self.left) / self.lanes
        return f', about {left / 60:.1f} min left'


def _devices(parallel: int, threads: Optional[int]) -> list[dict]:
    """The environment of each of ``parallel`` worker lanes: one CUDA device each when
    there are CUDA devices (as many lanes as devices at most), else CPU threads."""
    import torch
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        if parallel > n:
            raise UserValueError(f'parallel={parallel} runs at once, but this machine has {n} '
                                 f'CUDA device(s): one run per device')
        return [dict(CUDA_VISIBLE_DEVICES=str(i)) for i in range(parallel)]
    t = threads or max(1, (os.cpu_count() or 1) // parallel)
    return [dict(CUDA_VISIBLE_DEVICES='', FUNDUS_THREADS=str(t), OMP_NUM_THREADS=str(t),
                 MKL_NUM_THREADS=str(t)) for _ in range(parallel)]


def _run_parallel(todo, total: int, work: Path, spec: dict, parallel: int,
                  threads: Optional[int], clock: _Clock, log) -> dict:
    """Train ``todo`` ((index, fraction, seed)) ``parallel`` at a time, each in a worker
    process of its own; returns {(fraction, seed): metrics} of those that finished."""
    lanes = _devices(min(parallel, len(todo)), threads)
    clock.lanes = len(lanes)
    where = lanes[0].get('FUNDUS_THREADS')
    log(f'{len(todo)} runs, {len(lanes)} at a time ('
        + (f'CPU processes of {where} thread(s) each' if where else 'one CUDA device each')
        + "); each run's console is in its folder's worker.log")
    queue, running, results, failed = list(todo), {}, {}, []
    free = list(range(len(lanes)))
    try:
        while queue or running:
            while queue and free:
                i, fraction, seed = queue.pop(0)
                lane = free.pop(0)
                run_dir = write_run_spec(work, spec, fraction, seed)
                logf = open(run_dir / 'worker.log', 'a')
                proc = subprocess.Popen(
                    [sys.executable, '-m', 'fundus_plugins.segmentation.worker',
                     str(run_dir / 'run.json')], stdout=logf, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env=dict(os.environ, **lanes[lane]))
                running[proc] = (i, fraction, seed, lane, logf, time.time())
                log(f'[run {i}/{total}] fraction {fraction:g}, seed {seed}: started'
                    f'{clock.eta()}')
            time.sleep(0.5)
            for proc in [p for p in running if p.poll() is not None]:
                i, fraction, seed, lane, logf, start = running.pop(proc)
                logf.close()
                free.append(lane)
                run_dir = work / run_name(fraction, seed)
                done = run_dir / 'metrics.json'
                if proc.returncode == 0 and done.is_file():
                    results[fraction, seed] = json.loads(done.read_text())
                    clock.finished(fraction, time.time() - start)
                    log(f'[run {i}/{total}] fraction {fraction:g}, seed {seed}: finished in '
                        f'{(time.time() - start) / 60:.1f} min{clock.eta()}')
                else:
                    failed.append((fraction, seed, run_dir / 'worker.log', proc.returncode))
                    log(f'[run {i}/{total}] fraction {fraction:g}, seed {seed}: FAILED (exit '
                        f'{proc.returncode}); see {run_dir / "worker.log"}: '
                        f'{last_line(run_dir / "worker.log")}')
    except BaseException:
        for proc in running:
            proc.terminate()
        for proc, (*_, logf, _) in running.items():
            proc.wait()
            logf.close()
        raise
    _raise_failed(failed, len(todo))
    return results


def write_run_spec(work: Path, spec: dict, fraction: float, seed: int) -> Path:
    """The run folder, with the ``run.json`` its worker process reads."""
    run_dir = work / run_name(fraction, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / 'run.json').write_text(json.dumps(dict(spec, fraction=fraction, seed=seed),
                                                 indent=2) + '\n')
    return run_dir


def _run_slurm(todo, total: int, work: Path, spec: dict, slurm: dict, log) -> dict:
    """``todo`` ((index, fraction, seed)) as one Slurm job array; waits for it, then
    gathers the runs' metrics. A run without metrics is named with its log, after the
    finished ones are kept."""
    dirs = [write_run_spec(work, spec, f, s) for _, f, s in todo]
    code = submit_array(dirs, work, slurm, log)
    results, failed = {}, []
    for (i, fraction, seed), run_dir in zip(todo, dirs):
        done = run_dir / 'metrics.json'
        if done.is_file():
            results[fraction, seed] = json.loads(done.read_text())
            log(f'[run {i}/{total}] fraction {fraction:g}, seed {seed}: finished')
        else:
            logf = run_dir / 'worker.log'
            failed.append((fraction, seed, logf, code))
            log(f'[run {i}/{total}] fraction {fraction:g}, seed {seed}: FAILED; see {logf}: '
                + (last_line(logf) if logf.is_file() else
                   f'no log (did the task start? Slurm output in {work / "slurm"})'))
    _raise_failed(failed, len(todo))
    return results


def _raise_failed(failed, count: int) -> None:
    if failed:
        raise RuntimeError(f'{len(failed)} of {count} segmentation runs failed (the '
                           'others finished and are kept; rerunning trains only what is '
                           'missing): ' + '; '.join(
                               f'fraction {f:g}, seed {s}: exit {rc}, log {p}'
                               for f, s, p, rc in failed))


def last_line(path: Path) -> str:
    """The last non-blank line of a log file (300 characters at most)."""
    lines = [ln for ln in path.read_text(errors='replace').splitlines() if ln.strip()]
    return lines[-1].strip()[:300] if lines else '(empty log)'


def load_results(work_dir) -> list[dict]:
    """The metrics.json of every finished run directly under ``work_dir``."""
    return [json.loads(p.read_text()) for p in sorted(Path(work_dir).glob('p*_s*/metrics.json'))]


def summarize(results: Sequence[dict], level: float = LEVEL) -> list[dict]:
    """One row per fraction: counts, and of every lesion score the mean, the sample
    standard deviation and the ``level`` t interval over seeds (``_mean``, ``_std``,
    ``_low``, ``_high``; std and interval NaN with one seed)."""
    rows = []
    for fraction in sorted({r['fraction'] for r in results}):
        group = [r for r in results if r['fraction'] == fraction]
        row = {'fraction': fraction, 'seeds': len(group),
               'num_real': group[0]['num_real'], 'num_synthetic': group[0]['num_synthetic'],
               'epochs': group[0].get('epochs')}
        for kind in KINDS:
            for score in SCORES:
                ci = t_interval([r.get(score_key(kind, score), np.nan) for r in group], level)
                for k in ('mean', 'std', 'low', 'high'):
                    row[f'{kind}_{score}_{k}'] = ci[k]
        rows.append(row)
    return rows


def _ci(row, kind, score):
    """'58.7 [55.0, 62.4]': the mean and its t interval over seeds (the mean alone with
    one seed); '-' when missing."""
    if row is None:
        return '-'
    return fmt_interval(*(row.get(f'{kind}_{score}_{k}', math.nan)
                          for k in ('mean', 'low', 'high')))


def format_table(rows: Sequence[dict], kinds: Sequence[str] = KINDS) -> str:
    lines = []
    for kind in kinds:
        lines += [f'**{KIND_TITLES[kind]}; % mean [95 % t interval over seeds] (std)**', '',
                  '| synthetic fraction | real + synthetic | epochs | seeds | precision | '
                  'recall | F1 | F1 std |',
                  '|---|---|---|---|---|---|---|---|']
        for r in rows:
            std = r.get(f'{kind}_f1_std', math.nan)
            lines.append(f"| {r['fraction'] * 100:.0f} % | {r['num_real']} + "
                         f"{r['num_synthetic']} | {r.get('epochs') or '-'} | {r['seeds']} | "
                         f"{_ci(r, kind, 'precision')} | {_ci(r, kind, 'recall')} | "
                         f"{_ci(r, kind, 'f1')} | {'-' if math.isnan(std) else f'{std:.1f}'} |")
        lines.append('')
    seeds = sorted({r['seeds'] for r in rows})
    lines.append(f'Seeds per fraction: {", ".join(map(str, seeds))} (with one seed there is '
                 'no interval over seeds). Lesion scores leave out '
                 'BG, RET and the optic disc (reported on its own in metrics.json); a class '
                 'is scored only on images whose source annotates it. In the image and pixel '
                 'means a class the model never predicts has no precision and is left out of '
                 'the precision mean.')
    return '\n'.join(lines) + '\n'


def side_by_side(fixed: Sequence[dict], equal: Sequence[dict]) -> str:
    """One markdown table: per fraction, the lesion F1 of each measure under the paper's
    fixed-epoch protocol and under the equal-updates control (rows of :func:`summarize`;
    mean [95 % t interval over seeds])."""
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
            cells += [_ci(r, kind, 'f1'), _ci(e, kind, 'f1')]
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
            cells += [_ci(by_mode[m].get(f), kind, 'f1') for m in modes]
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
    """P / R / F1 against the synthetic fraction, one panel per measure; the bars are
    the 95 % t intervals over seeds (none with one seed)."""
    # Imported here: choosing matplotlib's backend at import would set it for the whole
    # process, and only the plot needs it.
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(KINDS), figsize=(4.5 * len(KINDS), 3.4), sharey=True)
    x = [r['fraction'] * 100 for r in rows]
    for ax, kind in zip(axes, KINDS):
        for score, marker in zip(SCORES, 'osD'):
            y = np.array([r[f'{kind}_{score}_mean'] for r in rows])
            low = np.array([r[f'{kind}_{score}_low'] for r in rows])
            high = np.array([r[f'{kind}_{score}_high'] for r in rows])
            err = np.nan_to_num(np.stack([y - low, high - y]), nan=0.0)
            ax.errorbar(x, y, yerr=err, marker=marker, capsize=3, label=score)
        ax.set_title({'paper': "Son et al.'s measure (paper_*)",
                      'image': 'per image and class (image_*)',
                      'pixel': 'pixel level (pixel_*)'}[kind], fontsize=10)
        ax.set_xlabel('synthetic share of the training set (%)')
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('score (%), 95 % interval over seeds')
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


RUN_KEYS = ['row', 'fraction', 'seed', 'num_real', 'num_synthetic']


def results_rows(results: Sequence[dict], summary: Sequence[dict],
                 comparison: Sequence[dict]) -> list[dict]:
    """results.csv: one row per run (``row=run``), then one per fraction (``row=summary``,
    ``seed=all``) with each score's mean, std and 95 % t interval over seeds and, for
    fractions above 0, each measure's F1 difference to real only (paired by seed, the
    bootstrap over test images, both), its Holm-adjusted p-value and verdict."""
    out = [dict(r, row='run') for r in sorted(results, key=lambda r: (r['fraction'],
                                                                       r['seed']))]
    for row in summary:
        entry = dict(row, row='summary', seed='all')
        for c in comparison:
            if c['fraction'] != row['fraction']:
                continue
            k = c['kind']
            for name, part in (('paired', c['paired']), ('bootstrap', c['bootstrap'] or {}),
                               ('combined', c['combined'])):
                for stat in ('mean', 'low', 'high'):
                    entry[f'{k}_f1_diff_{name}_{stat}'] = part.get(stat, math.nan)
            entry[f'{k}_f1_diff_p_holm'] = c['p_holm']
            entry[f'{k}_f1_verdict'] = c['verdict']
        out.append(entry)
    return out


def write_results(results: Sequence[dict], work: Path, resamples: Optional[int] = None,
                  seed: int = 0) -> list[dict]:
    """results.csv (:func:`results_rows`), results.md (verdicts, the differences and the
    full tables), comparison.json and results.png under ``work``; returns the
    comparison rows (:func:`~.compare.compare_to_real`)."""
    summary = summarize(results)
    kwargs = {} if resamples is None else dict(resamples=resamples)
    comparison = compare_to_real(results, lambda f, s: work / run_name(f, s), seed=seed,
                                 **kwargs)
    rows = results_rows(results, summary, comparison)
    keys = RUN_KEYS + sorted({k for r in rows for k in r} - set(RUN_KEYS))
    with open(work / 'results.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k, '') for k in keys})
    write_comparison(comparison, work / 'comparison.json')
    (work / 'results.md').write_text(format_results(summary, comparison))
    plot(summary, work / 'results.png')
    return comparison


def format_results(summary: Sequence[dict], comparison: Sequence[dict]) -> str:
    """results.md: the verdicts in words (pixel measure), the differences of each measure
    with their intervals, then the full tables."""
    lines = []
    if comparison:
        lines += ['**Verdicts** (pixel F1, the difference to real only with its 95 % '
                  'interval):', '']
        lines += [f'- {verdict_sentence(c)}' for c in comparison if c['kind'] == 'pixel']
        lines.append('')
        for kind in KINDS:
            if any(c['kind'] == kind for c in comparison):
                lines += [f'**Difference to real only, {kind} F1 (points)**', '',
                          comparison_table(comparison, kind).strip(), '']
    lines.append(format_table(summary).strip())
    return '\n'.join(lines) + '\n'
