"""Lesions painted into real healthy photographs: lesion maps in, an inpainted root out.

:func:`inpaint_lesion_maps` takes lesion maps with their grades (label-ACGAN samples, or
real maps of other images), places each on a real grade-0 image of a prepared root
(:func:`~.placement.place_lesions`: the image's own disc and field of view kept, the map
mirrored to the disc's side), and has a trained :class:`SPADEInpaintGAN` paint the placed
lesions: the hole is the pixels the placement changed, dilated by the model's ``margin``
and cut to the field of view; outside it the output is the healthy image, bit for bit.

The output is a prepared root (``images/``, ``labels/``, ``meta.csv`` with
``grade_source=synthetic`` and ``dataset=inpaint``, ``classes.json``) and beside it:

    holes/<name>.png   uint8, 255 where the model painted, 0 elsewhere
    inpaint.csv        name, healthy, grade, lesion_index, mirrored: where each came from
    grid.png           one column per grade (its composite with the largest hole): healthy
                       image, placed map, result, hole edge

Healthy images are dealt to the lesion maps from a seeded shuffle, each used once before
any is used again, so the composites depend on the seed alone. Only the healthy root's
``split`` rows are used (``'train'`` by default: a synthetic set made from test images
would leak them into training). A lesion map that places nothing (a grade-0 map, or one
whose lesions all fall outside the field of view or on the disc) leaves its healthy
image as it was; the count of those is returned.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from ..apis import _chunks, _resolve_batch_size, progress_bar
from ..classes import BACKGROUND, ClassSet
from ..datasets.layout import MetaRow, check_name, label_path, read_meta, write_meta
from ..datasets.prepare import atomic_root, init_layout, write_pair
from ..errors import UserFileNotFoundError, UserValueError
from ..models.inpaint.holes import dilate
from ..models.spade.spade_gan import onehot_from_labels
from ..visualization import save_rgb, tile_grid
from .placement import _lookup, _names_of_grade, _read_root_label, place_lesions, read_healthy

PathLike = Union[str, Path]

#: Columns of ``inpaint.csv``.
INPAINT_COLUMNS = ('name', 'healthy', 'grade', 'lesion_index', 'mirrored')


class Composite(NamedTuple):
    """One placed lesion map on one healthy image, at the model's size."""

    name: str
    grade: int
    healthy: str
    lesion_index: int
    mirrored: bool
    image: np.ndarray     # (S, S, 3) uint8: the healthy image
    real: np.ndarray      # (S, S) uint8: its label map
    label: np.ndarray     # (S, S) uint8: the composite label map
    hole: np.ndarray      # (S, S) bool: where the model paints


class InpaintSummary(NamedTuple):
    rows: list            # the MetaRows written
    empty: int            # composites on which nothing was placed (written unchanged)
    healthy: int          # healthy images dealt


def label_map_items(root: PathLike, classes) -> Iterable[Tuple[str, int, np.ndarray]]:
    """``(name, grade, label map)`` for every row of a (label-only) prepared root, the
    maps remapped to ``classes`` (the root must have every class of them); a row without
    a grade is an error naming it."""
    root = Path(root)
    classes = ClassSet(classes)
    stored, lut = _lookup(root, classes)
    for row in read_meta(root):
        if row.grade is None:
            raise UserValueError(f'{root / "meta.csv"}: {row.name} has no grade; lesion maps '
                                 f'are placed by grade')
        yield row.name, row.grade, _read_root_label(root, row.name, stored, lut)


def _healthy_order(names: Sequence[str], count: int, seed: int) -> list:
    """``count`` healthy names: seeded shuffles of ``names`` one after the other (each
    image used once before any is used again)."""
    rng = np.random.default_rng([seed, 140])
    out = []
    while len(out) < count:
        out += [names[i] for i in rng.permutation(len(names))]
    return out[:count]


def _resize(image: np.ndarray, label: np.ndarray, size: int):
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    if label.shape != (size, size):
        label = cv2.resize(label, (size, size), interpolation=cv2.INTER_NEAREST)
    return image, label


def place_items(items: Iterable[Tuple[str, int, np.ndarray]], healthy_root: PathLike,
                classes, size: int, margin: int, seed: int = 0,
                split: Optional[str] = 'train', lesion_classes=None,
                rules=None) -> Iterable[Composite]:
    """Place each ``(name, grade, lesion map)`` on a healthy image (see the module
    docstring) at ``size`` x ``size``; the hole is the placed pixels dilated by
    ``margin`` in the field of view. Yields :class:`Composite` in the order of ``items``;
    the composite is named ``<name>_on_<healthy name>``."""
    root = Path(healthy_root)
    classes = ClassSet(classes)
    stored, lut = _lookup(root, classes)
    healthy = _names_of_grade(root, 0, split, 'grade-0 (healthy) images',
                              'place lesions on')
    items = list(items)
    order = _healthy_order(healthy, len(items), seed)
    bg = classes.index(BACKGROUND)
    for k, ((name, grade, lesion), host) in enumerate(zip(items, order)):
        image, real = _resize(*read_healthy(root, host, stored, lut, classes), size)
        where = label_path(root, host)
        try:
            placed = place_lesions(real, lesion, classes, lesion_classes, rules)
        except ValueError as e:
            raise UserValueError(f'{where} with lesion map {name} (grade {grade}): {e}') from e
        hole = dilate(torch.from_numpy(placed.mask)[None, None], margin)[0, 0].numpy()
        hole &= placed.label != bg
        yield Composite(check_name(f'{name}_on_{host}', f'composite {k}'), int(grade), host,
                        k, placed.mirrored, image, real, placed.label, hole)


@torch.no_grad()
def paint(model, composites: Sequence[Composite], sample_model: str = 'ema') -> np.ndarray:
    """The model's result for a batch of composites: (N, S, S, 3) uint8; outside each hole
    the healthy image's own values."""
    images = torch.from_numpy(np.stack([c.image for c in composites])).permute(0, 3, 1, 2)
    labels = torch.from_numpy(np.stack([c.label for c in composites]))
    holes = torch.from_numpy(np.stack([c.hole for c in composites]))[:, None]
    onehot = onehot_from_labels(labels, len(model.class_set))
    out = model.inpaint(images.contiguous(), holes, onehot, sample_model)
    return out.round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()


def _edge(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``image`` with the hole's outline drawn in white."""
    out = image.copy()
    contours, _ = cv2.findContours(hole.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    return out


def inpaint_lesion_maps(model, items: Iterable[Tuple[str, int, np.ndarray]],
                        healthy_root: PathLike, out: PathLike, size: int, seed: int = 0,
                        split: Optional[str] = 'train', batch_size='auto',
                        overwrite: bool = False, progress: bool = True,
                        sample_model: str = 'ema', lesion_classes=None,
                        rules=None) -> InpaintSummary:
    """Place every lesion map of ``items`` (``(name, grade, map)`` in the model's class
    order; :func:`label_map_items` reads a root of them) on a healthy image of
    ``healthy_root`` and paint it with ``model`` (a :class:`SPADEInpaintGAN`) at ``size``
    x ``size``; write the inpainted root at ``out`` (see the module docstring), whole or
    not at all. ``batch_size`` ``'auto'``: 32 on CUDA, 8 elsewhere. ``progress``: a bar
    of the images painted ('inpainting')."""
    classes = model.class_set
    items = list(items)
    if not items:
        raise UserValueError('no lesion maps to place')
    step = 2 ** model.generator.num_down
    if size % step:
        raise UserValueError(f'size {size} is not divisible by 2**num_down = {step} of the '
                             f'inpainting generator')
    batch_size = _resolve_batch_size(batch_size, model.device)
    composites = place_items(items, healthy_root, classes, size, model.holes.margin, seed,
                             split, lesion_classes, rules)
    od_rows = {r.name: r.od_source for r in read_meta(healthy_root)}
    rows, records, grid, empty, hosts = [], [], {}, 0, set()
    with atomic_root(out, overwrite) as tmp:  # swapped in only when whole
        init_layout(tmp, classes)
        (tmp / 'holes').mkdir()
        with progress_bar(desc='inpainting', unit='img', total=len(items),
                          progress=progress) as bar:
            for batch in _chunks(composites, batch_size):
                results = paint(model, batch, sample_model)
                for c, result in zip(batch, results):
                    write_pair(tmp, c.name, result, c.label)
                    cv2.imwrite(str(tmp / 'holes' / f'{c.name}.png'),
                                c.hole.astype(np.uint8) * 255)
                    rows.append(MetaRow(c.name, c.grade, 'synthetic', 'inpaint', 'train',
                                        None, od_rows.get(c.healthy, '')))
                    records.append((c.name, c.healthy, c.grade, c.lesion_index,
                                    int(c.mirrored)))
                    empty += not c.hole.any()
                    hosts.add(c.healthy)
                    area = int(c.hole.sum())  # the grid shows each grade's largest
                    if c.grade not in grid or area > grid[c.grade][0]:
                        grid[c.grade] = (area, c.image, classes.colorize(c.label), result,
                                         _edge(result, c.hole))
                bar.update(len(batch))
        write_meta(tmp, rows)
        with open(tmp / 'inpaint.csv', 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(INPAINT_COLUMNS)
            writer.writerows(records)
        cols = sorted(grid)
        save_rgb(tmp / 'grid.png', tile_grid(
            [[grid[g][r] for g in cols] for r in range(1, 5)],
            col_titles=[f'grade {g}' for g in cols],
            row_titles=['healthy', 'placed map', 'inpainted', 'hole edge'], pad=2,
            classes=classes))
    return InpaintSummary(rows, empty, len(hosts))


def read_inpaint_records(root: PathLike) -> list:
    """The rows of ``<root>/inpaint.csv`` as dicts (grade and lesion_index as int,
    mirrored as bool); errors name the file."""
    path = Path(root) / 'inpaint.csv'
    if not path.is_file():
        raise UserFileNotFoundError(f'{path}: not found; an inpainted root '
                                    f'(tools/inpaint_lesions.py) has one')
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != INPAINT_COLUMNS:
            raise UserValueError(f'{path}: columns {reader.fieldnames}, expected '
                                 f'{list(INPAINT_COLUMNS)}')
        out = []
        for i, r in enumerate(reader, 2):
            try:
                out.append(dict(name=r['name'], healthy=r['healthy'], grade=int(r['grade']),
                                lesion_index=int(r['lesion_index']),
                                mirrored=bool(int(r['mirrored']))))
            except ValueError as e:
                raise UserValueError(f'{path}, line {i}: {e}') from e
    return out
