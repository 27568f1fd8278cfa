"""Turn public-dataset records into the prepared layout.

For each image: read it, find its field of view (FOV), compose the label map from its
masks (by class priority; outside the FOV is ``BG``), crop both to the FOV's bounding
box, pad to a square with black / ``BG``, and resize to ``size`` (the image by area
averaging, the label by nearest neighbour). Then a seeded, grade-stratified split.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import re
import shutil
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import cv2
import numpy as np
from tqdm import tqdm

from ..classes import BACKGROUND, ClassSet
from ..errors import UserFileExistsError, UserFileNotFoundError, UserValueError, write_file
from ..locks import LOCK_NAME, folder_lock, holder_info, output_lock_file
from .layout import (INCOMPLETE, TEST_FRACTION, MetaRow, check_name, image_path, label_path,
                     read_classes, read_meta, stratified_split, write_meta)
from .optic_disc import ODModel, ellipse_mask, evaluate_od_model, read_od_ellipses, train_od_model
from .sources import SourceRecord

PathLike = Union[str, Path]


def _decode(path: PathLike, flag: int, what: str) -> np.ndarray:
    """Decode an image file with OpenCV; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise UserFileNotFoundError(f'{path}: {what} not found')
    data = np.fromfile(str(path), dtype=np.uint8)
    if not data.size:
        raise UserValueError(f'{path}: the {what} file is empty (0 bytes); copy it again '
                             f'from the dataset, or remove the image from the input')
    out = cv2.imdecode(data, flag)
    if out is None:
        raise UserValueError(f'{path}: cannot decode {what} (truncated, corrupt or not '
                             f'an image file); copy it again from the dataset, or remove '
                             f'the image from the input')
    return out


def read_image(path: PathLike) -> np.ndarray:
    """An RGB uint8 image; errors name the file."""
    return cv2.cvtColor(_decode(path, cv2.IMREAD_COLOR, 'image'), cv2.COLOR_BGR2RGB)


def read_mask(path: PathLike, shape: Sequence[int]) -> np.ndarray:
    """A boolean mask: non-zero in any colour channel; errors name the file and the sizes.

    An alpha channel is not part of the mask (an opaque alpha of 255 everywhere would
    otherwise make the whole image a lesion): a mask with an alpha channel is read from
    its colour channels when the alpha is opaque everywhere, and refused when it is not
    (then the alpha may be what draws the mask, and the colour channels would misread it).
    """
    mask = _decode(path, cv2.IMREAD_UNCHANGED, 'mask')
    if mask.ndim == 3 and mask.shape[2] in (2, 4):  # grey + alpha, colour + alpha
        alpha = mask[..., -1]
        opaque = np.iinfo(mask.dtype).max if mask.dtype.kind in 'ui' else 1.0
        if (alpha != opaque).any():
            raise UserValueError(
                f'{path}: the mask has an alpha channel that is not opaque everywhere '
                f'({int((alpha != opaque).sum())} pixels are not), so it is unclear whether '
                f'the colour or the alpha draws the mask; save it without an alpha channel '
                f'(non-zero = lesion) and run again')
        mask = mask[..., :-1]
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    if mask.shape[:2] != tuple(shape[:2]):
        raise UserValueError(f'{path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but its '
                             f'image is {shape[1]}x{shape[0]}; expected the same size. '
                             f'Give the mask drawn on this image, or remove the image from '
                             f'the input')
    return mask > 0


def field_of_view(image: np.ndarray, threshold: Optional[float] = None) -> np.ndarray:
    """Boolean FOV mask of a fundus photograph: the largest bright region, holes filled.

    Works on a 4x-downsampled copy for speed. ``threshold`` (0-255, on the red channel,
    which is the brightest in fundus photographs) defaults to 8 % of its 99th percentile,
    at least 10.
    """
    h, w = image.shape[:2]
    f = max(1, min(h, w) // 512)
    small = cv2.resize(image, (w // f, h // f), interpolation=cv2.INTER_AREA) if f > 1 else image
    red = cv2.medianBlur(np.ascontiguousarray(small[..., 0]), 5)
    if threshold is None:
        threshold = max(10.0, 0.08 * float(np.percentile(red, 99)))
    binary = (red > threshold).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((h, w), bool)
    largest = max(contours, key=cv2.contourArea)
    filled = np.zeros_like(binary)
    cv2.drawContours(filled, [largest], -1, 1, thickness=-1)
    if f > 1:
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_NEAREST)
    return filled.astype(bool)


def crop_pad_resize(image: np.ndarray, label: np.ndarray, fov: np.ndarray, size: int,
                    background: int = 0):
    """Crop to the FOV's bounding box, pad to a centred square, resize to ``size``."""
    ys, xs = np.nonzero(fov)
    if ys.size == 0:
        raise ValueError('empty field of view')
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    image, label = image[y0:y1, x0:x1], label[y0:y1, x0:x1]
    h, w = label.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    sq_img = np.zeros((side, side, 3), np.uint8)
    sq_img[top:top + h, left:left + w] = image
    sq_lab = np.full((side, side), background, np.uint8)
    sq_lab[top:top + h, left:left + w] = label
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return (cv2.resize(sq_img, (size, size), interpolation=interp),
            cv2.resize(sq_lab, (size, size), interpolation=cv2.INTER_NEAREST))


def prepare_record(record: SourceRecord, classes: ClassSet, size: int,
                   od_ellipse=None):
    """(image, label) of one record in the prepared form. ``od_ellipse`` (an
    :class:`~.optic_disc.Ellipse` in the original image's pixels) is drawn as the ``OD``
    mask of a record whose source has none."""
    image = read_image(record.image)
    fov = field_of_view(image)
    if fov.sum() < 0.05 * fov.size:
        raise UserValueError(f'{record.image}: no field of view found (the image is almost '
                             f'entirely dark); check the file, or remove the image from '
                             f'the input')
    masks = {code: read_mask(path, image.shape) for code, path in record.masks.items()
             if path is not None}
    if od_ellipse is not None:
        masks['OD'] = ellipse_mask(image.shape[:2], od_ellipse)
    label = classes.compose(fov, masks)
    return crop_pad_resize(image, label, fov, size, classes.index(BACKGROUND))


def _write_png(path: Path, array: np.ndarray) -> None:
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode('.png', array, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise OSError(f'{path}: cannot encode PNG')
    write_file(path, buf.tobytes())  # a full disk is named as such, with the path


def write_pair(root: PathLike, name: str, image: Optional[np.ndarray],
               label: np.ndarray) -> None:
    if image is not None:
        if image.shape[:2] != label.shape:
            raise ValueError(f'{name}: image {image.shape[:2]} and label {label.shape} differ')
        _write_png(image_path(root, name), image)
    _write_png(label_path(root, name), label)


def _prepare_one(args):
    record, codes, size, out, ellipse = args
    classes = ClassSet(codes)
    image, label = prepare_record(record, classes, size, ellipse)
    write_pair(out, record.name, image, label)
    return record.name


def run_jobs(fn, jobs: Sequence, workers: int = 1, desc: str = '', progress: bool = True,
             chunksize: int = 1) -> list:
    """``[fn(job) for job in jobs]`` with a progress bar, in ``workers`` processes."""

    results = []
    with tqdm(total=len(jobs), desc=desc, unit='img', disable=not progress) as bar:
        if workers > 1:
            with mp.get_context('spawn').Pool(workers) as pool:
                for r in pool.imap(fn, jobs, chunksize=chunksize):
                    results.append(r)
                    bar.update()
        else:
            for job in jobs:
                results.append(fn(job))
                bar.update()
    return results


#: Files of our own in an output folder written in place (see :func:`atomic_root`).
OWN_FILES = (LOCK_NAME, INCOMPLETE)


def check_output_root(out: PathLike, overwrite: bool = False) -> Path:
    """Refuse to replace what the user did not ask to: a prepared root (``meta.csv``)
    without ``overwrite``, a folder of other files without ``overwrite``, a file. A folder
    marked incomplete (an output written in place by a run that did not finish) is not
    refused: it is ours, and is written again."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserFileExistsError(f'{out}: exists and is not a folder; give a folder for '
                                  f'the output')
    if (out / INCOMPLETE).is_file():
        return out
    entries = sorted(p.name for p in out.iterdir() if p.name not in OWN_FILES) \
        if out.is_dir() else []
    if entries and not overwrite:
        if (out / 'meta.csv').exists():
            raise UserFileExistsError(
                f'{out}: already holds a prepared dataset (meta.csv); choose another '
                f'folder or pass overwrite (--overwrite)')
        raise UserFileExistsError(
            f'{out}: is not empty ({len(entries)} entries, e.g. {entries[0]!r}) and is not '
            f'a prepared dataset (no meta.csv); choose an empty or new folder, or pass '
            f'overwrite (--overwrite) to replace it whole')
    return out


def mount_points() -> set:
    """The mount points of this process's mount namespace (bind mounts included),
    from /proc/self/mountinfo; empty where there is none."""
    try:
        text = Path('/proc/self/mountinfo').read_text()
    except OSError:
        return set()
    points = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4:  # octal escapes: \040 is a space
            points.add(re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)),
                              fields[4]))
    return points


def swap_problem(out: PathLike) -> Optional[str]:
    """Why ``out`` cannot be replaced by renaming a sibling folder onto it, or None: it
    is a mount point (renaming it fails with EBUSY), it lies on another file system than
    its parent (the sibling would be written on the wrong one and cannot be renamed across),
    or its parent does not let us make the sibling."""
    out = Path(out)
    if not out.is_dir():  # made by the swap itself, in its parent
        return None
    if os.path.ismount(out) or os.path.realpath(out) in mount_points():
        return 'it is a mount point'
    if os.stat(out).st_dev != os.stat(out.parent).st_dev:
        return 'it is on another file system than its parent folder'
    if not os.access(out.parent, os.W_OK | os.X_OK):
        return f'its parent folder {out.parent} is not writable'
    return None


def existing_parent(path: PathLike) -> Path:
    """``path``, or its nearest ancestor that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    return path


def file_bytes_on_disk(size: int, folder: PathLike) -> int:
    """What a file of ``size`` bytes takes on the file system of ``folder``: whole
    blocks (at least one)."""
    block = os.statvfs(existing_parent(Path(folder))).f_frsize or 4096
    return max(1, -(-int(size) // block)) * block


def check_room(out: PathLike, count: int, bytes_each: float, what: str,
               fewer: str = 'ask for fewer') -> None:
    """Refuse, before anything is written, ``count`` files of about ``bytes_each`` bytes
    on disk that the file system holding ``out`` has no room for (with a margin of 5 %
    and 64 MB): a :class:`~..errors.UserValueError` naming the folder, both amounts and
    what to do."""
    where = existing_parent(Path(out))
    free = shutil.disk_usage(where).free
    need = int(count * bytes_each)
    if need * 1.05 + 64e6 > free:
        raise UserValueError(
            f'{out}: {count} {what} need about {_size_text(need)} on disk, but the file '
            f'system holding {where} has {_size_text(free)} free; {fewer}, or write to '
            f'another disk (nothing was written)')


def _size_text(n: float) -> str:
    for unit, scale in (('TB', 1e12), ('GB', 1e9), ('MB', 1e6), ('kB', 1e3)):
        if n >= scale:
            return f'{n / scale:.1f} {unit}'
    return f'{int(n)} bytes'


@contextlib.contextmanager
def atomic_root(out: PathLike, overwrite: bool = False, log=None):
    """Write a root (a prepared dataset, a stage's output) whole or not at all.

    Yields a fresh temporary sibling folder (``.<name>.partial``) to write into. When the
    block ends without an error, the old ``out`` (if any) is moved aside, the new one put
    in its place and the old one removed, so ``overwrite`` never deletes anything before
    the new output is complete; on an error (or Ctrl-C) the partial folder is removed and
    ``out`` is left as it was. What :func:`check_output_root` refuses is refused first.

    One output, one run: the lock ``.<name>.lock`` beside ``out`` (:mod:`..locks`) is
    held throughout, so a second run on the same ``out`` is refused naming this one, and a
    ``.partial`` folder is removed (as a killed run's) only when no live run holds it.

    An ``out`` that cannot be swapped (:func:`swap_problem`: a mount point, another file
    system) is written in place instead, said before the work starts: locked by its own
    ``.lock``, its old contents removed first (with ``overwrite``), and marked incomplete
    (a file ``.incomplete``) until the block ends without an error; a run that stops
    leaves the mark, :func:`~.layout.read_meta` refuses such a root, and the next run
    writes it again. A symbolic link ``out`` is followed: the output goes where it points.
    """
    out = Path(out)
    if out.is_symlink():
        out = Path(os.path.realpath(out))
    check_output_root(out, overwrite)
    problem = swap_problem(out)
    if problem is not None:
        with _in_place(out, overwrite, problem, log) as target:
            yield target
        return
    with folder_lock(out, 'a tool writing this output', lock_file=output_lock_file(out)):
        out = check_output_root(out, overwrite)  # again, now that no one else writes
        tmp = out.parent / f'.{out.name}.partial'
        if tmp.exists():  # left by a run that was killed (a live one holds the lock)
            if log is not None:
                log(f'{tmp}: removing the partial output of an interrupted run')
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if out.is_dir() and any(out.iterdir()):
            old = out.parent / f'.{out.name}.old-{os.getpid()}'
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if out.is_dir():
                out.rmdir()
            tmp.rename(out)


@contextlib.contextmanager
def _in_place(out: Path, overwrite: bool, problem: str, log=None):
    """The in-place branch of :func:`atomic_root`."""
    say = log or (lambda m: print(m, file=sys.stderr))
    with folder_lock(out, 'a tool writing this output'):
        out = check_output_root(out, overwrite)
        mark = out / INCOMPLETE
        old = [p for p in out.iterdir() if p.name not in OWN_FILES]
        say(f'{out}: {problem}, so the output cannot be written beside it and swapped in '
            f'whole; writing in place, marked incomplete ({mark}) until done'
            + (f'; removing its {len(old)} old entries first' if old else ''))
        for p in old:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        mark.write_text(json.dumps(holder_info()) + '\n')
        try:
            yield out
        except KeyboardInterrupt as exc:  # what run_tool's line says was kept
            exc.saved = (f'{out} was being written in place and is marked incomplete '
                         f'({mark}); the next run writes it again')
            raise
        mark.unlink()


def init_layout(out: PathLike, classes: ClassSet, with_images: bool = True) -> Path:
    """Create the folders of a prepared root and its classes.json in ``out`` (a fresh
    folder: the temporary one of :func:`atomic_root`)."""
    out = Path(out)
    if (out / 'meta.csv').exists():
        raise UserFileExistsError(f'{out}: already holds a prepared dataset (meta.csv)')
    (out / 'labels').mkdir(parents=True, exist_ok=True)
    if with_images:
        (out / 'images').mkdir(parents=True, exist_ok=True)
    classes.dump(out / 'classes.json')
    return out


def prepare_dataset(records: Sequence[SourceRecord], out: PathLike, classes: ClassSet,
                    size: int = 512, seed: int = 0, test_fraction: float = TEST_FRACTION,
                    workers: int = 1, overwrite: bool = False, progress: bool = True,
                    od_file: Optional[PathLike] = None, od_model: Optional[dict] = None,
                    log=print) -> dict:
    """Write ``records`` in the prepared layout under ``out``; returns the summary.

    When the classes hold ``OD`` and a record's source does not annotate it (FGADR, DDR),
    its disc is filled in so that every label map holds one: drawn from ``od_file`` (per
    image ellipses, see :mod:`.optic_disc`) where it lists the image, else predicted by a
    small disc model trained on the training-split images whose source annotates the disc
    (IDRiD) and scored on their held-out test split (``od_model``: options of
    :func:`.optic_disc.train_od_model`, or ``dict(path=...)`` of a saved model to use
    instead of training one). ``meta.csv`` records each image's ``annotated`` classes and
    ``od_source``; the summary counts them and gives the disc model's Dice.
    """
    if int(size) < 16:
        raise UserValueError(f'size must be at least 16 pixels, got {size}')
    names = [r.name for r in records]
    dup = [n for n, c in Counter(names).items() if c > 1]
    if dup:
        raise UserValueError(f'duplicate image names across datasets: {dup[:5]}')
    for r in records:
        check_name(r.name, f'{r.image}: output name')
    od_plan, ellipses, unused = plan_optic_discs(records, classes, od_file)
    if unused:
        log(f'{od_file}: {len(unused)} ellipse(s) not used: their images have disc masks '
            f'of their own (e.g. {unused[0]})')
    rows = [MetaRow(r.name, r.grade, r.grade_source, r.dataset, 'train',
                    annotated=tuple(c for c in classes.lesion_codes if c in r.annotated),
                    od_source=od_plan[r.name]) for r in records]
    rows = stratified_split(rows, seed=seed, test_fraction=test_fraction)
    need_model = [r for r in rows if r.od_source == 'predicted']
    if need_model and not (od_model or {}).get('path') and not any(
            r.od_source == 'annotated' and r.split == 'train' for r in rows):
        sources = sorted({r.dataset for r in need_model})
        raise UserValueError(
            f'{len(need_model)} image(s) of {sources} have no optic-disc mask and no ellipse '
            f'in an OD file, and no training image annotates the disc to learn it from. Give '
            f'an OD file (--od-file), a saved disc model (od_model path), add a source '
            f'that annotates OD (IDRiD), or leave OD out of the classes.')
    # Written into a temporary sibling and swapped in only when whole (atomic_root).
    with atomic_root(out, overwrite, log) as tmp:
        init_layout(tmp, classes)
        jobs = [(r, classes.codes, size, tmp, ellipses.get(r.name)) for r in records]
        run_jobs(_prepare_one, jobs, workers, 'prepare', progress)
        od_report = None
        if need_model:
            od_report = fill_predicted_discs(tmp, rows, classes, od_model or {}, seed,
                                             progress, log)
        write_meta(tmp, rows)
        summary = summarize(tmp)  # reads every label back: the check before the swap
        summary['missing_masks'] = _missing_masks(records)
        summary['not_annotated'] = {
            ds: [c for c in classes.lesion_codes if c not in ann]
            for ds, ann in {r.dataset: r.annotated for r in records}.items()}
        if od_report is not None:
            summary['od_model'] = od_report
        if unused:
            summary['od_file_unused'] = unused
        (tmp / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    return summary


def plan_optic_discs(records: Sequence[SourceRecord], classes: ClassSet,
                     od_file: Optional[PathLike] = None):
    """(name -> od_source, name -> ellipse, unused) for ``records``: ``annotated`` where
    the source has disc masks, ``drawn`` where ``od_file`` lists the image, ``predicted``
    otherwise; empty for every record when the classes hold no ``OD``. An OD-file entry
    that names no record is an error; one for an image with its own disc mask is not
    used (the mask is): ``unused`` lists those images."""
    ellipses = read_od_ellipses(od_file) if od_file else {}
    if 'OD' not in classes.codes:
        if ellipses:
            raise UserValueError(f'{od_file}: an optic-disc file was given but the classes '
                                 f'{list(classes.codes)} have no OD')
        return {r.name: '' for r in records}, {}, []
    by_stem = defaultdict(list)
    for r in records:
        by_stem[Path(r.image).stem].append(r)
    unknown = sorted(set(ellipses) - set(by_stem))
    if unknown:
        raise UserValueError(f'{od_file}: names images that are not among the inputs: '
                             f'{unknown[:10]}{" ..." if len(unknown) > 10 else ""}')
    plan, drawn, unused = {}, {}, []
    for r in records:
        stem = Path(r.image).stem
        if 'OD' in r.annotated:
            plan[r.name] = 'annotated'
            if stem in ellipses:
                unused.append(r.name)
        elif stem in ellipses:
            if len(by_stem[stem]) > 1:
                raise UserValueError(f'{od_file}: image {stem!r} names more than one input '
                                     f'image ({[str(x.image) for x in by_stem[stem]]})')
            plan[r.name], drawn[r.name] = 'drawn', ellipses[stem]
        else:
            plan[r.name] = 'predicted'
    return plan, drawn, unused


def _disc_target(label: np.ndarray, od_index: int) -> np.ndarray:
    """The whole disc of a prepared label: its OD pixels with the holes that lesions on
    the disc leave filled (the outer contour of the largest OD region)."""
    od = (label == od_index).astype(np.uint8)
    contours, _ = cv2.findContours(od, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(od)
    if contours:
        cv2.drawContours(filled, [max(contours, key=cv2.contourArea)], -1, 1, thickness=-1)
    return filled.astype(bool)


def _read_prepared(root: Path, name: str):
    image = read_image(image_path(root, name))
    label = _decode(label_path(root, name), cv2.IMREAD_UNCHANGED, 'label')
    return image, label


def fill_predicted_discs(out: Path, rows: Sequence[MetaRow], classes: ClassSet,
                         options: dict, seed: int = 0, progress: bool = True,
                         log=print) -> dict:
    """Train (or load) the disc model, score it on the held-out annotated discs, and
    paint its disc into the labels of the rows marked ``predicted`` (only over ``RET``:
    lesions keep their pixels, nothing leaves the field of view). Returns the report."""

    od = classes.index('OD')
    ret = classes.index('RET')
    options = dict(options)
    path = options.pop('path', None)
    annotated = {'train': [], 'test': []}
    for r in rows:
        if r.od_source == 'annotated':
            annotated[r.split].append(r.name)
    report = {}
    if path:
        model = ODModel.load(path)
        report['model'] = str(path)
    else:
        pairs = [_read_prepared(out, n) for n in annotated['train']]
        log(f'optic disc: training the disc model on {len(pairs)} annotated training '
            f'images')
        model = train_od_model([p[0] for p in pairs], [_disc_target(p[1], od) for p in pairs],
                               seed=seed, progress=progress, **options)
        model.save(out / 'od_model.pt')
        report['model'] = 'od_model.pt (trained here)'
        report['train_images'] = len(pairs)
    if annotated['test']:
        pairs = [_read_prepared(out, n) for n in annotated['test']]
        ev = evaluate_od_model(model, [p[0] for p in pairs],
                               [_disc_target(p[1], od) for p in pairs])
        report['heldout_images'] = len(pairs)
        report['heldout_dice'] = float(ev['mean_dice'])
        log(f'optic disc: Dice {ev["mean_dice"]:.3f} on {len(pairs)} held-out annotated '
            f'discs')
    else:
        report['heldout_images'] = 0
        report['heldout_dice'] = None
    fallbacks = 0
    targets = [r.name for r in rows if r.od_source == 'predicted']
    for name in tqdm(targets, desc='optic disc', unit='img', disable=not progress):
        image, label = _read_prepared(out, name)
        result = model.predict(image)
        fallbacks += int(result.fallback)
        label = label.copy()
        label[result.mask & (label == ret)] = od
        write_pair(out, name, None, label)
    report['predicted'] = len(targets)
    report['fallbacks'] = fallbacks
    return report


def _missing_masks(records: Iterable[SourceRecord]) -> dict:
    """dataset -> code -> number of images whose mask file is absent (no such lesion)."""
    out = defaultdict(Counter)
    for r in records:
        for code, path in r.masks.items():
            if path is None:
                out[r.dataset][code] += 1
    return {ds: dict(c) for ds, c in out.items()}


def summarize(root: PathLike) -> dict:
    """Counts per dataset / grade / split and lesion pixel fractions of a prepared root.

    ``pixel_fraction``: mean over images of (class pixels / field-of-view pixels);
    ``images_with``: images that contain the class at all.
    """
    root = Path(root)
    rows = read_meta(root)
    classes = read_classes(root)
    per = {'dataset': defaultdict(Counter), 'grade': defaultdict(Counter)}
    frac = defaultdict(list)
    present = Counter()
    od_sources = defaultdict(Counter)
    annotating = Counter()
    for row in rows:
        per['dataset'][row.dataset][row.split] += 1
        if 'OD' in classes.codes:
            od_sources[row.dataset][row.od_source or 'none'] += 1
        for code in classes.lesion_codes:
            annotating[code] += int(row.annotates(code))
        per['grade']['ungraded' if row.grade is None else str(row.grade)][row.split] += 1
        label = cv2.imread(str(label_path(root, row.name)), cv2.IMREAD_UNCHANGED)
        if label is None:
            raise UserFileNotFoundError(f'{label_path(root, row.name)}: label missing or unreadable')
        counts = np.bincount(label.ravel(), minlength=len(classes))
        fov = max(1, int(counts[1:].sum()))
        for i, code in enumerate(classes.codes[2:], start=2):
            frac[code].append(counts[i] / fov)
            present[code] += int(counts[i] > 0)
    return {
        'root': str(root),
        'images': len(rows),
        'classes': list(classes.codes),
        'per_dataset': {k: dict(v) for k, v in sorted(per['dataset'].items())},
        'per_grade': {k: dict(v) for k, v in sorted(per['grade'].items())},
        'per_split': dict(Counter(r.split for r in rows)),
        'pixel_fraction': {c: float(np.mean(v)) if v else 0.0 for c, v in frac.items()},
        'images_with': dict(present),
        'images_annotating': dict(annotating),
        'od_source': {k: dict(v) for k, v in sorted(od_sources.items())},
    }


def format_summary(summary: dict) -> str:
    """A plain-text table of :func:`summarize`'s output."""
    lines = [f"{summary['images']} images in {summary['root']}",
             f"classes: {', '.join(summary['classes'])}", '',
             f"{'dataset':<12}{'train':>8}{'test':>8}"]
    for ds, c in summary['per_dataset'].items():
        lines.append(f"{ds:<12}{c.get('train', 0):>8}{c.get('test', 0):>8}")
    lines += ['', f"{'grade':<12}{'train':>8}{'test':>8}"]
    for g, c in summary['per_grade'].items():
        lines.append(f"{g:<12}{c.get('train', 0):>8}{c.get('test', 0):>8}")
    lines += ['', f"{'class':<8}{'images with':>12}{'pixel % of FOV':>16}"]
    for code, f in summary['pixel_fraction'].items():
        lines.append(f"{code:<8}{summary['images_with'].get(code, 0):>12}{100 * f:>16.4f}")
    for ds, miss in summary.get('missing_masks', {}).items():
        lines.append(f'{ds}: images without a mask file (no such lesion): '
                     + ', '.join(f'{c} {n}' for c, n in sorted(miss.items())))
    for ds, codes in summary.get('not_annotated', {}).items():
        if codes:
            lines.append(f'{ds}: does not annotate {", ".join(codes)} (meta.csv says so per '
                         f'image: segmentation ignores those pixels and metrics skip those '
                         f'classes on its images)')
    if summary.get('od_source'):
        lines += ['', 'optic disc (OD) in the labels, by where it comes from:']
        for ds, c in summary['od_source'].items():
            lines.append(f'  {ds}: ' + ', '.join(f'{k} {n}' for k, n in sorted(c.items())))
    om = summary.get('od_model')
    if om:
        dice = om.get('heldout_dice')
        lines.append(f"  disc model ({om['model']}): {om['predicted']} disc(s) predicted"
                     f"{', ' + str(om['fallbacks']) + ' by the fallback' if om['fallbacks'] else ''}; "
                     + (f"Dice {dice:.3f} against {om['heldout_images']} held-out annotated "
                        f"discs" if dice is not None else 'no held-out annotated disc to '
                                                          'score it on'))
    return '\n'.join(lines)
