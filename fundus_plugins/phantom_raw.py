"""The fundus phantom written in the published raw layouts of IDRiD, FGADR and DDR.

:func:`write_raw_phantom` draws phantom images (:func:`~.phantom.draw_phantom`) and
writes them, with their lesion masks and grades, exactly where and how the public
datasets keep theirs, so that the readers of :mod:`.datasets.sources` and
:func:`~.datasets.prepare.prepare_dataset` read them as they would read the real data,
and a pipeline config for the real data runs on them offline:

* ``idrid``: ``A. Segmentation/1. Original Images/{a. Training Set,b. Testing Set}/IDRiD_NN.jpg``
  (about 2/3 of the images in the training set, as IDRiD's 54 / 27), wide JPEG frames
  (IDRiD's 4288 x 2848 aspect ratio) whose height is smaller than the field of view, so
  the circle is cut at top and bottom; masks
  ``A. Segmentation/2. All Segmentation Groundtruths/<set>/<class folder>/IDRiD_NN_<CODE>.tif``
  as RGB TIFs with the lesion in the red channel (255), no file for a lesion the image
  does not show; the optic disc (``OD``) always. The segmentation images carry no grade
  in IDRiD: ``B. Disease Grading/2. Groundtruths/a. IDRiD_Disease Grading_Training Labels.csv``
  (IDRiD's header, with the trailing space of ``Risk of macular edema ``) lists grading
  images ``IDRiD_NNN`` that are not the segmentation images, as in the real data.
* ``fgadr``: ``Seg-set/Original_Images/NNNN_X.png`` (square PNG frames, as FGADR's
  1280 x 1280), single-channel 0 / 255 PNG masks under ``Seg-set/<class folder>/`` with
  the image's file name, only where the lesion is present, no optic-disc masks (FGADR has
  none); grades in ``Seg-set/DR_Seg_Grading_Label.csv`` (no header, ``file name,grade``).
* ``ddr``: ``lesion_segmentation/{train,valid,test}/image/<name>.jpg`` (4:3 JPEG frames
  holding the whole circle; about DDR's 383 / 149 / 225 split), one single-channel
  0 / 255 TIF per lesion class and image (blank where there is none) under
  ``lesion_segmentation/<split>/label/{EX,HE,MA,SE}/<name>.tif``, no optic-disc masks;
  grades in ``DR_grading/<split>.txt`` (``<name>.jpg <grade>`` lines).

The phantom's truth, which the published layouts do not (or not all) carry, goes to files
no reader looks at: ``phantom_truth.csv`` (one row per image: name, split, file, the
grade drawn, the classes in the frame, and the optic disc as an axis-aligned
ellipse ``od_cx, od_cy, od_rx, od_ry, od_angle`` in the frame's pixels) and, for the
layouts without disc masks (FGADR, DDR), ``phantom_od/<name>.png`` (the drawn disc,
0 / 255) and ``phantom_od.csv`` (the same ellipses in the format of ``--od-file``,
:mod:`.datasets.optic_disc`: ``image,cx,cy,rx,ry,angle``, to prepare with the true discs
drawn). A pipeline scores its predicted grades and discs against these.

Image ``i`` is drawn from the seed ``[seed, i]`` (as in the prepared phantom), so every
file depends on the seed only, not on ``workers``. The frame holds exactly what was
drawn: the masks are the phantom's masks, cropped and padded like the image.
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from .classes import DDR, FGADR, IDRID, get_lesion_class
from .datasets.prepare import atomic_root, run_jobs
from .errors import UserFileNotFoundError, UserValueError, write_file
from .phantom import PHANTOM_CLASSES, draw_phantom, phantom_grades

PathLike = Union[str, Path]

#: The raw layouts :func:`write_raw_phantom` writes.
RAW_LAYOUTS = (IDRID, FGADR, DDR)
#: Smallest drawn field-of-view side (that of :func:`~.phantom.draw_phantom`).
MIN_SIZE = 32

TRUTH_FILE = 'phantom_truth.csv'
TRUTH_OD_DIR = 'phantom_od'
TRUTH_OD_FILE = 'phantom_od.csv'
OD_FILE_COLUMNS = ('image', 'cx', 'cy', 'rx', 'ry', 'angle')   # the --od-file format
TRUTH_COLUMNS = ('name', 'split', 'file', 'grade', 'classes',
                 'od_cx', 'od_cy', 'od_rx', 'od_ry', 'od_angle')

# IDRiD: 4288 x 2848 frames; the circular field of view is about 3450 px across, so the
# frame's height is about 0.8 of the drawn square's side (the FOV fills 0.93-0.98 of it).
IDRID_ASPECT = 4288 / 2848
IDRID_HEIGHT = 0.8
IDRID_SEG = 'A. Segmentation'
IDRID_IMAGES = '1. Original Images'
IDRID_MASKS = '2. All Segmentation Groundtruths'
IDRID_SETS = ('a. Training Set', 'b. Testing Set')
IDRID_TRAIN_FRACTION = 54 / 81
IDRID_GRADES_CSV = (Path('B. Disease Grading') / '2. Groundtruths'
                    / 'a. IDRiD_Disease Grading_Training Labels.csv')
IDRID_GRADES_HEADER = ('Image name', 'Retinopathy grade', 'Risk of macular edema ')

FGADR_SEG = 'Seg-set'
FGADR_IMAGES = 'Original_Images'
FGADR_GRADES = 'DR_Seg_Grading_Label.csv'

# DDR: frames of various cameras; here 4:3 with the whole circle inside.
DDR_ASPECT = 4 / 3
DDR_SEG = 'lesion_segmentation'
DDR_SPLITS = ('train', 'valid', 'test')
DDR_SPLIT_SIZES = (383, 149, 225)   # DDR's lesion segmentation split
DDR_GRADES = 'DR_grading'

JPEG_QUALITY = 95

@dataclass(frozen=True)
class Frame:
    """Where the drawn ``size`` x ``size`` square sits in a layout's frame: the frame is
    ``height`` x ``width`` and the square's top-left corner is at (``top``, ``left``) in
    frame pixels (negative: that much of the square is cut off)."""

    height: int
    width: int
    top: int
    left: int

    def place(self, array: np.ndarray) -> np.ndarray:
        """``array`` (S x S [x C]) in the frame: cropped where the frame is smaller,
        zero-padded where it is larger."""
        size = array.shape[0]
        out = np.zeros((self.height, self.width) + array.shape[2:], array.dtype)
        y0, x0 = max(0, self.top), max(0, self.left)
        y1 = min(self.height, self.top + size)
        x1 = min(self.width, self.left + size)
        out[y0:y1, x0:x1] = array[y0 - self.top:y1 - self.top, x0 - self.left:x1 - self.left]
        return out


def raw_frame(layout: str, size: int) -> Frame:
    """The frame of ``layout`` for a drawn field of view of side ``size``.

    IDRiD: 4288:2848 wide, 0.8 ``size`` high (the circle is cut at top and bottom);
    FGADR: the square itself; DDR: 4:3 wide, ``size`` high (the whole circle).
    """
    _check_layout(layout)
    if layout == IDRID:
        height = int(round(IDRID_HEIGHT * size))
        width = int(round(IDRID_ASPECT * height))
    elif layout == FGADR:
        height = width = size
    else:
        height, width = size, int(round(DDR_ASPECT * size))
    return Frame(height, width, (height - size) // 2, (width - size) // 2)


def _check_layout(layout) -> None:
    if layout not in RAW_LAYOUTS:
        raise UserValueError(f'layout must be one of {", ".join(RAW_LAYOUTS)}, got {layout!r} '
                             f'(the prepared layout is written by '
                             f'fundus_plugins.phantom.write_phantom_dataset)')


def raw_codes(layout: str) -> tuple:
    """The phantom classes whose masks ``layout`` publishes, in the phantom's order."""
    _check_layout(layout)
    return tuple(c for c in PHANTOM_CLASSES if layout in get_lesion_class(c).sources)


@dataclass(frozen=True)
class RawImage:
    """One written phantom image: its published ``name`` (file stem), ``split`` (the
    layout's set or split; ``''`` for FGADR), ``file`` (relative to the root), the
    ``grade`` drawn, the classes present in the frame (``classes``: the disc and the
    lesions, any drawn class, published or not) and the disc ellipse ``od`` =
    (cx, cy, rx, ry, angle) in frame pixels (``cv2.ellipse``'s convention)."""

    name: str
    split: str
    file: str
    grade: int
    classes: tuple
    od: tuple


def raw_names(layout: str, num: int) -> list:
    """(name, split) of the ``num`` images of ``layout``, in drawing order."""
    _check_layout(layout)
    if layout == IDRID:
        n_train = max(1, int(round(num * IDRID_TRAIN_FRACTION)))
        return [(f'IDRiD_{i + 1:02d}', IDRID_SETS[0] if i < n_train else IDRID_SETS[1])
                for i in range(num)]
    if layout == FGADR:
        return [(f'{i + 1:04d}_{chr(ord("A") + i % 26)}', '') for i in range(num)]
    total = sum(DDR_SPLIT_SIZES)
    n_train = max(1, int(round(num * DDR_SPLIT_SIZES[0] / total)))
    n_valid = min(num - n_train, int(round(num * DDR_SPLIT_SIZES[1] / total)))
    splits = [DDR_SPLITS[0] if i < n_train else DDR_SPLITS[1] if i < n_train + n_valid
              else DDR_SPLITS[2] for i in range(num)]
    return [(f'007-{i + 1:04d}-100', s) for i, s in enumerate(splits)]


def _image_rel(layout: str, name: str, split: str) -> Path:
    if layout == IDRID:
        return Path(IDRID_SEG) / IDRID_IMAGES / split / f'{name}.jpg'
    if layout == FGADR:
        return Path(FGADR_SEG) / FGADR_IMAGES / f'{name}.png'
    return Path(DDR_SEG) / split / 'image' / f'{name}.jpg'


def _mask_rel(layout: str, name: str, split: str, code: str) -> Path:
    folder = get_lesion_class(code).sources[layout]
    if layout == IDRID:
        return Path(IDRID_SEG) / IDRID_MASKS / split / folder / f'{name}_{code}.tif'
    if layout == FGADR:
        return Path(FGADR_SEG) / folder / f'{name}.png'
    return Path(DDR_SEG) / split / 'label' / folder / f'{name}.tif'


def draw_raw_sample(layout: str, index: int, grade: int, size: int, seed: int = 0):
    """Phantom image ``index`` placed in ``layout``'s frame: (RGB image, {code: bool
    mask}) at the frame's size, the masks being every class the phantom drew (also those
    the layout does not publish), cropped and padded exactly like the image."""
    frame = raw_frame(layout, size)
    sample = draw_phantom(grade, size, seed=[seed, index])
    return frame.place(sample.image), {c: frame.place(m) for c, m in sample.masks.items()}


def disc_ellipse(mask: np.ndarray) -> tuple:
    """The axis-aligned ellipse (cx, cy, rx, ry, angle) that spans ``mask``'s bounding
    box, in pixels (the phantom draws its disc as such an ellipse)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ValueError('the optic disc is not in the frame')
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    return ((x0 + x1) / 2.0, (y0 + y1) / 2.0, (x1 - x0 + 1) / 2.0, (y1 - y0 + 1) / 2.0, 0.0)


def _write(path: Path, array: np.ndarray, ext: str, params=()) -> None:
    """Encode ``array`` (RGB or single channel) as ``ext`` and write it to ``path``."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, array, list(params))
    if not ok:
        raise OSError(f'{path}: cannot encode {ext}')
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, buf.tobytes())  # a full disk is named as such, with the path


def _write_mask(layout: str, path: Path, mask: np.ndarray) -> None:
    if layout == IDRID:   # RGB, the lesion in the red channel
        rgb = np.zeros(mask.shape + (3,), np.uint8)
        rgb[..., 0] = mask.astype(np.uint8) * 255
        _write(path, rgb, '.tif')
    elif layout == FGADR:
        _write(path, mask.astype(np.uint8) * 255, '.png', [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        _write(path, mask.astype(np.uint8) * 255, '.tif')


def _raw_job(args):
    """Draw, place and write one image with its masks; returns its :class:`RawImage`."""
    layout, index, name, split, grade, size, seed, root = args
    root = Path(root)
    image, masks = draw_raw_sample(layout, index, grade, size, seed)
    rel = _image_rel(layout, name, split)
    if layout == FGADR:
        _write(root / rel, image, '.png', [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        _write(root / rel, image, '.jpg', [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    for code in raw_codes(layout):
        mask = masks.get(code)
        present = mask is not None and bool(mask.any())
        if present or layout == DDR:   # DDR keeps a (blank) file for every class
            _write_mask(layout, root / _mask_rel(layout, name, split, code),
                        mask if present else np.zeros(image.shape[:2], bool))
    if layout != IDRID:   # no published disc: keep the truth aside
        _write(root / TRUTH_OD_DIR / f'{name}.png', masks['OD'].astype(np.uint8) * 255,
               '.png', [cv2.IMWRITE_PNG_COMPRESSION, 3])
    present = tuple(c for c in PHANTOM_CLASSES if c in masks and masks[c].any())
    return RawImage(name, split, rel.as_posix(), int(grade), present,
                    disc_ellipse(masks['OD']))


def _csv_text(rows) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator='\n').writerows(rows)
    return buf.getvalue()


def _idrid_grading_rows(num: int, seg_names: set, seed: int) -> list:
    """``num`` rows of IDRiD's grading CSV for grading-set images ``IDRiD_NNN`` (none of
    which is a segmentation image): name, grade, risk of macular edema."""
    rng = np.random.default_rng([seed, 11])
    rows, j = [], 0
    while len(rows) < num:
        j += 1
        name = f'IDRiD_{j:03d}'
        if name in seg_names:
            continue
        grade = int(rng.integers(0, 5))
        risk = int(rng.integers(0, 3)) if grade >= 2 else 0
        rows.append((name, grade, risk))
    return rows


def write_raw_phantom(out: PathLike, layout: str, num: int, size: int = 512, seed: int = 0,
                      distribution=None, workers: int = 1, progress: bool = True,
                      overwrite: bool = False) -> dict:
    """Write ``num`` phantom images in ``layout``'s published raw layout under ``out``.

    ``layout``: ``idrid``, ``fgadr`` or ``ddr`` (see the module docstring for what each
    writes); ``size``: side of the drawn square that holds the field of view (the frame
    is cut or padded from it, see :func:`raw_frame`); grades balanced, or drawn from
    ``distribution`` (5 weights), as :func:`~.phantom.phantom_grades`. ``out`` must be
    absent or empty unless ``overwrite``; it is written whole or not at all (a temporary
    sibling swapped in when complete, :func:`~.datasets.prepare.atomic_root`).

    Returns a dict: ``layout``, ``root``, ``frame`` (height, width), ``images`` (a
    :class:`RawImage` per image, in drawing order), ``grades`` ({name: grade drawn}),
    ``truth`` (the path of ``phantom_truth.csv``), ``od_masks`` and ``od_file`` (the
    folder of disc masks and the ellipse file, or None where the layout publishes disc
    masks) and ``files`` (images and masks written).
    """
    _check_layout(layout)
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
        raise UserValueError(f'num must be an integer of at least 1, got {num!r}')
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise UserValueError(f'size must be an integer of at least {MIN_SIZE} pixels (the side '
                             f'of the drawn field of view), got {size!r}')
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise UserValueError(f'workers must be an integer of at least 1, got {workers!r}')
    num, size = int(num), int(size)
    grades = phantom_grades(num, seed, distribution)
    out = Path(out)
    # Written into a temporary sibling and swapped in only when whole (atomic_root).
    with atomic_root(out, overwrite) as tmp:
        names = raw_names(layout, num)
        jobs = [(layout, i, name, split, g, size, seed, str(tmp))
                for i, ((name, split), g) in enumerate(zip(names, grades))]
        images = run_jobs(_raw_job, jobs, workers, f'phantom {layout}', progress, chunksize=4)

        if layout == IDRID:
            path = tmp / IDRID_GRADES_CSV
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = _idrid_grading_rows(num, {im.name for im in images}, seed)
            path.write_text(_csv_text([IDRID_GRADES_HEADER] + rows))
        elif layout == FGADR:
            (tmp / FGADR_SEG / FGADR_GRADES).write_text(
                _csv_text([(f'{im.name}.png', im.grade) for im in images]))
        else:
            (tmp / DDR_GRADES).mkdir(parents=True, exist_ok=True)
            for split in DDR_SPLITS:
                lines = [f'{im.name}.jpg {im.grade}\n' for im in images if im.split == split]
                (tmp / DDR_GRADES / f'{split}.txt').write_text(''.join(lines))

        truth = tmp / TRUTH_FILE
        truth.write_text(_csv_text([TRUTH_COLUMNS] + [
            (im.name, im.split, im.file, im.grade, ' '.join(im.classes))
            + tuple(f'{v:g}' for v in im.od) for im in images]))
        if layout != IDRID:
            (tmp / TRUTH_OD_FILE).write_text(_csv_text([OD_FILE_COLUMNS] + [
                (Path(im.file).name,) + tuple(f'{v:g}' for v in im.od) for im in images]))
    truth = out / TRUTH_FILE
    published = raw_codes(layout)
    n_masks = sum(len(published) if layout == DDR else
                  sum(c in im.classes for c in published) for im in images)
    frame = raw_frame(layout, size)
    return {'layout': layout, 'root': str(out), 'frame': (frame.height, frame.width),
            'images': images, 'grades': {im.name: im.grade for im in images},
            'truth': str(truth),
            'od_masks': None if layout == IDRID else str(out / TRUTH_OD_DIR),
            'od_file': None if layout == IDRID else str(out / TRUTH_OD_FILE),
            'files': num + n_masks}


def read_phantom_truth(root: PathLike) -> dict:
    """``phantom_truth.csv`` of a raw phantom root: {name: RawImage}. Errors name the file
    and the missing column or bad row."""
    path = Path(root) / TRUTH_FILE
    if not path.is_file():
        raise UserFileNotFoundError(f'{path}: phantom truth file not found (written by '
                                    f'write_raw_phantom)')
    out = {}
    with path.open(newline='') as f:
        reader = csv.DictReader(f)
        missing = [c for c in TRUTH_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserValueError(f'{path}: missing column(s) {missing}; expected {list(TRUTH_COLUMNS)}')
        for lineno, row in enumerate(reader, start=2):
            try:
                od = tuple(float(row[c]) for c in TRUTH_COLUMNS[5:])
                grade = int(row['grade'])
            except (TypeError, ValueError):
                raise UserValueError(f'{path}:{lineno}: expected an integer grade and numeric '
                                     f'od_* columns, got {row}') from None
            out[row['name']] = RawImage(row['name'], row['split'], row['file'], grade,
                                        tuple(row['classes'].split()), od)
    return out


def format_raw_listing(result: dict) -> str:
    """A short plain-text listing of :func:`write_raw_phantom`'s result."""
    images = result['images']
    h, w = result['frame']
    lines = [f"{len(images)} phantom images in the {result['layout']} layout under "
             f"{result['root']} (frames {w} x {h} px)"]
    folders = Counter(str(Path(im.file).parent) for im in images)
    lines += [f'  {folder}: {n} images' for folder, n in folders.items()]
    grades = Counter(im.grade for im in images)
    lines.append('  grades drawn: ' + ', '.join(f'{g}: {grades[g]}' for g in sorted(grades)))
    published = raw_codes(result['layout'])
    present = Counter(c for im in images for c in im.classes if c in published)
    lines.append('  images with a mask, per published class: '
                 + ', '.join(f'{c} {present[c]}' for c in published))
    lines.append(f"  truth (not part of the published layout): {result['truth']}"
                 + (f", {result['od_masks']}/ and {result['od_file']} (true discs, "
                    f"--od-file format)" if result['od_masks'] else ''))
    return '\n'.join(lines)
