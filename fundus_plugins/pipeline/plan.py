"""The time plan: before anything trains, how long each stage will take here.

A *timing probe* runs the pipeline's first five stages (data, grades, labels, images,
gates) on a copy of the config cut to a few iterations and a few dozen phantom images
of the configured size, in ``WORK/.plan_probe`` (removed afterwards). It reads:

* each model's seconds per training iteration at its config's size and batch, after
  ``WARMUP`` iterations (:mod:`fundus_plugins.engine.timing`), its peak GPU memory, and
  the fixed cost of a training run (building the runner, the warm-up, the checkpoint):
  the training step's time less its steady iterations;
* the seconds per item of every step that works item by item: drawing the phantom,
  sampling and comparing label maps, translating, painting, testing an image, measuring
  a synthetic pair's label consistency.

:func:`estimate` then multiplies these by the configured work: iterations, maps,
images, and the segmentation runs (each its updates, from the real and synthetic counts,
the batch and the epochs of its protocol, plus its test images), those spread over the
configured parallelism (``segmentation.parallel`` lanes, or a Slurm array's
``max_running``). Stages the probe cannot time (preparing real data from the public
datasets, the report) keep their rough built-in estimates, marked as such.

``tools/run_pipeline.py CONFIG --plan`` prints the plan and trains nothing in the work
dir; a normal run makes the plan first when the work dir has none for its settings
(``plan = dict(probe=False)`` in the pipeline config turns that off), logs the time left
from it, and the report sets it beside the stages' actual times.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from ..config import load_config
from ..engine.progress_hook import HeldLog
from ..engine.timing import recording
from ..segmentation.dataset import synthetic_count
from .common import PROTOCOLS, image_modes
from .runner import PipelineRunner, _fmt_time

#: Iterations each GAN trains in the probe: WARMUP untimed, then TIMED timed.
WARMUP, TIMED = 2, 6
#: Epochs of the probe's U-Net run (of at least WARMUP + TIMED updates each); the first
#: half is its warm-up: on the CPU its first few dozen updates run about 40 % slower than
#: the rest (measured on the demo: 0.12 s against 0.08 s).
SEG_PROBE_EPOCHS = 4
#: Label maps the probe samples per grade.
PROBE_MAPS_PER_GRADE = 4
PROBED_STAGES = ('data', 'grades', 'labels', 'images', 'gates')


# ---------------------------------------------------------------------------- the probe
def _seg_loader(cfg) -> dict:
    """The segmentation config's batch size, drop_last and epochs (after the pipeline's
    cfg_options and max_epochs)."""
    seg = cfg.segmentation
    opts = dict(seg.get('cfg_options') or {}, data_root='unused', synthetic_root='unused',
                image_size=cfg.image_size)
    if 'lesion_classes' in cfg:
        opts['lesion_classes'] = list(cfg.lesion_classes)
    scfg = load_config(seg.config, opts, log=HeldLog())
    loader = scfg.train_dataloader
    epochs = seg.get('max_epochs') or scfg.train_cfg.get('max_epochs')
    if epochs is None:
        raise ValueError(f'{seg.config}: the time plan needs an epoch-based segmentation '
                         'config (train_cfg.max_epochs)')
    return dict(batch=int(loader.batch_size), drop_last=bool(loader.get('drop_last', False)),
                epochs=int(epochs))


def probe_config(cfg):
    """The pipeline config cut to the probe: a phantom of a few dozen images at the
    configured size (enough training images for WARMUP + TIMED segmentation updates),
    WARMUP + TIMED iterations of every GAN in one process, PROBE_MAPS_PER_GRADE maps
    per grade, SEG_PROBE_EPOCHS real-only segmentation epochs, gates that only warn."""
    probe = copy.deepcopy(cfg)
    iters = WARMUP + TIMED
    batch = _seg_loader(cfg)['batch']
    train = max(40, batch * iters)
    data = cfg.data
    probe.data = dict(source='phantom', num=int(math.ceil(train / 0.6)), test_fraction=0.4,
                      size=data.get('size', cfg.image_size), seed=data.get('seed', 0),
                      ungraded_fraction=data.get('ungraded_fraction', 0.2)
                      if data.get('source') == 'phantom' else 0.2)
    # One process each: the plan scales the iterations to the configured GPUs.
    probe.labels.update(max_iters=iters, num_per_grade=PROBE_MAPS_PER_GRADE, gpus=1,
                        launcher='pytorch')
    probe.images.update(max_iters=iters, gpus=1, launcher='pytorch')
    probe.images.pop('translate_devices', None)  # the probe times one device
    if 'inpaint' in image_modes(cfg):
        probe.images.inpaint.update(max_iters=iters, gpus=1, launcher='pytorch')
    probe.gates = dict(cfg.get('gates') or {}, on_fail='warn')
    seeds = list(cfg.segmentation.get('seeds', [0]))
    probe.segmentation.update(max_epochs=SEG_PROBE_EPOCHS, seeds=seeds[:1], fractions=[0],
                              parallel=1, launcher='none')
    probe.plan = dict(probe=False)
    return probe


def run_probe(cfg, work: Path, log: Callable = print) -> dict:
    """Run the probe of ``cfg`` in ``work/.plan_probe``; returns its measurements (the
    argument of :func:`estimate`)."""
    from .stages import build_stages
    probe = probe_config(cfg)
    where = Path(work) / '.plan_probe'
    if where.exists():
        shutil.rmtree(where)
    stages = [dataclasses.replace(s, gate=None) for s in build_stages()
              if s.name in PROBED_STAGES]
    said = []

    def note(line: str) -> None:  # the probe's stage lines; the rest goes to its log
        said.append(line)
        print(line, file=sys.stderr, flush=True)
        if line.startswith('[stage') and 'finished in' in line:
            log(f'  probe {line}')

    runner = PipelineRunner(probe, stages, where, log=note)
    start = time.perf_counter()
    console = Path(work) / 'plan_probe.log'
    console.parent.mkdir(parents=True, exist_ok=True)
    log(f'time plan: a timing probe ({WARMUP + TIMED} iterations of each model, '
        f'{probe.data.num} phantom images at {probe.data.size} px) in {where}; its '
        f'console in {console}')
    try:
        # Its progress bars and warnings are the probe's, not the run's: into its log.
        with open(console, 'w') as out, contextlib.redirect_stderr(out), recording() as rec:
            runner.run()
    except Exception as exc:
        raise RuntimeError(f'the time plan\'s probe failed ({type(exc).__name__}: {exc}); '
                           f'its work dir {where} is kept, its console is in {console}. '
                           'The last things it said: ' + ' | '.join(said[-3:])) from exc
    wall = time.perf_counter() - start
    steps = _step_seconds(runner.marks)
    counts = _probe_counts(probe, where)
    m = dict(wall_s=round(wall, 1), device=_device(), steps=steps, counts=counts,
             models={})
    for name, sub in (('label ACGAN', 'label_gan'), ('SPADE', 'translator'),
                      ('inpainting', 'inpaint_translator'),
                      ('U-Net', 'gates/real_only')):
        run = rec.find(where / sub)
        if run is not None:
            m['models'][name] = _model_timing(
                run, len(run['iter_s']) // 2 if name == 'U-Net' else WARMUP)
    shutil.rmtree(where, ignore_errors=True)
    return m


def _device() -> str:
    import torch
    if torch.cuda.is_available():
        return f'{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}'
    return f'CPU ({torch.get_num_threads()} torch threads)'


def _step_seconds(marks) -> dict:
    """{stage: {'1', '2', ...: seconds}} from the runner's marks (the 'end' mark closes
    a stage; string keys, as in plan.json); a stage's ``total`` is from its first step
    to its end."""
    out: dict = {}
    for (stage, step, t), nxt in zip(marks, marks[1:] + [None]):
        if step == 'end':
            continue
        if nxt is None or nxt[0] != stage:
            continue
        out.setdefault(stage, {})[str(step)] = nxt[2] - t
    for stage in {s for s, _, _ in marks}:
        times = [t for s, _, t in marks if s == stage]
        out.setdefault(stage, {})['total'] = max(times) - min(times)
    return out


def _probe_counts(probe, where: Path) -> dict:
    from ..datasets.layout import read_meta
    rows = read_meta(where / 'data')
    return dict(phantom=int(probe.data.num), maps=5 * PROBE_MAPS_PER_GRADE,
                train=sum(r.split == 'train' for r in rows),
                test=sum(r.split == 'test' for r in rows),
                iters=WARMUP + TIMED, seg_epochs=SEG_PROBE_EPOCHS)


def _model_timing(run: dict, warmup: int = WARMUP) -> dict:
    """A model's rates from its probe run: the median of the iterations after the first
    ``warmup`` (the last one also saves the checkpoint, which the median leaves out; the
    warm-up and the checkpoint are part of the run's fixed cost), the test seconds per
    image, the peak memory."""
    its = run['iter_s']
    steady = sorted(its[warmup:] or its)
    n = len(steady)
    per_iter = (steady[(n - 1) // 2] + steady[n // 2]) / 2 if n else math.nan
    out = dict(iter_s=round(per_iter, 5), iters=len(its), train_s=round(sum(its), 3),
               peak_mem_mb=run.get('peak_mem_mb'), all_iter_s=[round(t, 4) for t in its])
    if run.get('test_images'):
        out.update(test_s_per_image=round(run['test_s'] / run['test_images'], 5),
                   test_s=round(run['test_s'], 3))
    return out


# ---------------------------------------------------------------------------- the plan
def _train_seconds(step_s: float, model: dict, iters: int, gpus: int = 1) -> float:
    """A training step of ``iters`` iterations: the probe's step less its steady
    iterations (the fixed cost), plus ``iters`` steady iterations; on ``gpus`` processes
    each iteration takes 1 / gpus of the probe's (its batch split; ideal scaling, which
    the plan says)."""
    fixed = max(0.0, step_s - model['iter_s'] * model['iters'])
    return fixed + model['iter_s'] * iters / gpus


def _on(gpus: int) -> str:
    return '' if gpus == 1 else f' on {gpus} processes (probe rate / {gpus})'


def seg_runs(cfg, real: int, epochs: Optional[int] = None) -> list:
    """Every segmentation run the segmentation stage trains (the gates stage trains the
    real-only run of the first seed): (mode, protocol, fraction, seed, training images,
    epochs). ``epochs``: the segmentation config's (read from it when not given)."""
    sec = cfg.segmentation
    fractions = [float(f) for f in sec.get('fractions', [0, .25, .5, .75])]
    seeds = list(sec.get('seeds', [0]))
    protocols = list(sec.get('protocols', PROTOCOLS))
    epochs = epochs or _seg_loader(cfg)['epochs']
    runs, real_only = [], set()
    for mode in image_modes(cfg):
        for protocol in protocols:
            for f in fractions:
                for seed in seeds:
                    if f == 0:
                        if seed in real_only or seed == seeds[0]:
                            continue  # trained once (the first seed by the gates stage)
                        real_only.add(seed)
                    e = max(1, int(round(epochs * (1 - f)))) if protocol == 'equal_updates' \
                        else epochs
                    runs.append((mode, protocol, f, seed, real + synthetic_count(real, f), e))
    return runs


def _updates(images: int, epochs: int, loader: dict) -> int:
    per_epoch = images // loader['batch'] if loader['drop_last'] else \
        math.ceil(images / loader['batch'])
    return max(1, per_epoch) * epochs


def makespan(durations, lanes: int) -> float:
    """Wall time of ``durations`` on ``lanes`` parallel lanes, longest first, each to the
    lane that frees first."""
    free = [0.0] * max(1, lanes)
    for d in sorted(durations, reverse=True):
        i = free.index(min(free))
        free[i] += d
    return max(free)


def _lanes(cfg, runs: int) -> tuple:
    sec = cfg.segmentation
    if sec.get('launcher', 'none') == 'slurm':
        most = (sec.get('slurm') or {}).get('max_running')
        lanes = int(most) if most else runs
        return max(1, min(lanes, runs)), f'Slurm array, {most or "no limit on"} tasks at once'
    n = int(sec.get('parallel', 1))
    return max(1, min(n, runs)), ('one after another' if n == 1 else f'{n} at a time')


def estimate(cfg, m: dict, real: int, test: int) -> dict:
    """{stage: dict(seconds, work, peak_mem_mb, probed)} for the pipeline config ``cfg``
    from the probe's measurements ``m``, with ``real`` training and ``test`` held-out
    images."""
    from .stages import build_stages
    steps, counts, models = m['steps'], m['counts'], m['models']
    per_map = counts['maps']
    out = {}
    data = cfg.data
    if data.get('source') == 'phantom':
        per_image = steps['data']['total'] / counts['phantom']
        out['data'] = dict(seconds=per_image * data.num, probed=True,
                           work=f'{data.num} phantom images at {data.get("size")} px')
    out['grades'] = dict(seconds=steps['grades']['total'], probed=True,
                         work='the grade classifier (lesion-load features)')
    from .stages import section_gpus, translation_devices
    maps = 5 * int(cfg.labels.num_per_grade)
    lab, it = steps['labels'], int(cfg.labels.get('max_iters') or 0)
    acgan, gpus = models['label ACGAN'], section_gpus(cfg.labels)
    out['labels'] = dict(
        seconds=_train_seconds(lab['1'], acgan, it, gpus)
        + (lab['2'] + lab['3']) / per_map * maps,
        work=f'{it} iterations{_on(gpus)}; {maps} maps sampled and compared',
        peak_mem_mb=acgan.get('peak_mem_mb'), probed=True)
    img, k, secs, work, mem = steps['images'], 1, 0.0, [], []
    for mode, name, part in (('full', 'SPADE', cfg.images),
                             ('inpaint', 'inpainting', cfg.images.get('inpaint'))):
        if mode not in image_modes(cfg):
            continue
        model = models[name]
        iters = int(part.get('max_iters') or 0)
        gpus = section_gpus(part, None if mode == 'full' else cfg.images)
        # translation spreads its maps over the devices, one process each
        spread = len(translation_devices(cfg.images)) if mode == 'full' else 1
        secs += _train_seconds(img[str(k)], model, iters, gpus) + \
            img[str(k + 1)] / per_map * maps / spread
        work.append(f'{name} {iters} iterations{_on(gpus)}, {maps} '
                    + ('translations' if mode == 'full' else 'paintings')
                    + (f' on {spread} devices' if spread > 1 else ''))
        mem.append(model.get('peak_mem_mb'))
        k += 2
    out['images'] = dict(seconds=secs, work='; '.join(work), probed=True,
                         peak_mem_mb=max([x for x in mem if x] or [None], key=lambda x: x or 0))
    unet = models['U-Net']
    loader = _seg_loader(cfg)
    probe_updates = _updates(counts['train'], counts.get('seg_epochs', 1), loader)
    seg_fixed = max(0.0, steps['gates']['1'] - unet['iter_s'] * probe_updates
                    - unet.get('test_s', 0.0))
    test_s = unet.get('test_s_per_image', 0.0) * test

    def run_seconds(images, epochs):
        return seg_fixed + unet['iter_s'] * _updates(images, epochs, loader) + test_s

    modes = image_modes(cfg)
    # Label consistency segments every synthetic pair and, once, the real test images
    # (the ceiling): the probe's step less that inference is its fixed cost.
    per_image = unet.get('test_s_per_image', 0.0)
    consistency = 0.0
    for i in range(len(modes)):
        step = steps['gates'][str(2 + i)]
        fixed = max(0.0, step - (per_map + counts['test']) * per_image)
        consistency += fixed + (maps + test) * per_image
    first = run_seconds(real, loader['epochs'])
    out['gates'] = dict(seconds=first + consistency, probed=True,
                        peak_mem_mb=unet.get('peak_mem_mb'),
                        work=f'1 real-only U-Net run ({_updates(real, loader["epochs"], loader)} '
                             f'updates, {test} test images); label consistency of '
                             f'{maps} pairs x {len(modes)} mode(s)')
    runs = seg_runs(cfg, real, loader['epochs'])
    durations = [run_seconds(n, e) for *_, n, e in runs]
    lanes, how = _lanes(cfg, len(runs))
    updates = sum(_updates(n, e, loader) for *_, n, e in runs)
    out['segmentation'] = dict(seconds=makespan(durations, lanes), probed=True,
                               peak_mem_mb=unet.get('peak_mem_mb'),
                               work=f'{len(runs)} U-Net runs ({updates} updates in all, '
                                    f'{test} test images each), {how}')
    for stage in build_stages():
        if stage.name not in out:
            out[stage.name] = dict(seconds=stage.estimate(cfg), probed=False,
                                   work='(not probed: rough built-in estimate)')
    return {s.name: out[s.name] for s in build_stages()}


def plan_from(cfg, work: Path, m: dict) -> dict:
    """The plan of ``cfg`` from the probe's measurements ``m`` (:func:`estimate`)."""
    from .stages import real_training_count
    real = real_training_count(cfg, Path(work))
    test = _total_images(cfg) - real
    stages = estimate(cfg, m, real, test)
    return dict(device=m['device'], probe_s=m['wall_s'], real=real, test=test,
                stages=stages, total_s=sum(s['seconds'] for s in stages.values()))


def probe_key(cfg, work) -> dict:
    """What the probe's measurements depend on: the fingerprints of the probed stages of
    the probe's config (the models, their sizes and batches; not the GPU counts, which
    the probe does not use) and the device. The plan is worked out afresh from the
    measurements each time (iterations, runs, epochs, parallelism)."""
    from .stages import build_stages
    probe = probe_config(cfg)
    stages = [s for s in build_stages() if s.name in PROBED_STAGES]
    runner = PipelineRunner(probe, stages, Path(work) / '.plan_probe', log=lambda m: None)
    return dict(fingerprints={s.name: fp for s, fp, _ in runner.plan()}, device=_device())


def time_plan(cfg, runner: PipelineRunner, log: Callable = print,
              probe: bool = True) -> Optional[dict]:
    """The plan of ``cfg`` in ``runner``'s work dir: from the probe measured there before
    for the same settings and device, else (with ``probe``) from a new probe, whose
    measurements are saved in ``WORK/plan.json``. None without a probe."""
    key = probe_key(cfg, runner.work)
    path = plan_path(runner.work)
    saved = json.loads(path.read_text()) if path.is_file() else None
    if saved is not None and saved.get('key') == key:
        m = saved['measurements']
    elif probe:
        m = run_probe(cfg, runner.work, log)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dict(key=key, measurements=m), indent=2) + '\n')
    else:
        return None
    return plan_from(cfg, runner.work, m)


def _total_images(cfg) -> int:
    from .stages import _source_records
    from ..classes import ClassSet
    data = cfg.data
    if data.get('source') == 'phantom':
        return int(data.num)
    return len(_source_records(data, ClassSet(cfg.get('lesion_classes'))))


def format_plan(plan: dict, actual: Optional[dict] = None) -> str:
    """The plan as a markdown table (with ``actual``: stage -> seconds, beside it)."""
    head = ['stage', 'work', 'estimate', 'peak GPU memory']
    if actual is not None:
        head += ['actual', 'actual / estimate']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for name, s in plan['stages'].items():
        mem = s.get('peak_mem_mb')
        cells = [name, s['work'], _fmt_time(s['seconds']) + ('' if s['probed'] else ' (rough)'),
                 '-' if not mem else f'{mem / 1024:.1f} GiB']
        if actual is not None:
            a = actual.get(name)
            cells += ['-' if a is None else _fmt_time(a),
                      '-' if a is None or not s['seconds'] else f'{a / s["seconds"]:.2f}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    total = f'| total | | {_fmt_time(plan["total_s"])} | |'
    if actual is not None:
        done = [actual[k] for k in plan['stages'] if actual.get(k) is not None]
        total += f' {_fmt_time(sum(done))} | |' if done else ' - | |'
    lines.append(total)
    lines += ['', f'Device: {plan["device"]}; the probe took {_fmt_time(plan["probe_s"])} '
              f'(not in the total). {plan["real"]} real training and {plan["test"]} test '
              'images.']
    return '\n'.join(lines) + '\n'


def plan_path(work) -> Path:
    """Where the probe's measurements are kept: ``WORK/plan.json``."""
    return Path(work) / 'plan.json'
