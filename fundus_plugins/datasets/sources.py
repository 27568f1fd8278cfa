"""Readers for the published layouts of IDRiD, FGADR and DDR.

Each reader returns :class:`SourceRecord` s: where an image and its masks are, and its DR
grade if the dataset gives one. Nothing is read from the images here (that is
:mod:`fundus_plugins.datasets.prepare`'s job), so a reader is fast and its errors are
about the layout: a missing folder, a grade file with a bad row.
"""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Union

from ..classes import DDR, FGADR, IDRID, ClassSet
from ..errors import UserFileNotFoundError, UserValueError
from .layout import check_grade, check_name

PathLike = Union[str, Path]
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp')


@dataclass
class SourceRecord:
    """One image of a public dataset, before preparation."""

    dataset: str
    name: str                       # unique output name, e.g. 'idrid_IDRiD_01'
    image: Path
    masks: dict = field(default_factory=dict)   # code -> Path, or None: no lesion
    grade: Optional[int] = None
    grade_source: str = 'ungraded'  # 'annotated' or 'ungraded'
    annotated: tuple = ()           # codes this dataset annotates (others: not annotated)


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise UserFileNotFoundError(f'{path}: folder not found ({what})')
    return path


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _say_links_out(records: list, root: Path) -> list:
    """Warn, naming them, about image or mask files that lie outside ``root`` through a
    symbolic link (they are read all the same: a user may link a dataset together)."""
    top = Path(root).resolve()
    outside = []
    for r in records:
        for path in [r.image, *(m for m in r.masks.values() if m is not None)]:
            real = Path(path).resolve()
            if top != real and top not in real.parents:
                outside.append(f'{path} -> {real}')
    if outside:
        warnings.warn(f'{root}: {len(outside)} file(s) are symbolic links to outside the '
                      f'input root, read from there: {outside[:3]}'
                      f'{" ..." if len(outside) > 3 else ""}')
    return records


def _mask_folders(classes: ClassSet, dataset: str) -> dict:
    """code -> folder name, for the selected classes the dataset annotates."""
    return {c.code: c.sources[dataset] for c in classes.classes[2:] if dataset in c.sources}


class _Grades(dict):
    """{image name: grade} that refuses an image graded twice with different grades,
    naming the file, both lines and both grades (the same grade twice is kept once)."""

    def __init__(self):
        super().__init__()
        self.where = {}

    def add(self, name: str, grade, where: str) -> None:
        if name in self.where and self.get(name) != grade:
            raise UserValueError(
                f'{where}: image {name!r} has grade {_grade_text(grade)} here but '
                f'{_grade_text(self.get(name))} at {self.where[name]}; the grade file '
                f'lists it twice with different grades. Keep the one row that is right '
                f'and run again')
        self.where.setdefault(name, where)
        if grade is not None:
            self[name] = grade


def _grade_text(grade) -> str:
    return 'ungradable' if grade is None else str(grade)


# ------------------------------------------------------------------------------- IDRiD
IDRID_SEG = 'A. Segmentation'
IDRID_IMAGES = '1. Original Images'
IDRID_MASKS = '2. All Segmentation Groundtruths'
IDRID_SETS = ('a. Training Set', 'b. Testing Set')
IDRID_GRADES = Path('B. Disease Grading') / '2. Groundtruths'


def read_idrid_grades(root: PathLike) -> dict:
    """Grades from every CSV under ``B. Disease Grading/2. Groundtruths``.

    Columns ``Image name``, ``Retinopathy grade`` (and ``Risk of macular edema `` with
    its trailing space, unused); header names are matched after stripping spaces.
    Returns {image name: grade}; an empty dict when the grading part is absent. An image
    listed twice (in one file or two) with different grades is an error naming both rows.
    """
    folder = Path(root) / IDRID_GRADES
    grades = _Grades()
    if not folder.is_dir():
        return grades
    for path in sorted(folder.glob('*.csv')):
        with path.open(newline='', encoding='utf-8-sig') as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            try:
                i_name = header.index('Image name')
                i_grade = header.index('Retinopathy grade')
            except ValueError:
                raise UserValueError(f'{path}: expected columns "Image name" and '
                                     f'"Retinopathy grade", found {header}') from None
            for lineno, row in enumerate(reader, start=2):
                if not row or not any(cell.strip() for cell in row):
                    continue
                name = check_name(row[i_name].strip(), f'{path}:{lineno}: image')
                grades.add(name, check_grade(row[i_grade], f'{path}:{lineno}'),
                           f'{path}:{lineno}')
    return dict(grades)


def read_idrid(root: PathLike, classes: ClassSet) -> list[SourceRecord]:
    """IDRiD's segmentation part (both its training and testing sets).

    Masks: ``<set>/<class folder>/<stem>_<CODE>.tif``; a missing file means no lesion of
    that class. Grades come from the grading CSVs where the image names match exactly
    (the segmentation images are named ``IDRiD_NN`` and the grading images ``IDRiD_NNN``,
    so in the published data they do not: those images are ``ungraded``).
    """
    root = Path(root)
    seg = _require_dir(root / IDRID_SEG, 'IDRiD segmentation part: expected the IDRiD root '
                                         f'holding "{IDRID_SEG}"')
    grades = read_idrid_grades(root)
    folders = _mask_folders(classes, IDRID)
    records = []
    for subset in IDRID_SETS:
        img_dir = seg / IDRID_IMAGES / subset
        if not img_dir.is_dir():
            continue
        for img in _images_in(img_dir):
            stem = img.stem
            masks = {}
            for code, folder in folders.items():
                path = seg / IDRID_MASKS / subset / folder / f'{stem}_{code}.tif'
                masks[code] = path if path.is_file() else None
            grade = grades.get(stem)
            records.append(SourceRecord(
                dataset=IDRID, name=f'{IDRID}_{stem}', image=img, masks=masks, grade=grade,
                grade_source='ungraded' if grade is None else 'annotated',
                annotated=tuple(folders)))
    if not records:
        raise UserFileNotFoundError(f'{seg / IDRID_IMAGES}: no images found in '
                                    f'{" or ".join(IDRID_SETS)}')
    return _say_links_out(records, root)


# ------------------------------------------------------------------------------- FGADR
FGADR_IMAGES = 'Original_Images'
FGADR_GRADES = 'DR_Seg_Grading_Label.csv'


def _fgadr_root(root: Path) -> Path:
    if (root / 'Seg-set').is_dir():
        root = root / 'Seg-set'
    return _require_dir(root / FGADR_IMAGES, 'FGADR Seg-set: expected the folder holding '
                                             f'"Seg-set" or "{FGADR_IMAGES}"').parent


def read_fgadr_grades(path: PathLike) -> dict:
    """``DR_Seg_Grading_Label.csv``: no header, rows ``file name, grade``; an image listed
    twice with different grades is an error naming both lines."""
    path = Path(path)
    if not path.is_file():
        raise UserFileNotFoundError(f'{path}: FGADR grade file not found')
    grades = _Grades()
    with path.open(newline='', encoding='utf-8-sig') as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise UserValueError(f'{path}:{lineno}: expected "file name, grade", got {row}')
            name = check_name(row[0].strip(), f'{path}:{lineno}: image')
            grades.add(name, check_grade(row[1], f'{path}:{lineno}'), f'{path}:{lineno}')
    return dict(grades)


def _read_exclusions(exclude) -> set:
    """Image stems of an exclusion list (names, or a file of them, one a line); each must
    be a plain file name."""
    if exclude is None:
        return set()
    if isinstance(exclude, (str, Path)):
        path = Path(exclude)
        if not path.is_file():
            raise UserFileNotFoundError(f'{path}: exclusion list not found')
        entries = [(f'{path}:{i}', ln.strip()) for i, ln in
                   enumerate(path.read_text().splitlines(), start=1)
                   if ln.strip() and not ln.strip().startswith('#')]
    else:
        entries = [(f'exclusion list item {i}', str(e).strip())
                   for i, e in enumerate(exclude, start=1)]
    return {Path(check_name(name, where)).stem for where, name in entries}


def read_fgadr(root: PathLike, classes: ClassSet,
               exclude: Union[None, PathLike, Iterable[str]] = None) -> list[SourceRecord]:
    """FGADR ``Seg-set``. A mask file absent from a class folder means no such lesion.

    ``exclude``: image names (with or without extension), or a text file of them, one a
    line, to drop (the paper drops some images for annotator bias). A name that matches no
    image is an error, so that a typo does not go unnoticed.
    """
    seg = _fgadr_root(Path(root))
    grades = read_fgadr_grades(seg / FGADR_GRADES)
    excluded = _read_exclusions(exclude)
    folders = _mask_folders(classes, FGADR)
    images = _images_in(seg / FGADR_IMAGES)
    if not images:
        raise UserFileNotFoundError(f'{seg / FGADR_IMAGES}: no images found')
    unknown = excluded - {p.stem for p in images}
    if unknown:
        raise UserValueError(f'FGADR exclusion list names images that are not in '
                             f'{seg / FGADR_IMAGES}: {sorted(unknown)}')
    records = []
    for img in images:
        if img.stem in excluded:
            continue
        masks = {}
        for code, folder in folders.items():
            path = seg / folder / img.name
            masks[code] = path if path.is_file() else None
        grade = grades.get(img.name, grades.get(img.stem))
        records.append(SourceRecord(
            dataset=FGADR, name=f'{FGADR}_{img.stem}', image=img, masks=masks, grade=grade,
            grade_source='ungraded' if grade is None else 'annotated',
            annotated=tuple(folders)))
    ungraded = [r.image.name for r in records if r.grade is None]
    if ungraded:
        warnings.warn(f'{seg / FGADR_GRADES} has no grade for {len(ungraded)} image(s), '
                      f'kept as ungraded: {ungraded[:5]}{" ..." if len(ungraded) > 5 else ""}')
    return _say_links_out(records, Path(root))


# --------------------------------------------------------------------------------- DDR
DDR_SEG = 'lesion_segmentation'
DDR_SPLITS = ('train', 'valid', 'test')
DDR_UNGRADABLE = 5


def read_ddr(root: PathLike, classes: ClassSet) -> list[SourceRecord]:
    """DDR ``lesion_segmentation/{train,valid,test}/{image,label/<CODE>}``.

    Grades from ``DR_grading/{train,valid,test}.txt`` (``name grade`` lines) where present;
    DDR's grade 5 (ungradable) is kept as ungraded. An image listed twice (in one file or
    two) with different grades is an error naming both lines.
    """
    root = Path(root)
    seg = _require_dir(root / DDR_SEG, f'DDR: expected the DDR root holding "{DDR_SEG}"')
    grades = _Grades()
    for split in DDR_SPLITS:
        path = root / 'DR_grading' / f'{split}.txt'
        if not path.is_file():
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            parts = line.split()
            if len(parts) < 2:
                continue
            name = check_name(parts[0], f'{path}:{lineno}: image')
            grade = None if parts[1].strip() == str(DDR_UNGRADABLE) else \
                check_grade(parts[1], f'{path}:{lineno}')
            grades.add(Path(name).stem, grade, f'{path}:{lineno}')
    folders = _mask_folders(classes, DDR)
    records = []
    for split in DDR_SPLITS:
        img_dir = seg / split / 'image'
        if not img_dir.is_dir():
            continue
        for img in _images_in(img_dir):
            masks = {}
            for code, folder in folders.items():
                path = seg / split / 'label' / folder / f'{img.stem}.tif'
                masks[code] = path if path.is_file() else None
            grade = grades.get(img.stem)
            records.append(SourceRecord(
                dataset=DDR, name=f'{DDR}_{img.stem}', image=img, masks=masks, grade=grade,
                grade_source='ungraded' if grade is None else 'annotated',
                annotated=tuple(folders)))
    if not records:
        raise UserFileNotFoundError(f'{seg}: no images under {"/".join(DDR_SPLITS)}/image')
    return _say_links_out(records, root)


READERS = {IDRID: read_idrid, FGADR: read_fgadr, DDR: read_ddr}
