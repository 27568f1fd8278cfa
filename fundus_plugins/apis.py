"""Loading trained models from a config and a checkpoint, for the tools."""
from __future__ import annotations

import os.path as osp
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import load_state_dict
from tqdm import tqdm

from .checkpoint import load_checkpoint
from .config import build_model
from .datasets.layout import MetaRow, label_path, read_classes, read_meta, write_meta
from .datasets.prepare import atomic_root, check_output_root, init_layout, write_pair
from .models.label_gan import FOV_MODES, RealFovPool, maps_with_fov
from .models.spade import onehot_from_labels
from .visualization import save_rgb, tile_grid


def unwrap_state_dict(state: dict, model_keys) -> dict:
    """Keys of a checkpoint saved from a distributed GAN run, as the bare model names them.

    mmengine's ``MMSeparateDistributedDataParallel`` wraps the generator and the
    discriminator in place, so their weights are saved as ``generator.module.*``; a key
    the model lacks whose first ``.module.`` removed names one it has is renamed.
    """
    out = {}
    for key, value in state.items():
        if key not in model_keys:
            head, sep, tail = key.partition('.module.')
            if sep and f'{head}.{tail}' in model_keys:
                key = f'{head}.{tail}'
        out[key] = value
    return out


def init_model(cfg: Config, checkpoint: str, device: str = 'cpu') -> torch.nn.Module:
    """Build ``cfg.model`` and load ``checkpoint`` into it (strictly), whether it was
    saved by a single process or by distributed training."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'{checkpoint}: checkpoint not found')
    if cfg.model.get('type') == 'SPADEGAN':
        # Inference needs no perceptual loss: do not ask for the VGG weights.
        cfg = cfg.copy()
        cfg.model = dict(cfg.model, loss_config=dict(cfg.model.get('loss_config') or {},
                                                     lambda_vgg=0.0))
    model = build_model(cfg)
    ckpt = load_checkpoint(checkpoint)
    state = ckpt.get('state_dict', ckpt)
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    load_state_dict(model, unwrap_state_dict(state, set(model.state_dict())), strict=True)
    return model.to(device).eval()


def add_fov_arguments(parser) -> None:
    """The ``--fov`` and ``--fov-root`` options of the tools that sample label maps
    (resolve them with :func:`resolve_fov`)."""
    parser.add_argument(
        '--fov', default='auto', choices=['auto', 'real', 'fitted', 'generated'],
        help="field of view of the maps: real (a real training map's, from --fov-root or "
             "the config's data_root), fitted (a circle fitted to the generator's), "
             "generated (the generator's argmax, the paper); auto: real when a prepared "
             'root is at hand, else fitted')
    parser.add_argument('--fov-root', help='prepared root whose training maps give the '
                                           "fields of view (default: the config's data_root)")


def resolve_fov(fov: str, fov_root=None, cfg=None, log=print):
    """(mode, root) for the tools' ``--fov``: ``'auto'`` takes the real fields of view of
    ``fov_root`` or of the config's ``data_root`` when that is a prepared root, and a
    fitted circle otherwise (saying so); ``'real'`` needs such a root."""
    if fov not in FOV_MODES + ('auto',):
        raise ValueError(f'--fov must be one of {FOV_MODES + ("auto",)}, got {fov!r}')
    if fov not in ('auto', 'real'):
        return fov, None
    root = fov_root or (cfg.get('data_root') if cfg is not None else None)
    if root and osp.isfile(osp.join(str(root), 'meta.csv')):
        log(f'field of view of the sampled maps: real ones from {root}')
        return 'real', str(root)
    if fov == 'real':
        raise FileNotFoundError(f'--fov real: {root!r} is not a prepared root (no meta.csv); '
                                f'give --fov-root')
    log(f'field of view of the sampled maps: a circle fitted to the generator\'s (no '
        f'prepared root at {root!r}; give --fov-root for real ones)')
    return 'fitted', None


def progress_bar(iterable=None, *, desc: str, unit: str, total=None,
                 progress: bool = True):
    """The progress bar of the tools' long loops: tqdm on stderr, over ``iterable`` (or
    advanced with ``update``), ``desc`` naming what is counted and ``unit`` one item;
    ``total`` (default: ``len(iterable)`` where it has one) is known up front so the bar
    ends at ``n/n``. ``progress=False`` writes nothing."""
    return tqdm(iterable, desc=desc, unit=unit, total=total, file=sys.stderr,
                disable=not progress)


def sample_label_maps(model, grades, num_per_grade, scale=2.0, seed=0, batch_size=32,
                      sample_model='ema', progress=True, fov='generated', fov_root=None):
    """Yield (grade, index, uint8 map) for every requested map; seeded per grade.

    ``fov``: where the maps' field of view comes from (``'real'``: a real training map's
    of ``fov_root``, drawn by the seed; ``'fitted'``: a circle fitted to the generator's;
    ``'generated'``: the generator's argmax); see
    :mod:`fundus_plugins.models.label_gan.fov`. ``progress``: a bar of the maps
    ('label maps', one bar for all grades).
    """
    if fov not in FOV_MODES:
        raise ValueError(f'fov must be one of {FOV_MODES}, got {fov!r}')
    if fov == 'real' and fov_root is None:
        raise ValueError("fov='real' needs fov_root, a prepared root of real label maps")
    pool = None
    if fov == 'real':
        side = int(model.generator.out_size * scale)  # F.interpolate floors
        pool = RealFovPool(fov_root, side)

    total = len(grades) * num_per_grade
    # A with-block: the bar is closed even when the caller stops early or an error is raised.
    with progress_bar(desc='label maps', unit='map', total=total, progress=progress) as bar:
        for grade in grades:
            if grade not in range(5):
                raise ValueError(f'grade {grade} is outside 0-4')
            gen = torch.Generator().manual_seed(seed * 1000 + grade)
            noise = torch.randn(num_per_grade, model.noise_size, generator=gen)
            flips = torch.rand(num_per_grade, generator=gen) < 0.5
            rng = np.random.default_rng([seed, grade])
            for start in range(0, num_per_grade, batch_size):
                z = noise[start:start + batch_size]
                probs = model.sample(torch.full((len(z),), grade), noise=z,
                                     sample_model=sample_model,
                                     flips=flips[start:start + batch_size])
                maps = maps_with_fov(probs.float(), scale, fov, pool, rng)
                maps = maps.cpu().numpy().astype(np.uint8)
                for k, m in enumerate(maps):
                    yield grade, start + k, m
                bar.update(len(z))


def write_label_samples(model, grades, num_per_grade, out, scale=2.0, seed=0,
                        batch_size=32, sample_model='ema', grid_per_grade=8,
                        overwrite=False, progress=True, fov='generated',
                        fov_root=None) -> list:
    """Sample ``num_per_grade`` label maps of each grade (:func:`sample_label_maps`, with
    its ``fov`` and ``fov_root``) and write them as a label-only prepared layout at
    ``out`` (labels/, meta.csv with grade_source=synthetic, classes.json) with grid.png,
    one row per grade; ``progress``: the bar of :func:`sample_label_maps`. Returns the meta
    rows."""

    classes = model.class_set
    rows, grid = [], {g: [] for g in grades}
    od_source = 'generated' if 'OD' in classes.codes else ''
    with atomic_root(out, overwrite) as tmp:  # swapped in only when whole
        init_layout(tmp, classes, with_images=False)
        for grade, i, label in sample_label_maps(model, grades, num_per_grade, scale, seed,
                                                 batch_size, sample_model, progress, fov,
                                                 fov_root):
            name = f'acgan_g{grade}_{i:05d}'
            write_pair(tmp, name, None, label)
            rows.append(MetaRow(name, grade, 'synthetic', 'acgan', 'train', None, od_source))
            if len(grid[grade]) < grid_per_grade:
                grid[grade].append(classes.colorize(label))
        write_meta(tmp, rows)
        save_rgb(tmp / 'grid.png', tile_grid([grid[g] for g in grades],
                                              row_titles=[f'grade {g}' for g in grades],
                                              pad=2, classes=classes))
    return rows


def translate_label_maps(model, maps, batch_size: int = 8, amp: bool = False,
                         sample_model: str = 'ema'):
    """Yield uint8 RGB images (H, W, 3) for an iterable of uint8 label maps (H, W) in the
    model's class order, translated in batches by a SPADE model; each map is resized
    (nearest) to the model's image size first. It shows no progress bar: its callers
    (:func:`translate_layout`, :func:`synthesize_pairs`) count what they write."""
    size = model.generator.out_size
    num_classes = len(model.class_set)
    device = model.device

    def run(batch):
        x = onehot_from_labels(torch.from_numpy(np.stack(batch)), num_classes)
        with torch.autocast(device_type=device.type, enabled=amp and device.type == 'cuda'):
            out = model.translate(x, sample_model)
        return out.float().round().byte().permute(0, 2, 3, 1).cpu().numpy()

    batch = []
    for m in maps:
        if m.shape != (size, size):
            m = cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)
        if int(m.max()) >= num_classes:
            raise ValueError(f'label value {int(m.max())} outside the model\'s '
                             f'{num_classes} classes {list(model.class_set.codes)}')
        batch.append(m)
        if len(batch) == batch_size:
            yield from zip(batch, run(batch))
            batch = []
    if batch:
        yield from zip(batch, run(batch))


def translate_layout(model, labels_root, out, batch_size: int = 8, amp: bool = False,
                     sample_model: str = 'ema', overwrite: bool = False,
                     progress: bool = True) -> list:
    """Translate every label map of a (label-only) prepared root into a complete prepared
    layout at ``out`` (images, labels, meta.csv with grade_source=synthetic,
    classes.json); returns the meta rows written. ``progress``: a bar of the images
    written ('translating')."""

    src = Path(labels_root)
    rows = read_meta(src)
    stored = read_classes(src)
    lut = model.class_set.remap_from(stored)
    absent = [c for c in model.class_set.lesion_codes if c not in stored.codes]
    if absent:
        warnings.warn(f'{src}: its label maps have no {absent} (classes '
                      f'{list(stored.codes)}); the translator draws '
                      f'{list(model.class_set.codes)}, so the output classes.json lists '
                      f'{absent} but no pixel holds them')

    def maps():
        for row in rows:
            lab = cv2.imread(str(label_path(src, row.name)), cv2.IMREAD_UNCHANGED)
            if lab is None or lab.ndim != 2:
                raise ValueError(f'{label_path(src, row.name)}: missing or not a label map')
            if lab.size and int(lab.max()) >= len(stored):
                raise ValueError(f'{label_path(src, row.name)}: label value {int(lab.max())} '
                                 f'outside 0..{len(stored) - 1} (its root\'s classes.json '
                                 f'lists {list(stored.codes)})')
            yield lut[lab]

    written = []
    with atomic_root(out, overwrite) as tmp:  # swapped in only when whole
        init_layout(tmp, model.class_set)
        results = translate_label_maps(model, maps(), batch_size, amp, sample_model)
        for row, (label, image) in progress_bar(zip(rows, results), desc='translating',
                                                unit='img', total=len(rows),
                                                progress=progress):
            write_pair(tmp, row.name, image, label)
            written.append(MetaRow(row.name, row.grade, 'synthetic', 'spade', 'train', None,
                                   row.od_source))
        write_meta(tmp, written)
    return written


def synthesize_pairs(label_model, spade, counts: dict, out, seed: int = 0,
                     batch_size: int = 8, amp: bool = False, overwrite: bool = False,
                     name_prefix: str = 'syn', progress: bool = True,
                     fov='generated', fov_root=None) -> list:
    """``counts[grade]`` synthetic (image, label) pairs per grade, from a label ACGAN and
    a SPADE translator, written as a prepared layout at ``out`` with grid.png (one column
    per grade: label map and image). Seeded per grade; ``fov`` / ``fov_root`` as in
    :func:`sample_label_maps`. ``progress``: two bars, one after the other: the label maps
    sampled ('label maps', all grades) and the pairs translated and written
    ('synthesizing'). Returns the meta rows."""

    if label_model.class_set != spade.class_set:
        raise ValueError(f'the label model writes {list(label_model.class_set.codes)} but '
                         f'the translator reads {list(spade.class_set.codes)}')
    scale = spade.generator.out_size / label_model.generator.out_size
    check_output_root(out, overwrite)  # before the sampling, not after it
    sampled = []
    total = sum(n for n in counts.values() if n > 0)
    with progress_bar(desc='label maps', unit='map', total=total, progress=progress) as bar:
        for grade, n in sorted(counts.items()):
            if n > 0:
                for item in sample_label_maps(label_model, [grade], n, scale, seed,
                                              batch_size * 4, progress=False, fov=fov,
                                              fov_root=fov_root):
                    sampled.append(item)
                    bar.update()
    rows, grid = [], {}
    with atomic_root(out, overwrite) as tmp:  # swapped in only when whole
        init_layout(tmp, spade.class_set)
        results = translate_label_maps(spade, (m for _, _, m in sampled), batch_size, amp)
        for (grade, i, _), (label, image) in progress_bar(
                zip(sampled, results), desc='synthesizing', unit='pair', total=len(sampled),
                progress=progress):
            name = f'{name_prefix}_g{grade}_{i:05d}'
            write_pair(tmp, name, image, label)
            rows.append(MetaRow(name, grade, 'synthetic', 'synthetic', 'train', None,
                                'generated' if 'OD' in spade.class_set.codes else ''))
            if grade not in grid:
                grid[grade] = (spade.class_set.colorize(label), image)
        write_meta(tmp, rows)
        cols = sorted(grid)
        if cols:
            save_rgb(tmp / 'grid.png', tile_grid(
                [[grid[g][0] for g in cols], [grid[g][1] for g in cols]],
                col_titles=[f'grade {g}' for g in cols], row_titles=['label', 'image'],
                classes=spade.class_set))
    return rows
