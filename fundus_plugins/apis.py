"""Loading trained models from a config and a checkpoint, for the tools."""
from __future__ import annotations

import math
import os
import os.path as osp
import queue
import shutil
import sys
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from itertools import islice
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import load_state_dict
from tqdm import tqdm

from .checkpoint import check_checkpoint_fits, load_checkpoint
from .config import build_model
from .datasets.layout import MetaRow, label_path, read_classes, read_meta, write_meta
from .datasets.prepare import (atomic_root, check_output_root, check_room, existing_parent,
                                file_bytes_on_disk, init_layout, write_pair)
from .errors import UserFileNotFoundError, UserValueError
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
    saved by a single process or by distributed training. A checkpoint of another model
    (or of other settings) is a :class:`~.errors.WrongCheckpoint` saying which model it
    holds and which one the config builds."""
    if not osp.isfile(checkpoint):
        raise UserFileNotFoundError(f'{checkpoint}: checkpoint not found; give the path of '
                                    f'a checkpoint (.pth) saved by training')
    if cfg.model.get('type') in ('SPADEGAN', 'SPADEInpaintGAN'):
        # Inference needs no perceptual loss: do not ask for the VGG weights.
        cfg = cfg.copy()
        cfg.model = dict(cfg.model, loss_config=dict(cfg.model.get('loss_config') or {},
                                                     lambda_vgg=0.0))
    model = build_model(cfg)
    ckpt = load_checkpoint(checkpoint)
    state = ckpt.get('state_dict', ckpt)
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    own = model.state_dict()
    state = unwrap_state_dict(state, set(own))
    # A checkpoint of another model is named as such (not mmengine's lists of keys).
    check_checkpoint_fits(own, state, ckpt, checkpoint, cfg.model.get('type'),
                          getattr(cfg, 'filename', None) or 'the config')
    load_state_dict(model, state, strict=True)
    return model.to(device).eval()


def resolve_fov(fov: str, fov_root=None, cfg=None, log=print):
    """(mode, root) for the tools' ``--fov`` (``add_fov_arguments`` of tools/_tool.py):
    ``'auto'`` takes the real fields of view of ``fov_root`` or of the config's
    ``data_root`` when that is a prepared root, and a
    fitted circle otherwise (saying so); ``'real'`` needs such a root."""
    if fov not in FOV_MODES + ('auto',):
        raise UserValueError(f'--fov must be one of {FOV_MODES + ("auto",)}, got {fov!r}')
    if fov not in ('auto', 'real'):
        return fov, None
    root = fov_root or (cfg.get('data_root') if cfg is not None else None)
    if root and osp.isfile(osp.join(str(root), 'meta.csv')):
        log(f'field of view of the sampled maps: real ones from {root}')
        return 'real', str(root)
    if fov == 'real':
        raise UserFileNotFoundError(f'--fov real: {root!r} is not a prepared root (no meta.csv); '
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


#: Rows of noise drawn at once by :class:`RandomRows` (its memory, whatever the count).
NOISE_CHUNK = 4096


class RandomRows:
    """The rows of ``torch.randn(n, width, generator=gen)`` (``kind='normal'``) or of
    ``torch.rand(n, generator=gen)`` (``'uniform'``, ``width`` None), handed out a few at a
    time (:meth:`take`) and equal to drawing them at once, without ever holding more than
    a chunk (``chunk`` rows, about).

    torch's CPU normal sampler fills 16 values at a time from uniform draws and redraws
    the last 16 of a tensor whose size is not a multiple of 16; so a chunk holds a
    multiple of 16 values, and a remainder of fewer than 16 values is drawn with the chunk
    before it. :meth:`generator_after` is a generator in the state ``gen`` has after the
    whole draw (what the next draw from it would start from), reached chunk by chunk: its
    time grows with the count (about a second per 10^8 values), its memory does not.
    """

    def __init__(self, gen: torch.Generator, n: int, width, kind: str,
                 chunk: Optional[int] = None):
        self.start_state = gen.get_state()
        self.gen, self.n, self.width, self.kind = gen, int(n), width, kind
        step = 1 if width is None else 16 // math.gcd(int(width), 16)
        self.rows = max(step, int(chunk or NOISE_CHUNK) // step * step)
        self.done = 0           # rows drawn from the generator
        self.buffer = None      # drawn, not yet handed out
        self.at = 0

    def _chunk_size(self, done: int) -> int:
        take = min(self.rows, self.n - done)
        rest = self.n - done - take
        if self.width is not None and 0 < rest and rest * self.width < 16:
            take += rest
        return take

    def _draw(self, gen: torch.Generator, rows: int) -> torch.Tensor:
        if self.kind == 'normal':
            return torch.randn(rows, self.width, generator=gen)
        return torch.rand(rows, generator=gen)

    def take(self, rows: int) -> torch.Tensor:
        parts = []
        while rows > 0:
            if self.buffer is None or self.at == len(self.buffer):
                if self.done >= self.n:
                    raise ValueError(f'RandomRows: asked for more than its {self.n} rows')
                size = self._chunk_size(self.done)
                self.buffer, self.at = self._draw(self.gen, size), 0
                self.done += size
            part = self.buffer[self.at:self.at + rows]
            self.at += len(part)
            rows -= len(part)
            parts.append(part)
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def generator_after(self) -> torch.Generator:
        gen = torch.Generator()
        gen.set_state(self.start_state)
        done = 0
        while done < self.n:
            size = self._chunk_size(done)
            self._draw(gen, size)
            done += size
        return gen


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
            # The noise of all the grade's maps, then their flips, as one draw each would
            # give them, but a batch at a time: memory does not grow with the count.
            noise = RandomRows(gen, num_per_grade, model.noise_size, 'normal')
            flips = RandomRows(noise.generator_after(), num_per_grade, None, 'uniform')
            rng = np.random.default_rng([seed, grade])
            for start in range(0, num_per_grade, batch_size):
                z = noise.take(min(batch_size, num_per_grade - start))
                probs = model.sample(torch.full((len(z),), grade), noise=z,
                                     sample_model=sample_model,
                                     flips=flips.take(len(z)) < 0.5)
                maps = maps_with_fov(probs.float(), scale, fov, pool, rng)
                maps = maps.cpu().numpy().astype(np.uint8)
                for k, m in enumerate(maps):
                    yield grade, start + k, m
                bar.update(len(z))


def check_label_room(model, grades, num_per_grade, out, scale=2.0, seed=0, batch_size=32,
                     sample_model='ema', fov='generated', fov_root=None) -> None:
    """Refuse (:func:`~.datasets.prepare.check_room`) ``num_per_grade`` maps of each of
    ``grades`` that the disk holding ``out`` has no room for. Their size is bounded first by
    an uncompressed map; only when that bound does not fit are a few maps sampled and
    encoded to measure it."""
    count = len(grades) * int(num_per_grade)
    side = int(model.generator.out_size * scale)  # F.interpolate floors
    meta_row = 80  # bytes of a meta.csv row, about
    bound = file_bytes_on_disk(side * side + 2048, out) + meta_row
    if count * bound * 1.05 + 64e6 <= shutil.disk_usage(existing_parent(out)).free:
        return
    few = min(int(num_per_grade), 8)
    sizes = [len(cv2.imencode('.png', m, [cv2.IMWRITE_PNG_COMPRESSION, 3])[1])
             for _, _, m in sample_label_maps(model, grades[:1], few, scale, seed,
                                              min(batch_size, few), sample_model, False,
                                              fov, fov_root)]
    each = np.mean([file_bytes_on_disk(n, out) for n in sizes]) + meta_row
    check_room(out, count, each, f'label maps of {side} x {side} px',
               fewer='ask for fewer (--num-per-grade)')


def write_label_samples(model, grades, num_per_grade, out, scale=2.0, seed=0,
                        batch_size=32, sample_model='ema', grid_per_grade=8,
                        overwrite=False, progress=True, fov='generated',
                        fov_root=None) -> list:
    """Sample ``num_per_grade`` label maps of each grade (:func:`sample_label_maps`, with
    its ``fov`` and ``fov_root``) and write them as a label-only prepared layout at
    ``out`` (labels/, meta.csv with grade_source=synthetic, classes.json) with grid.png,
    one row per grade; ``progress``: the bar of :func:`sample_label_maps`. Returns the meta
    rows. The noise is drawn a batch at a time, so memory does not grow with the count
    (but for the meta rows, a few hundred bytes a map); a count whose maps cannot fit on
    the disk is refused before anything is written (:func:`check_label_room`)."""

    classes = model.class_set
    rows, grid = [], {g: [] for g in grades}
    od_source = 'generated' if 'OD' in classes.codes else ''
    check_output_root(out, overwrite)
    check_label_room(model, grades, num_per_grade, out, scale, seed, batch_size,
                     sample_model, fov, fov_root)
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


def _cpu_count() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _resolve_batch_size(batch_size, device: torch.device) -> int:
    """The translation batch size: ``'auto'`` is 32 on a CUDA device and 8 elsewhere; a
    whole number >= 1 is taken as it is; anything else is an error naming the option."""
    if isinstance(batch_size, str) and batch_size == 'auto':
        return 32 if device.type == 'cuda' else 8
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1 or 'auto', "
                         f'got {batch_size!r}')
    return int(batch_size)


def _resolve_threads(value, device: torch.device, option: str) -> int:
    """The threads that read (``option='workers'``) or write (``'writers'``) beside the
    translation. ``'auto'`` on a CUDA device: min(4, CPUs) readers (a label map decodes
    in about a millisecond) and all CPUs but two, at most 16, writers (a 512 px image
    takes 20-40 ms to encode as PNG, so a GPU at 300 img/s needs about 10 of them);
    elsewhere 0, everything in the calling thread, one file at a time, as the CPU is
    busy with the translation. A whole number >= 0 is taken as it is; anything else is an
    error naming the option."""
    if isinstance(value, str) and value == 'auto':
        if device.type != 'cuda':
            return 0
        cpus = _cpu_count()
        return min(4, cpus) if option == 'workers' else min(16, max(2, cpus - 2))
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{option} must be a whole number >= 0 or 'auto', got {value!r}")
    return int(value)


def _read_ahead(fn, items, threads: int, ahead: int):
    """Yield ``fn(item)`` for every item, in order. With ``threads`` > 0 the calls run in
    that many threads, at most ``ahead`` items ahead of the consumer (so memory stays
    bounded), and an error is raised where its item would have been yielded, as the
    sequential loop would raise it; with 0 they run one by one in the consumer's thread.
    Close the generator (``contextlib.closing``) to stop the threads early."""
    if threads <= 0:
        for item in items:
            yield fn(item)
        return
    items = iter(items)
    pool = ThreadPoolExecutor(threads, thread_name_prefix='read-ahead')
    try:
        pending = deque(pool.submit(fn, item) for item in islice(items, max(ahead, 1)))
        while pending:
            result = pending.popleft().result()
            pending.extend(pool.submit(fn, item) for item in islice(items, 1))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _chunks(items, size: int):
    """Lists of ``size`` consecutive items (the last one shorter)."""
    items = iter(items)
    while chunk := list(islice(items, size)):
        yield chunk


class _PairWriter:
    """:func:`write_pair` calls in ``threads`` threads (0: each one at once, in the calling
    thread), with at most ``limit`` writes pending, so that memory stays bounded; ``bar``
    counts the pairs written. A context manager for the inside of ``atomic_root``:
    leaving the block waits for every write and raises the first error (write_pair's
    errors name the file), so the folder is swapped in only once whole; leaving it on an
    error cancels the writes not started and waits for those running, so that nothing
    is written into the partial folder once it is removed."""

    def __init__(self, threads: int, limit: int, bar):
        self.threads, self.limit, self.bar = threads, max(limit, 1), bar
        self.pool, self.pending = None, deque()

    def __enter__(self):
        if self.threads > 0:
            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix='write-pair')
        return self

    def submit(self, root, name: str, image, label) -> None:
        if self.pool is None:
            write_pair(root, name, image, label)
            self.bar.update()
            return
        self._collect(self.limit - 1)
        self.pending.append(self.pool.submit(write_pair, root, name, image, label))

    def _collect(self, keep: int) -> None:
        """Count the finished writes, oldest first (raising the first error), waiting until
        at most ``keep`` are pending."""
        while self.pending and (len(self.pending) > keep or self.pending[0].done()):
            self.pending.popleft().result()
            self.bar.update()

    def __exit__(self, exc_type, exc, tb):
        if self.pool is not None:
            try:
                if exc_type is None:
                    self._collect(0)
            finally:
                self.pool.shutdown(wait=True, cancel_futures=True)
        return False


def _fit_label_map(m: np.ndarray, size: int, classes) -> np.ndarray:
    """A uint8 label map in the model's class order at ``size`` x ``size`` (nearest), its
    values checked against the model's classes."""
    if m.shape != (size, size):
        m = cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)
    if int(m.max()) >= len(classes):
        raise UserValueError(f'label value {int(m.max())} outside the model\'s '
                             f'{len(classes)} classes {list(classes.codes)}')
    return m


def _translate_batches(model, batches, amp: bool, sample_model: str):
    """Yield ``(maps, images)`` for every list of label maps in ``batches`` (uint8
    (H, W) at the model's size, values within its classes), in order; ``images`` is the
    uint8 RGB array (N, H, W, 3) of their translations. On a CUDA device the maps are
    copied to it from pinned memory without blocking and the images back into pinned
    memory the same way, and a batch is yielded once the next one is under way, so the
    GPU does not wait for the caller; elsewhere each batch is yielded when done."""
    device = model.device
    cuda = device.type == 'cuda'
    num_classes = len(model.class_set)
    in_flight = None  # CUDA: (maps, pinned images, event of their copy)
    for maps in batches:
        if cuda:
            host = torch.empty((len(maps), *maps[0].shape), dtype=torch.uint8,
                               pin_memory=True)
            np.stack(maps, out=host.numpy())
            labels = host.to(device, non_blocking=True)
        else:
            labels = torch.from_numpy(np.stack(maps))
        x = onehot_from_labels(labels, num_classes)
        out = model.translate(x, sample_model, amp=amp)  # bf16 autocast on CUDA
        images = out.float().round().byte().permute(0, 2, 3, 1)
        if not cuda:
            yield maps, images.numpy()
            continue
        images = images.contiguous()  # laid out on the GPU, one plain copy back
        back = torch.empty(images.shape, dtype=torch.uint8, pin_memory=True)
        back.copy_(images, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()
        if in_flight is not None:
            in_flight[2].synchronize()
            yield in_flight[0], in_flight[1].numpy()
        in_flight = (maps, back, copied)
    if in_flight is not None:
        in_flight[2].synchronize()
        yield in_flight[0], in_flight[1].numpy()


def translate_label_maps(model, maps, batch_size='auto', amp: bool = False,
                         sample_model: str = 'ema'):
    """Yield ``(map, image)`` for an iterable of uint8 label maps (H, W) in the model's
    class order: the map resized (nearest) to the model's image size, and its uint8 RGB
    translation (H, W, 3) by a SPADE model, in batches of ``batch_size`` (``'auto'``: 32
    on a CUDA device, 8 elsewhere; on CUDA a batch's images come back while the next
    batch is computed). It shows no progress bar: its callers
    (:func:`translate_layout`, :func:`synthesize_pairs`) count what they write."""
    batch_size = _resolve_batch_size(batch_size, model.device)
    size = model.generator.out_size
    fitted = (_fit_label_map(m, size, model.class_set) for m in maps)
    for batch, images in _translate_batches(model, _chunks(fitted, batch_size), amp,
                                            sample_model):
        yield from zip(batch, images)


def _layout_source(labels_root, class_set):
    """A label-only prepared root's meta rows, its stored classes and the lookup table
    to ``class_set`` (warning when the root lacks some of the translator's classes)."""
    src = Path(labels_root)
    rows = read_meta(src)
    stored = read_classes(src)
    lut = class_set.remap_from(stored)
    absent = [c for c in class_set.lesion_codes if c not in stored.codes]
    if absent:
        warnings.warn(f'{src}: its label maps have no {absent} (classes '
                      f'{list(stored.codes)}); the translator draws '
                      f'{list(class_set.codes)}, so the output classes.json lists '
                      f'{absent} but no pixel holds them')
    return rows, stored, lut


def _translate_rows(model, src: Path, rows, stored, lut, tmp: Path, batch_size: int,
                    amp: bool, sample_model: str, workers: int, writers: int,
                    bar) -> list:
    """Translate the label maps of ``rows`` (of the root ``src``) and write the pairs
    into ``tmp`` (a layout being written); return their meta rows, in order. ``bar``
    counts the pairs written."""
    size = model.generator.out_size

    def read(row):
        path = label_path(src, row.name)
        lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if lab is None or lab.ndim != 2:
            raise UserValueError(f'{path}: missing or not a label map')
        if lab.size and int(lab.max()) >= len(stored):
            raise UserValueError(f'{path}: label value {int(lab.max())} '
                                 f'outside 0..{len(stored) - 1} (its root\'s classes.json '
                                 f'lists {list(stored.codes)})')
        return _fit_label_map(lut[lab], size, model.class_set)

    written = []
    with _PairWriter(writers, 2 * batch_size, bar) as writer, \
            closing(_read_ahead(read, rows, workers, 2 * batch_size)) as maps:
        for batch, images in _translate_batches(model, _chunks(maps, batch_size), amp,
                                                sample_model):
            for label, image in zip(batch, images):
                row = rows[len(written)]
                writer.submit(tmp, row.name, image, label)
                written.append(MetaRow(row.name, row.grade, 'synthetic', 'spade',
                                       'train', None, row.od_source))
    return written


def translate_layout(model, labels_root, out, batch_size='auto', amp: bool = False,
                     sample_model: str = 'ema', overwrite: bool = False,
                     progress: bool = True, workers='auto', writers='auto') -> list:
    """Translate every label map of a (label-only) prepared root into a complete prepared
    layout at ``out`` (images, labels, meta.csv with grade_source=synthetic,
    classes.json); returns the meta rows written. ``progress``: a bar of the images
    written ('translating').

    The generator, not the disk, sets the pace: ``workers`` threads read the label maps
    (decode, remap to the model's classes, check, resize) up to two batches ahead of the
    translation, and ``writers`` threads encode and write the PNG pairs, at most two
    batches of them pending; ``'auto'`` (the default) is min(4, CPUs) readers and all
    CPUs but two (at most 16) writers on a CUDA device, and none on the CPU, where
    everything runs in the calling thread as before. ``batch_size`` ``'auto'``: 32 on a
    CUDA device, 8 elsewhere. The files and rows are the same whatever the threads.
    :func:`translate_layout_spread` does the same on several devices at once."""

    device = model.device
    batch_size = _resolve_batch_size(batch_size, device)
    workers = _resolve_threads(workers, device, 'workers')
    writers = _resolve_threads(writers, device, 'writers')
    src = Path(labels_root)
    rows, stored, lut = _layout_source(src, model.class_set)
    with atomic_root(out, overwrite) as tmp:  # swapped in only when whole
        init_layout(tmp, model.class_set)
        with progress_bar(desc='translating', unit='img', total=len(rows),
                          progress=progress) as bar:
            written = _translate_rows(model, src, rows, stored, lut, tmp, batch_size, amp,
                                      sample_model, workers, writers, bar)
        # every pair is written (or its error raised) before meta.csv and the swap
        write_meta(tmp, written)
    return written


def check_devices(devices, option: str = 'devices') -> list:
    """``devices`` (names such as ``'cuda:0'``, ``'cpu'``) as a list, checked: at least
    one, and every CUDA index one this process can see; an error names ``option``."""
    if isinstance(devices, str):
        devices = [d.strip() for d in devices.split(',') if d.strip()]
    devices = list(devices or [])
    if not devices:
        raise UserValueError(f'{option}: no device given; expected names such as cuda:0')
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for name in devices:
        try:
            dev = torch.device(name)
        except (RuntimeError, TypeError) as exc:
            raise UserValueError(f'{option}: {name!r} is not a device name ({exc})') from None
        if dev.type == 'cuda' and (dev.index or 0) >= visible:
            raise UserValueError(f'{option}: {name} asked for, but this process sees '
                                 f'{visible} CUDA device(s) (CUDA_VISIBLE_DEVICES='
                                 f'{os.environ.get("CUDA_VISIBLE_DEVICES", "unset")})')
    return devices


def _shares(n: int, parts: int, batch: int) -> list:
    """Split ``n`` items into at most ``parts`` contiguous ``(start, stop)`` shares made
    of whole batches of ``batch`` (so every device translates the same batches a single
    one would), as even as whole batches allow."""
    batches = -(-n // batch)
    parts = max(1, min(parts, batches))
    out, start = [], 0
    for k in range(parts):
        count = batches // parts + (k < batches % parts)
        stop = min(n, start + count * batch)
        out.append((start, stop))
        start = stop
    return out


def _spread_threads(cpus: int, processes: int, cuda: bool, workers, writers):
    """(torch threads of a CPU process, readers, writers) of each of ``processes``
    translating processes on a machine of ``cpus``: the CPUs are divided among them;
    on CUDA an ``'auto'`` reader or writer count is :func:`_resolve_threads`'s divided
    likewise (at least 1 reader and 2 writers), elsewhere it stays ``'auto'`` (none)."""
    share = max(1, cpus // processes)
    if cuda:
        if workers == 'auto':
            workers = max(1, min(4, share))
        if writers == 'auto':
            writers = min(16, max(2, (cpus - 2) // processes))
    return share, workers, writers


def _translate_share(cfg, checkpoint, device, src, rows, stored, lut, tmp, batch_size, amp,
                     sample_model, workers, writers, threads, counts):
    """One process of :func:`translate_layout_spread`: load the model on ``device`` and
    translate the maps of ``rows`` (of ``src``, read there once: its classes ``stored``
    and their lookup table ``lut``) into ``tmp``; return their meta rows. ``counts`` (a
    queue) receives the number of pairs written, batch by batch."""
    if threads:
        torch.set_num_threads(threads)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg['custom_imports'])
    model = init_model(cfg, checkpoint, device)

    class _Count:
        def update(self, k=1):
            counts.put(k)

    return _translate_rows(model, Path(src), rows, stored, lut, Path(tmp),
                           batch_size, amp, sample_model,
                           _resolve_threads(workers, model.device, 'workers'),
                           _resolve_threads(writers, model.device, 'writers'), _Count())


def translate_layout_spread(cfg: Config, checkpoint: str, devices, labels_root, out,
                            batch_size='auto', amp: bool = False, sample_model: str = 'ema',
                            overwrite: bool = False, progress: bool = True,
                            workers='auto', writers='auto') -> list:
    """:func:`translate_layout` on several devices at once: the maps are split into one
    contiguous share per device, in whole batches, and each share is translated by its
    own (spawned) process, which loads ``cfg`` + ``checkpoint`` on its device and writes
    its pairs into the same partial folder; meta.csv keeps the maps' order, and the
    output is swapped in only when every share is whole. An error in any share (a bad
    label map names its file) is raised here and nothing is written. The files are the
    ones a single device writes, as every batch is the same. The CPUs are shared: on
    the CPU each process runs CPUs / devices torch threads; on CUDA ``'auto'`` readers and
    writers are :func:`translate_layout`'s divided among the processes. One device:
    :func:`translate_layout` in this process."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from .classes import resolve_classes

    devices = check_devices(devices)
    if len(devices) == 1:
        model = init_model(cfg, checkpoint, devices[0])
        return translate_layout(model, labels_root, out, batch_size, amp, sample_model,
                                overwrite, progress, workers, writers)
    batch_size = _resolve_batch_size(batch_size, torch.device(devices[0]))
    if not osp.isfile(checkpoint):
        raise UserFileNotFoundError(f'{checkpoint}: checkpoint not found; give the path of '
                                    f'a checkpoint (.pth) saved by training')
    class_set = resolve_classes(cfg.model.get('classes'))
    src = Path(labels_root)
    rows, stored, lut = _layout_source(src, class_set)
    shares = _shares(len(rows), len(devices), batch_size)
    cpu_threads, workers, writers = _spread_threads(
        _cpu_count(), len(shares), torch.device(devices[0]).type == 'cuda', workers, writers)
    ctx = mp.get_context('spawn')
    with atomic_root(out, overwrite) as tmp:
        init_layout(tmp, class_set)
        with progress_bar(desc=f'translating on {len(shares)} devices', unit='img',
                          total=len(rows), progress=progress) as bar, \
                ctx.Manager() as manager, \
                ProcessPoolExecutor(len(shares), mp_context=ctx) as pool:
            counts = manager.Queue()
            futures = [pool.submit(
                _translate_share, cfg, checkpoint, dev, str(src),
                rows[a:b], stored, lut, str(tmp), batch_size, amp, sample_model,
                workers, writers, cpu_threads if torch.device(dev).type == 'cpu' else 0,
                counts) for dev, (a, b) in zip(devices, shares)]
            while not all(f.done() for f in futures):
                try:
                    bar.update(counts.get(timeout=0.2))
                except queue.Empty:
                    pass
            while not counts.empty():
                bar.update(counts.get())
            written = []
            for f in futures:  # in the maps' order; the first error is raised
                written.extend(f.result())
        write_meta(tmp, written)
    return written


def synthesize_pairs(label_model, spade, counts: dict, out, seed: int = 0,
                     batch_size='auto', amp: bool = False, overwrite: bool = False,
                     name_prefix: str = 'syn', progress: bool = True,
                     fov='generated', fov_root=None, writers='auto') -> list:
    """``counts[grade]`` synthetic (image, label) pairs per grade, from a label ACGAN and
    a SPADE translator, written as a prepared layout at ``out`` with grid.png (one column
    per grade: label map and image). Seeded per grade; ``fov`` / ``fov_root`` as in
    :func:`sample_label_maps`. ``progress``: two bars, one after the other: the label maps
    sampled ('label maps', all grades) and the pairs translated and written
    ('synthesizing'). ``batch_size``: of the translation (``'auto'``: 32 on a CUDA
    device, 8 elsewhere), the maps are sampled four batches at a time; ``writers``:
    threads that encode and write the pairs while the next batch is translated, as in
    :func:`translate_layout` (``'auto'``: all CPUs but two, at most 16, on CUDA; none
    elsewhere). Returns the meta rows."""

    if label_model.class_set != spade.class_set:
        raise UserValueError(f'the label model writes {list(label_model.class_set.codes)} but '
                             f'the translator reads {list(spade.class_set.codes)}')
    batch_size = _resolve_batch_size(batch_size, spade.device)
    writers = _resolve_threads(writers, spade.device, 'writers')
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
    od_source = 'generated' if 'OD' in spade.class_set.codes else ''
    with atomic_root(out, overwrite) as tmp:  # swapped in only when whole
        init_layout(tmp, spade.class_set)
        with progress_bar(desc='synthesizing', unit='pair', total=len(sampled),
                          progress=progress) as bar, \
                _PairWriter(writers, 2 * batch_size, bar) as writer:
            results = translate_label_maps(spade, (m for _, _, m in sampled), batch_size,
                                           amp)
            for (grade, i, _), (label, image) in zip(sampled, results):
                name = f'{name_prefix}_g{grade}_{i:05d}'
                writer.submit(tmp, name, image, label)
                rows.append(MetaRow(name, grade, 'synthetic', 'synthetic', 'train', None,
                                    od_source))
                if grade not in grid:
                    grid[grade] = (spade.class_set.colorize(label), image)
        # every pair is written (or its error raised) before meta.csv and the swap
        write_meta(tmp, rows)
        cols = sorted(grid)
        if cols:
            save_rgb(tmp / 'grid.png', tile_grid(
                [[grid[g][0] for g in cols], [grid[g][1] for g in cols]],
                col_titles=[f'grade {g}' for g in cols], row_titles=['label', 'image'],
                classes=spade.class_set))
    return rows
