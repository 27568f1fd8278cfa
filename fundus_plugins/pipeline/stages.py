"""The six stages of the mission, as :class:`~.runner.Stage` objects.

Work-dir layout (one folder per stage output):

    data/           the prepared real data (phantom or IDRiD + FGADR), 20 % test split
    real/           the same with predicted grades for ungraded images (meta.csv)
    label_gan/      label ACGAN training (checkpoints, logs, grids)
    labels/         sampled label maps, N per grade, at the image size; analysis.md
    translator/     SPADE training
    synthetic/      the translated synthetic pairs (prepared layout)
    inpaint_translator/, synthetic_inpaint/
                    with images.mode 'inpaint': the inpainting translator and the sampled
                    maps' lesions painted into real healthy training images
    gates/          the real-only segmenter of the first seed (real_only/, shared with
                    the segmentation stage), label consistency and FID / KID of each
                    image mode (quality_<mode>.json); gates.json: every gate's check
    segmentation/   the synthetic-fraction ablation (results.csv / .md / .png, with
                    intervals and verdicts); segmentation/inpaint/<protocol>/ for the
                    inpainted pairs
    report.md, report/   the report and its pictures
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np

from ..apis import (init_model, sample_label_maps, translate_layout, translate_layout_spread,
                    write_label_samples)
from ..checkpoint import find_resume_checkpoint, mmengine_checkpoint_globals
from ..classes import ClassSet
from ..config import load_config, runner_for, set_train_length
from ..datasets.layout import read_meta, write_meta
from ..datasets.prepare import format_summary, prepare_dataset, summarize
from ..datasets.sources import read_ddr, read_fgadr, read_idrid
from ..engine.progress_hook import HeldLog, show_progress, use_quiet_runner
from ..evaluation.grades import predict_grades
from ..evaluation.label_stats import (MapSet, bg_inside_fov_share, compare, format_report,
                                      load_maps)
from ..evaluation.seam import measure_seams
from ..evaluation.synthetic_quality import measure_synthetic
from ..inpaint import inpaint_lesion_maps, label_map_items
from ..phantom import write_phantom_dataset
from ..segmentation.ablation import last_line, run_ablation, run_name
from ..segmentation.dataset import synthetic_count
from ..visualization import preview_dataset
from .common import (PROTOCOLS, image_modes, model_options, protocol_dir, section_modes,
                     synthetic_dir)
from .gates import (check_section, enforce, image_checks, label_checks, save_checks)
from .report import estimate_report, run_report
from .runner import Stage

STAGE_NAMES = ('data', 'grades', 'labels', 'images', 'gates', 'segmentation', 'report')


# ---------------------------------------------------------------------------- helpers
def _train(ctx, config: str, work_dir: Path, length=None, cfg_options=None,
           desc: str = 'train', gpus: int = 1, launcher: str = 'pytorch') -> str:
    """Train ``config`` on the pipeline's real data into ``work_dir`` (resuming from its
    last checkpoint when there is one, no val loop); returns the final checkpoint. The
    console shows a progress bar labelled ``desc`` and the run's warnings; everything
    else the run logs goes to its log file (one line says where). ``gpus`` > 1:
    data-parallel in that many processes (:func:`_train_distributed`)."""
    held = HeldLog()  # what loading the config logs goes to the run's log file
    cfg = load_config(config, model_options(ctx, cfg_options), log=held)
    if length is not None:
        set_train_length(cfg, int(length))
    use_quiet_runner(cfg)
    if gpus > 1:
        _train_distributed(ctx, cfg, work_dir, gpus, desc, launcher)
    elif launcher == 'slurm':
        raise ValueError(f'{desc}: launcher slurm needs gpus > 1 (one task per GPU)')
    else:
        with mmengine_checkpoint_globals(str(work_dir)):  # a resumed stage loads its last
            runner = runner_for(cfg, work_dir, no_val=True, log=ctx.log)
            show_progress(runner, desc, ctx.log, held)
            runner.train()
    ckpt = find_resume_checkpoint(work_dir, log=ctx.log)
    if not ckpt:
        raise RuntimeError(f'{work_dir}: training wrote no checkpoint')
    return ckpt


def section_launcher(sec, parent=None) -> str:
    """A GAN training's launcher for ``gpus`` > 1: ``'pytorch'`` (torchrun on this
    machine, the default) or ``'slurm'`` (an srun job step); inherited like ``gpus``."""
    launcher = sec.get('launcher', (parent or {}).get('launcher', 'pytorch'))
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f"launcher: {launcher!r}; expected 'pytorch' (torchrun here) or "
                         "'slurm' (an srun job step of this allocation)")
    return launcher


def section_gpus(sec, parent=None) -> int:
    """A GAN training's processes: its section's ``gpus`` (``labels``, ``images``, or
    ``images.inpaint``, which takes ``images``' when it has none), else 1."""
    n = sec.get('gpus', (parent or {}).get('gpus', 1))
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f'gpus: {n!r}; expected a whole number >= 1 (processes of '
                         'data-parallel training, one per GPU)')
    return n


def _train_distributed(ctx, cfg, work_dir: Path, gpus: int, desc: str,
                       launcher: str = 'pytorch') -> None:
    """Train ``cfg`` with torchrun on ``gpus`` processes (one per GPU; on a machine without
    GPUs, CPU processes with gloo), as tools/dist_train.sh does, or with ``launcher``
    'slurm' as one ``srun`` job step of the Slurm allocation the pipeline runs in, as
    tools/slurm_train.sh does (``GPUS_PER_NODE``, ``CPUS_PER_TASK``, ``SRUN_ARGS``). The
    config's batch is
    split over them, so the run is the same experiment (batch, iterations, learning
    rates), only spread out. The merged config is written to ``work_dir`` and trained by
    tools/train.py, resuming from the work dir's last checkpoint; its console goes to
    ``work_dir/dist_train.log``."""
    import os
    import shlex
    import socket
    import subprocess
    import sys
    import time
    loader = cfg.train_dataloader
    if loader.batch_size % gpus:
        raise ValueError(f'gpus={gpus}: the batch of {cfg.filename} ({loader.batch_size}) '
                         f'does not split over {gpus} processes; choose a divisor, or set '
                         'the batch in the section\'s cfg_options')
    loader.batch_size //= gpus
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    work_dir.mkdir(parents=True, exist_ok=True)
    dumped = work_dir / 'pipeline_train_config.py'
    cfg.dump(str(dumped))
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    train_py = Path(__file__).resolve().parents[2] / 'tools' / 'train.py'
    if launcher == 'slurm':  # one job step of the allocation this pipeline runs in
        per_node = min(gpus, int(os.environ.get('GPUS_PER_NODE', 8)))
        cmd = ['srun', f'--ntasks={gpus}', f'--ntasks-per-node={per_node}',
               f'--gres=gpu:{per_node}',
               f'--cpus-per-task={int(os.environ.get("CPUS_PER_TASK", 5))}',
               '--kill-on-bad-exit=1', *shlex.split(os.environ.get('SRUN_ARGS', '')),
               sys.executable, '-u', str(train_py), str(dumped), '--work-dir', str(work_dir),
               '--launcher', 'slurm']
    else:
        cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={gpus}',
               '--master_addr=127.0.0.1', f'--master_port={port}', str(train_py),
               str(dumped), '--work-dir', str(work_dir), '--launcher', 'pytorch']
    if find_resume_checkpoint(work_dir, log=lambda m: None):
        cmd.append('--resume')
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    log_path = work_dir / 'dist_train.log'
    ctx.log(f'{desc}: {gpus} processes ({"srun" if launcher == "slurm" else "torchrun"}, '
            f'batch {loader.batch_size} each); their console in {log_path}')
    start = time.time()
    with open(log_path, 'a') as out:
        code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env)
    if code != 0:
        raise RuntimeError(f'{desc}: distributed training on {gpus} processes failed (exit '
                           f'{code}); see {log_path}: {last_line(log_path)}')
    ctx.log(f'{desc}: trained in {(time.time() - start) / 60:.1f} min')


# ---------------------------------------------------------------------------- counts
def _source_records(sec, classes) -> list:
    """The public-dataset records the data section names (read, not prepared)."""
    records = []
    if sec.get('idrid'):
        records += read_idrid(sec.idrid, classes)
    if sec.get('fgadr'):
        records += read_fgadr(sec.fgadr, classes, exclude=sec.get('fgadr_exclude'))
    if sec.get('ddr'):
        records += read_ddr(sec.ddr, classes)
    if not records:
        raise ValueError('pipeline data: source "prepare" needs at least one of idrid, '
                         'fgadr, ddr (dataset roots)')
    return records


def real_training_count(cfg, work: Path) -> int:
    """Real training images the data stage gives (or gave): from its meta.csv when it
    has run, else from the inputs (a file listing; nothing is prepared)."""
    meta = work / 'data' / 'meta.csv'
    if meta.is_file():
        return sum(r.split == 'train' for r in read_meta(work / 'data'))
    sec = cfg.data
    if sec.get('source') == 'phantom':
        n = int(sec.num)
    elif sec.get('source') == 'prepare':
        n = len(_source_records(sec, ClassSet(cfg.get('lesion_classes'))))
    else:
        raise ValueError(f'pipeline data.source must be "phantom" or "prepare", got '
                         f'{sec.get("source")!r}')
    return n - int(round(sec.get('test_fraction', 0.2) * n))


def plan_counts(cfg, work: Path, log=print) -> dict:
    """Work out, before any stage trains, how many synthetic pairs each fraction needs
    (synthetic / (real + synthetic) = p, so real x p / (1 - p)) and how many label maps
    per grade the labels stage must sample for the largest. ``labels.num_per_grade``
    ``'auto'`` (or absent) is set to that; a number too small for a fraction is an error
    naming the numbers. Returns the plan (also kept in ``cfg.counts``)."""
    fractions = [float(f) for f in cfg.segmentation.get('fractions', [0, .25, .5, .75])]
    for f in fractions:
        if not 0 <= f < 1:
            raise ValueError(f'segmentation.fractions: {f} is outside [0, 1) (the synthetic '
                             f'share synthetic / (real + synthetic))')
    real = real_training_count(cfg, work)
    need = {f: synthetic_count(real, f) for f in fractions}
    most = max(need.values(), default=0)
    per_grade = cfg.labels.get('num_per_grade', 'auto')
    auto = per_grade in (None, 'auto')
    if auto:
        per_grade = max(1, math.ceil(most / 5))
    elif not isinstance(per_grade, int) or per_grade < 1:
        raise ValueError(f"labels.num_per_grade must be 'auto' or a positive integer, got "
                         f'{per_grade!r}')
    short = {f: n for f, n in need.items() if n > 5 * per_grade}
    if short:
        f, n = max(short.items())
        raise ValueError(
            f'synthetic fraction {f:g} of {real} real training images needs {n} synthetic '
            f'pairs, but labels.num_per_grade={per_grade} samples {5 * per_grade} (5 grades '
            f'x {per_grade}). Set labels.num_per_grade to at least {math.ceil(n / 5)} or '
            f"'auto', or drop that fraction. Nothing has been trained.")
    cfg.labels.num_per_grade = per_grade
    plan = dict(real=real, synthetic={str(f): n for f, n in need.items()},
                num_per_grade=per_grade, sampled=5 * per_grade)
    cfg.counts = plan
    log(f'counts: {real} real training images; synthetic pairs per fraction '
        + ', '.join(f'{f:g}: {n}' for f, n in need.items())
        + f'; sampling {per_grade} label maps per grade ({5 * per_grade})'
        + (' (auto)' if auto else ''))
    return plan


# ---------------------------------------------------------------------------- 1 data
def run_data(ctx) -> dict:
    sec, out = ctx.section, ctx.path('data')
    classes = ClassSet(ctx.cfg.get('lesion_classes'))
    source = sec.get('source')
    if source == 'phantom':
        ctx.step(f'drawing {sec.num} phantom images at {sec.size} px', 2)
        # overwrite: the stage owns its folder; a stage stopped after the (atomic) write
        # and run again replaces it whole.
        write_phantom_dataset(out, num=sec.num, size=sec.size, seed=sec.get('seed', 0),
                              workers=sec.get('workers', 1), overwrite=True,
                              test_fraction=sec.get('test_fraction', 0.2))
        hide = float(sec.get('ungraded_fraction', 0))
        if hide > 0:
            # Like IDRiD's segmentation images: some training images come without a
            # grade. The true grades are kept aside to score the grade step.
            rows = read_meta(out)
            train = [r for r in rows if r.split == 'train']
            rng = np.random.default_rng(sec.get('seed', 0))
            hidden = {train[i].name for i in rng.choice(len(train), int(round(hide * len(train))),
                                                        replace=False)}
            with open(out / 'true_grades.csv', 'w', newline='') as f:
                w = csv.writer(f)
                w.writerow(['name', 'grade'])
                for r in rows:
                    if r.name in hidden:
                        w.writerow([r.name, r.grade])
            write_meta(out, [dataclasses.replace(r, grade=None, grade_source='ungraded')
                             if r.name in hidden else r for r in rows])
    elif source == 'prepare':
        records = _source_records(sec, classes)
        ctx.step(f'preparing {len(records)} images at {sec.size} px', 2)
        prepare_dataset(records, out, classes, size=sec.size, seed=sec.get('seed', 0),
                        test_fraction=sec.get('test_fraction', 0.2),
                        workers=sec.get('workers', 1), od_file=sec.get('od_file'),
                        od_model=sec.get('od_model'), progress=False, log=ctx.log,
                        overwrite=True)
    else:
        raise ValueError(f'pipeline data.source must be "phantom" or "prepare", got {source!r}')
    ctx.step('summary and preview', 2)
    # prepare_dataset's summary also holds the missing masks and the disc model.
    saved = out / 'summary.json'
    summary = json.loads(saved.read_text()) if saved.is_file() else summarize(out)
    (out / 'summary.md').write_text(format_summary(summary) + '\n')
    preview_dataset(out, out / 'preview.png', split='train')
    result = {'images': len(read_meta(out))}
    if summary.get('od_model'):
        result['od_model'] = summary['od_model']
    return result


def estimate_data(cfg) -> float:
    sec = cfg.data
    return 5 + (sec.get('num', 0) * 0.08 if sec.get('source') == 'phantom' else 600)


# ---------------------------------------------------------------------------- 2 grades
def run_grades(ctx) -> dict:
    ctx.step('grade classifier on the graded images; grades for the ungraded', 1)
    res = predict_grades(ctx.path('data'), ctx.path('real'), ctx.section.get('seed', 0),
                         ctx.section.get('size', 128))
    lines = [f"Ungraded images: {res['ungraded']}."]
    if res['ungraded']:
        acc = res.get('test_accuracy')
        lines.append(f"Classifier (lesion-load features of the label maps) trained on "
                     f"{res['train_images']} graded training images; accuracy on the graded "
                     f"test split: {'-' if acc is None else f'{acc:.1%}'}.")
        lines.append(f"Predicted grades: {res['predicted_per_grade']}.")
        if res.get('hidden_grade_accuracy') is not None:
            lines.append(f"Against the grades the phantom hid: "
                         f"{res['hidden_grade_accuracy']:.1%} correct.")
    (ctx.path('real') / 'grades.md').write_text('\n'.join(lines) + '\n')
    ctx.log(' '.join(lines))
    return res


# ---------------------------------------------------------------------------- 3 labels
def run_labels(ctx) -> dict:
    sec = ctx.section
    ctx.step(f'training the label ACGAN ({sec.config})', 3)
    ckpt = _train(ctx, sec.config, ctx.path('label_gan'), sec.get('max_iters'),
                  sec.get('cfg_options'), desc='label ACGAN',
                  gpus=section_gpus(sec), launcher=section_launcher(sec))
    model = init_model(load_config(sec.config, model_options(ctx, sec.get('cfg_options'))),
                       ckpt)
    size = model.generator.out_size
    scale = ctx.cfg.image_size / size
    n = sec.num_per_grade
    ctx.step(f'sampling {n} label maps per grade (x{scale:g} to {ctx.cfg.image_size} px)', 3)
    out = ctx.path('labels')
    fov = sec.get('fov', 'real')  # the fields of view of the real training maps
    # 'ema' (default) or 'orig': the generator's moving average or its last weights.
    sample_model = sec.get('sample_model', 'ema')
    rows = write_label_samples(model, list(range(5)), n, out, scale, sec.get('seed', 0),
                               grid_per_grade=6, overwrite=True, fov=fov,
                               fov_root=ctx.path('real') if fov == 'real' else None,
                               sample_model=sample_model)
    ctx.step(f'comparing them with the real maps at {size} px', 3)
    real = ctx.path('real')
    res = compare(load_maps(out, model.class_set, size),
                  load_maps(real, model.class_set, size, split='train'),
                  load_maps(real, model.class_set, size, split='test'), model.class_set,
                  seed=sec.get('seed', 0))
    # The same noise with the generator's own field of view (the paper's maps), to show
    # what taking it from real maps removes.
    raw = [(g, m) for g, _, m in sample_label_maps(model, list(range(5)), n, 1.0,
                                                     sec.get('seed', 0), progress=False,
                                                     fov='generated',
                                                     sample_model=sample_model)]
    res['bg_in_fov_generator'] = bg_inside_fov_share(
        MapSet.build([m for _, m in raw], [g for g, _ in raw], model.class_set))
    note = (f"\nWith the generator's own field of view (its argmax, as the paper writes "
            f"maps) {100 * res['bg_in_fov_generator']:.1f} % of the same maps have "
            f'background inside it; the written maps take the field of view of real '
            f'training maps ({fov!r}).\n')
    (out / 'analysis.md').write_text(format_report(res) + note)
    (out / 'analysis.json').write_text(json.dumps(res, indent=2) + '\n')
    return {'checkpoint': ckpt, 'maps': len(rows),
            'bg_in_fov': res['bg_in_fov']['generated']['all'],
            'bg_in_fov_generator': res['bg_in_fov_generator']}


def gate_labels(ctx) -> None:
    """The label gates (:mod:`.gates`) on the labels stage's analysis."""
    gates = check_section(ctx.cfg.get('gates'))
    analysis = json.loads(ctx.path('labels', 'analysis.json').read_text())
    checks = label_checks(analysis, gates['labels'], ctx.cfg.labels.get('max_iters'))
    save_checks(ctx.path('gates.json'), 'labels', checks)
    ctx.log('label gates: ' + '; '.join(
        f"{c.gate.split('.', 1)[1]} {'ok' if c.passed else 'not gated' if c.passed is None else 'FAILED'}"  # noqa: E501
        for c in checks))
    enforce(checks, gates['on_fail'], 'labels', ctx.log)


def estimate_labels(cfg) -> float:
    # About 3 iterations a second for the demo ACGAN (64 px maps, batch 16) on 2 cores.
    return 20 + cfg.labels.get('max_iters', 3000) / 3.0 + cfg.labels.num_per_grade * 0.05


# ---------------------------------------------------------------------------- 4 images
def translation_devices(sec) -> list:
    """The devices the translation of the sampled maps spreads over: the ``images``
    section's ``translate_devices`` when given (a list of names, e.g. ``['cuda:0',
    'cuda:2']``); else, with ``gpus`` = N > 1 on a CUDA ``device``, ``cuda:0`` ..
    ``cuda:N-1``; else ``device`` alone. Each device gets one process and an even share
    of the maps (:func:`~fundus_plugins.apis.translate_layout_spread`); the images are
    the same whatever the devices."""
    given = sec.get('translate_devices')
    if given is not None:
        devices = [given] if isinstance(given, str) else list(given)
        if not devices or not all(isinstance(d, str) and d for d in devices):
            raise ValueError(f'images.translate_devices: {given!r}; expected a list of '
                             f"device names such as ['cuda:0', 'cuda:1']")
        return devices
    device = str(sec.get('device', 'cpu'))
    gpus = section_gpus(sec)
    if gpus > 1 and device.startswith('cuda'):
        return [f'cuda:{i}' for i in range(gpus)]
    return [device]


#: ``images`` keys that change where the work runs but not what it makes; left out of
#: the stage's fingerprint.
IMAGES_LAUNCH_KEYS = ('translate_devices',)


def images_hashed(cfg):
    """What the images stage's work depends on: its section without
    :data:`IMAGES_LAUNCH_KEYS`."""
    sec = cfg.images
    return type(sec)({k: v for k, v in sec.items() if k not in IMAGES_LAUNCH_KEYS})


def _trained_translator(ctx, part, folder: str, desc: str, load: bool = True):
    """Train ``part.config`` (with its ``max_iters`` and ``cfg_options``, at the
    pipeline's image size) into ``folder`` of the work dir; (checkpoint, its config,
    and the model loaded on ``images.device`` when ``load``, else None)."""
    opts = dict(part.get('cfg_options') or {}, image_size=ctx.cfg.image_size)
    parent = None if part is ctx.section else ctx.section
    ckpt = _train(ctx, part.config, ctx.path(folder), part.get('max_iters'), opts, desc=desc,
                  gpus=section_gpus(part, parent), launcher=section_launcher(part, parent))
    cfg = load_config(part.config, model_options(ctx, opts))
    model = init_model(cfg, ckpt, ctx.section.get('device', 'cpu')) if load else None
    return ckpt, cfg, model


def run_images(ctx) -> dict:
    """Each of ``images.mode``: ``full`` trains SPADE on the real training pairs and
    translates the sampled label maps into synthetic/; ``inpaint`` trains the inpainting
    translator (``images.inpaint``) on them and paints the same maps' lesions into real
    healthy training images, into synthetic_inpaint/ (the same count and grades, so the
    two modes are compared at the same synthetic counts)."""
    sec = ctx.section
    modes = image_modes(ctx.cfg)
    steps = 2 * len(modes)
    result = {'modes': modes}
    if 'full' in modes:
        ctx.step(f'training the SPADE translator ({sec.config})', steps)
        devices = translation_devices(sec)
        ckpt, spade_cfg, model = _trained_translator(ctx, sec, 'translator', 'SPADE',
                                                     load=len(devices) == 1)
        ctx.step('translating the sampled label maps'
                 + (f' on {len(devices)} devices ({", ".join(devices)})'
                    if len(devices) > 1 else ''), steps)
        args = (ctx.path('labels'), synthetic_dir(ctx, 'full'), sec.get('batch_size', 'auto'),
                sec.get('amp', False))
        kw = dict(overwrite=True, workers=sec.get('workers', 'auto'),
                  writers=sec.get('writers', 'auto'))
        rows = translate_layout(model, *args, **kw) if model is not None else \
            translate_layout_spread(spade_cfg, ckpt, devices, *args, **kw)
        result.update(checkpoint=ckpt, images=len(rows))
    if 'inpaint' in modes:
        inp = sec.inpaint
        ctx.step(f'training the inpainting translator ({inp.config})', steps)
        ckpt, _, model = _trained_translator(ctx, inp, 'inpaint_translator', 'inpainting')
        ctx.step('painting the sampled maps\' lesions into healthy training images', steps)
        res = inpaint_lesion_maps(model, label_map_items(ctx.path('labels'), model.class_set),
                                  ctx.path('real'), synthetic_dir(ctx, 'inpaint'),
                                  ctx.cfg.image_size, inp.get('seed', 0), 'train',
                                  sec.get('batch_size', 'auto'), overwrite=True,
                                  progress=False)
        ctx.log(f'  {len(res.rows)} inpainted images on {res.healthy} healthy training '
                f'images; {res.empty} placed no lesion (grade-0 maps and the like: their '
                f'healthy image is used as it is)')
        result.update(inpaint_checkpoint=ckpt, inpaint_images=len(res.rows),
                      inpaint_empty=res.empty, healthy_images=res.healthy)
    return result


def estimate_images(cfg) -> float:
    modes = image_modes(cfg)
    seconds = 20.0
    if 'full' in modes:
        seconds += cfg.images.get('max_iters', 800) * 0.65 * _size_factor(cfg) + \
            5 * cfg.labels.num_per_grade / 15
    if 'inpaint' in modes:
        inp = cfg.images.inpaint
        seconds += 20 + inp.get('max_iters', 600) * 0.6 * _size_factor(cfg) + \
            5 * cfg.labels.num_per_grade / 40
    return seconds


# ---------------------------------------------------------------------------- 5 gates
def gates_hashed(cfg) -> dict:
    """What the gates stage's work depends on (its thresholds and on_fail do not: they are
    applied afresh on every run): the Inception file, the device, and the real-only
    segmentation run of the first seed."""
    seg = cfg.segmentation
    gates = cfg.get('gates') or {}
    return dict(inception_path=gates.get('inception_path'), device=gates.get('device'),
                segmentation=dict(config=seg.config, cfg_options=seg.get('cfg_options'),
                                  max_epochs=seg.get('max_epochs'),
                                  seed=list(seg.get('seeds', [0]))[0]))


def real_only_dir(ctx) -> Path:
    """The gates stage's real-only segmentation run (fraction 0, the first seed)."""
    seed0 = list(ctx.cfg.segmentation.get('seeds', [0]))[0]
    return ctx.path('gates', 'real_only', run_name(0.0, seed0))


def _seg_options(ctx, mode: str = 'full') -> dict:
    opts = model_options(ctx, ctx.cfg.segmentation.get('cfg_options'))
    opts.update(synthetic_root=str(synthetic_dir(ctx, mode)), image_size=ctx.cfg.image_size)
    return opts


def run_gates(ctx) -> dict:
    """Train the real-only segmenter of the first seed (it is the segmentation stage's
    real-only run of that seed, shared), then measure each image mode's synthetic pairs
    with it: label consistency, FID / KID, and the seams of inpainting."""
    seg, gates = ctx.cfg.segmentation, check_section(ctx.section)
    modes = image_modes(ctx.cfg)
    run = real_only_dir(ctx)
    ctx.step(f'the real-only segmenter ({seg.config}, seed {run.name.split("_s")[-1]}) that '
             'judges the synthetic images', 1 + len(modes))
    run_ablation(seg.config, str(run.parent), [0.0], [int(run.name.split('_s')[-1])],
                 _seg_options(ctx), log=ctx.log, max_epochs=seg.get('max_epochs'),
                 quiet=True, threads=seg.get('threads'))
    seg_cfg = load_config(seg.config, dict(_seg_options(ctx)), log=HeldLog())
    ckpt = find_resume_checkpoint(run, log=ctx.log)
    result = {}
    for mode in modes:
        ctx.step(f'label consistency{", FID / KID" if gates["inception_path"] else ""} of '
                 f'the {mode} synthetic pairs', 1 + len(modes))
        quality = measure_synthetic(seg_cfg, ckpt, str(synthetic_dir(ctx, mode)),
                                    str(ctx.path('real')), gates['inception_path'],
                                    gates['device'], progress=False)
        if mode == 'inpaint':
            quality['seams'] = measure_seams(synthetic_dir(ctx, 'inpaint'), ctx.path('real'),
                                             progress=False)
        (ctx.path('gates') / f'quality_{mode}.json').write_text(
            json.dumps(quality, indent=2) + '\n')
        lc = quality['label_consistency']['synthetic']
        result[mode] = {c: v['f1'] for c, v in lc.items() if not math.isnan(v['f1'])}
    return {'label_consistency_f1': result, 'real_only_run': str(run)}


def gated_classes(cfg) -> list:
    """The classes whose label consistency is gated: the configured ones, in order."""
    return [c for c in ClassSet(cfg.get('lesion_classes')).codes if c not in ('BG', 'RET')]


def gate_images(ctx) -> None:
    """The image gates (:mod:`.gates`) on each mode's measured quality."""
    gates = check_section(ctx.cfg.get('gates'))
    checks = []
    for mode in image_modes(ctx.cfg):
        part = ctx.cfg.images if mode == 'full' else ctx.cfg.images.inpaint
        quality = json.loads((ctx.path('gates') / f'quality_{mode}.json').read_text())
        checks += image_checks(quality, mode, gates['images'], gated_classes(ctx.cfg),
                               part.get('max_iters'), part.config)
    save_checks(ctx.path('gates.json'), 'images', checks)
    failed = [c.gate for c in checks if c.passed is False]
    ctx.log(f'image gates: {sum(c.passed is True for c in checks)} passed, '
            f'{len(failed)} failed' + (f' ({", ".join(failed)})' if failed else '')
            + f', {sum(c.passed is None for c in checks)} not gated')
    enforce(checks, gates['on_fail'], 'gates', ctx.log)


def _estimated_real(cfg) -> float:
    """The real training images, roughly, for the time estimates (no file is read)."""
    return (1 - cfg.data.get('test_fraction', 0.2)) * cfg.data.get('num', 600)


def _size_factor(cfg) -> float:
    """Per-image cost relative to 128 px, where the estimates' rates were measured (2
    CPU cores); linear rather than quadratic in the side, since small images are
    dominated by per-batch overheads (measured: 64 px about half of 128)."""
    return max(0.25, cfg.get('image_size', 128) / 128.0)


def estimate_gates(cfg) -> float:
    epochs = cfg.segmentation.get('max_epochs') or 30
    return 20 + _estimated_real(cfg) * epochs * _size_factor(cfg) / 22.0 + 12 + \
        len(image_modes(cfg)) * 5 * cfg.labels.num_per_grade * 0.05


# ---------------------------------------------------------------------------- 6 segmentation
def run_segmentation(ctx) -> dict:
    """The ablation for each protocol and each images mode (synthetic/ and, with
    ``inpaint``, synthetic_inpaint/); the real-only run is the same everywhere and is
    trained once."""
    sec = ctx.section
    fractions = list(sec.get('fractions', [0, 0.25, 0.5, 0.75]))
    seeds = list(sec.get('seeds', [0]))
    protocols = list(sec.get('protocols', PROTOCOLS))
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad or not protocols:
        raise ValueError(f'segmentation.protocols: {bad or protocols}; expected some of '
                         f'{list(PROTOCOLS)}')
    modes = image_modes(ctx.cfg)
    first = protocol_dir(ctx, protocols[0], modes[0])
    if 0.0 in [float(f) for f in fractions]:  # the gates stage's real-only run
        gated = real_only_dir(ctx)
        share_real_only(gated, first / gated.name)
    for mode in modes:
        opts = _seg_options(ctx, mode)
        for protocol in protocols:
            ctx.step(f'{sec.config} at synthetic fractions {fractions}, seeds {seeds}, '
                     f'{protocol.replace("_", " ")}'
                     + ('' if modes == ['full'] else f', {mode} synthesis'),
                     len(protocols) * len(modes))
            work = protocol_dir(ctx, protocol, mode)
            if work != first and 0.0 in [float(f) for f in fractions]:
                # The real-only run is the same under every protocol and mode: reuse it.
                for seed in seeds:
                    share_real_only(first / run_name(0.0, seed), work / run_name(0.0, seed))
            run_ablation(sec.config, str(work), fractions, seeds, opts, log=ctx.log,
                         max_epochs=sec.get('max_epochs'),
                         equal_updates=protocol == 'equal_updates', quiet=True,
                         parallel=int(sec.get('parallel', 1)), threads=sec.get('threads'),
                         launcher=sec.get('launcher', 'none'), slurm=sec.get('slurm'))
    return {'runs': len(fractions) * len(seeds) * len(protocols) * len(modes),
            'protocols': protocols, 'modes': modes}


#: Keys of the segmentation section that say where its runs go, not what they compute:
#: left out of the stage's fingerprint, so that running a finished ablation again with
#: more GPUs, or on Slurm, trains nothing again.
LAUNCH_KEYS = ('parallel', 'launcher', 'slurm')


def segmentation_hashed(cfg) -> dict:
    """What the segmentation stage's work depends on: its section without
    :data:`LAUNCH_KEYS` (``threads`` stays: a run's sums depend on it)."""
    sec = cfg.segmentation
    sec = sec.to_dict() if hasattr(sec, 'to_dict') else dict(sec)
    return {k: v for k, v in sec.items() if k not in LAUNCH_KEYS}


def share_real_only(src: Path, dst: Path) -> None:
    """Copy a finished real-only run's scores (metrics.json and its per-image files) into
    another protocol's or mode's folder, so that it is not trained again there."""
    if not (src / 'metrics.json').is_file() or (dst / 'metrics.json').exists():
        return
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob('per_image_*.npz')):
        shutil.copy(f, dst / f.name)
    shutil.copy(src / 'metrics.json', dst / 'metrics.json')  # last: it marks the run done


def estimate_segmentation(cfg) -> float:
    sec = cfg.segmentation
    n_real = _estimated_real(cfg)
    epochs = sec.get('max_epochs') or 30
    fractions = sec.get('fractions', [0, .25, .5, .75])
    protocols = sec.get('protocols', PROTOCOLS)
    images = 0.0
    if 'fixed_epochs' in protocols:
        images += sum(n_real / (1 - f) for f in fractions)
    if 'equal_updates' in protocols:
        images += sum(n_real for f in fractions if f > 0 or 'fixed_epochs' not in protocols)
    modes = len(image_modes(cfg))
    if modes > 1:  # the real-only run is shared
        images = modes * images - (modes - 1) * (n_real if 0 in fractions else 0)
    runs = len(fractions) * len(protocols) * modes
    return len(sec.get('seeds', [0])) * (images * epochs * _size_factor(cfg) / 22.0
                                         + 12 * runs)


# ---------------------------------------------------------------------------- stage list
def build_stages() -> list:
    return [
        Stage('data', 'the real data and its held-out test split', ['data'], run_data,
              estimate_data),
        Stage('grades', 'grades for ungraded images', ['real'], run_grades, lambda cfg: 10),
        Stage('labels', 'label ACGAN: train, sample N maps per grade, compare',
              ['label_gan', 'labels'], run_labels, estimate_labels,
              lambda sec: [sec.config], gate=gate_labels),
        Stage('images', 'SPADE: train on real pairs, translate the sampled maps (and / or '
              'paint their lesions into healthy images)',
              ['translator', 'synthetic', 'inpaint_translator', 'synthetic_inpaint'],
              run_images, estimate_images,
              lambda sec: [sec.config] + ([sec.inpaint.config]
                                          if 'inpaint' in section_modes(sec) else []),
              lambda cfg: [out for mode, outs in (('full', ['translator', 'synthetic']),
                                                  ('inpaint', ['inpaint_translator',
                                                               'synthetic_inpaint']))
                           if mode in image_modes(cfg) for out in outs],
              hashed=images_hashed),
        Stage('gates', 'quality gates: the real-only segmenter, label consistency, FID / KID',
              ['gates'], run_gates, estimate_gates,
              lambda hashed: [hashed['segmentation']['config']], hashed=gates_hashed,
              gate=gate_images),
        Stage('segmentation', 'segmentation at each synthetic fraction, with seeds',
              ['segmentation'], run_segmentation, estimate_segmentation,
              lambda sec: [sec['config']], hashed=segmentation_hashed),
        Stage('report', 'report.md: figure, label and image metrics, table',
              ['report.md', 'report'], run_report, estimate_report),
    ]
