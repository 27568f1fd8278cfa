"""The prepared ("canonical") dataset layout shared by every part of the project.

::

    <root>/images/<name>.png     RGB, square, cropped to the field of view
    <root>/labels/<name>.png     uint8, one class index per pixel (order of classes.json)
    <root>/meta.csv              name, grade, grade_source, dataset, split, annotated, od_source
    <root>/classes.json          the ordered class list and palette the labels were written with

``grade`` is 0-4, or empty for an image without a grade (``grade_source`` ``ungraded``);
``grade_source`` is ``annotated``, ``predicted``, ``synthetic`` or ``ungraded``;
``split`` is ``train`` or ``test``. A label-only folder (as ``tools/sample_labels.py``
writes) has no ``images/``.

``annotated`` lists, space-separated, the classes of ``classes.json`` (besides ``BG`` and
``RET``) whose masks the image's source provides: FGADR and DDR draw no optic disc, so
their rows leave ``OD`` out, and a label map's ``RET`` pixels are only known not to be
such a class where the class is annotated. ``*`` (and a meta.csv without the column,
written before it existed) means every class of ``classes.json``. ``od_source`` says where
the ``OD`` pixels of the label come from: ``annotated`` (the source's mask), ``drawn`` (an
ellipse from a per-image disc file), ``predicted`` (the disc model of ``prepare_data``),
``generated`` (a synthetic map), or empty (no disc in the label: no ``OD`` class, or the
source lacks it and it was not filled).
"""
from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from ..classes import BASE_CODES, ClassSet
from ..errors import UserFileNotFoundError, UserValueError
from ..locks import held_here

META_COLUMNS = ('name', 'grade', 'grade_source', 'dataset', 'split', 'annotated', 'od_source')
#: Columns a meta.csv must have; older files lack the last two (read as: all annotated).
REQUIRED_COLUMNS = META_COLUMNS[:5]
ALL_ANNOTATED = '*'
OD_SOURCES = ('annotated', 'drawn', 'predicted', 'generated', '')
GRADES = (0, 1, 2, 3, 4)
GRADE_SOURCES = ('annotated', 'predicted', 'synthetic', 'ungraded')
SPLITS = ('train', 'test')
TEST_FRACTION = 0.2

#: The mark of an output being written in place (see :func:`~.prepare.atomic_root`).
INCOMPLETE = '.incomplete'

PathLike = Union[str, Path]


@dataclass(frozen=True)
class MetaRow:
    name: str
    grade: Optional[int]
    grade_source: str
    dataset: str
    split: str
    #: lesion codes the source annotates; None: every class of the root's classes.json
    annotated: Optional[tuple] = None
    od_source: str = ''

    def as_csv(self) -> dict:
        return {'name': self.name, 'grade': '' if self.grade is None else str(self.grade),
                'grade_source': self.grade_source, 'dataset': self.dataset,
                'split': self.split,
                'annotated': ALL_ANNOTATED if self.annotated is None
                else ' '.join(self.annotated),
                'od_source': self.od_source}

    def annotates(self, code: str) -> bool:
        """Whether the source of this image annotates ``code`` (BG and RET: always)."""
        return self.annotated is None or code in BASE_CODES or code in self.annotated


def check_name(name: str, where: str) -> str:
    """A sample name must be a plain file stem: no path separator, no ``..``, not
    absolute, no leading dot; it becomes ``images/<name>.png`` inside a root."""
    bad = (not name or '/' in name or '\\' in name or name.startswith('.')
           or name != name.strip() or any(ord(ch) < 32 for ch in name))
    if bad:
        raise UserValueError(f'{where}: name {name!r} is not a plain file stem (no path '
                             f'separators, "..", leading dot or surrounding spaces)')
    return name


def check_grade(grade, where: str) -> Optional[int]:
    """Parse a DR grade; ``None``/empty means ungraded. Raises naming ``where``."""
    if grade is None or (isinstance(grade, str) and grade.strip() == ''):
        return None
    text = str(grade).strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is None or not number.is_integer():
        raise UserValueError(f'{where}: grade {grade!r} is not an integer; expected one of '
                             f'{list(GRADES)}')
    value = int(number)
    if value not in GRADES:
        raise UserValueError(f'{where}: grade {value} is outside 0-4 (expected one of '
                             f'{list(GRADES)})')
    return value


def read_meta(root: PathLike) -> list[MetaRow]:
    """Read and validate ``<root>/meta.csv``; errors name the file and the row. A root
    marked incomplete (``.incomplete``: written in place by a run that has not finished,
    :func:`~.prepare.atomic_root`) is refused, except by the run writing it."""
    path = Path(root) / 'meta.csv'
    mark = Path(root) / INCOMPLETE
    if mark.is_file() and not held_here(root):
        raise UserValueError(f'{root}: incomplete: a run writing it in place has not '
                             f'finished ({mark}); run the tool that writes it again')
    if not path.is_file():
        raise UserFileNotFoundError(f'{path}: meta.csv not found; {root} is not a prepared '
                                    f'dataset (expected {", ".join(META_COLUMNS)} columns)')
    rows = []
    with path.open(newline='') as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserValueError(f'{path}: missing column(s) {missing}; expected '
                                 f'{list(META_COLUMNS)}, found {reader.fieldnames}')
        seen = set()
        for lineno, rec in enumerate(reader, start=2):
            where = f'{path}:{lineno}'
            name = (rec['name'] or '').strip()
            if not name:
                raise UserValueError(f'{where}: empty name')
            check_name(name, where)
            if name in seen:
                raise UserValueError(f'{where}: name {name!r} appears twice')
            seen.add(name)
            grade = check_grade(rec['grade'], where)
            source = rec['grade_source'].strip()
            if source not in GRADE_SOURCES:
                raise UserValueError(f'{where}: grade_source {source!r}; expected one of '
                                     f'{list(GRADE_SOURCES)}')
            if (grade is None) != (source == 'ungraded'):
                raise UserValueError(f'{where}: grade {rec["grade"]!r} does not agree with '
                                     f'grade_source {source!r} (only ungraded rows have no grade)')
            split = rec['split'].strip()
            if split not in SPLITS:
                raise UserValueError(f'{where}: split {split!r}; expected one of {list(SPLITS)}')
            annotated = _parse_annotated(rec.get('annotated'), where)
            od_source = (rec.get('od_source') or '').strip()
            if od_source not in OD_SOURCES:
                raise UserValueError(f'{where}: od_source {od_source!r}; expected one of '
                                     f'{[s for s in OD_SOURCES if s]} or empty')
            rows.append(MetaRow(name, grade, source, rec['dataset'].strip(), split,
                                annotated, od_source))
    return rows


def _parse_annotated(text: Optional[str], where: str) -> Optional[tuple]:
    """The ``annotated`` cell: ``*`` or absent -> None (all), else the codes it lists."""
    if text is None or text.strip() == ALL_ANNOTATED:
        return None
    codes = tuple(text.split())
    bad = [c for c in codes if not c.isidentifier()]
    if bad:
        raise UserValueError(f'{where}: annotated {text!r} holds {bad}, which are not class '
                             f'codes; expected space-separated codes (e.g. "OD MA HE EX SE") or '
                             f'{ALL_ANNOTATED!r}')
    if len(set(codes)) != len(codes):
        raise UserValueError(f'{where}: annotated {text!r} lists a class twice')
    return codes


def write_meta(root: PathLike, rows: Iterable[MetaRow]) -> Path:
    """Write ``rows`` (sorted by name) as ``<root>/meta.csv``; ``annotated=None`` is
    written as the root's lesion codes when its classes.json is there (else ``*``)."""
    path = Path(root) / 'meta.csv'
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: r.name)
    for row in rows:
        check_name(row.name, f'{path}: row')
    if any(r.annotated is None for r in rows) and (Path(root) / 'classes.json').is_file():
        codes = read_classes(root).lesion_codes
        rows = [replace(r, annotated=codes) if r.annotated is None else r for r in rows]
    # Whole or not at all: a stop while writing leaves the old meta.csv.
    tmp = path.with_name(f'.{path.name}.partial')
    with tmp.open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=META_COLUMNS, lineterminator='\n')
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_csv())
    os.replace(tmp, path)
    return path


def stratified_split(rows: Sequence[MetaRow], seed: int = 0,
                     test_fraction: float = TEST_FRACTION) -> list[MetaRow]:
    """Assign ``split`` by a seeded draw stratified by (dataset, grade).

    ``round(test_fraction * N)`` images go to ``test`` in all; each stratum gets
    ``floor(test_fraction * n)`` of them and the rest go, one each, to the strata with the
    largest remainders (ties broken by the seed), so small strata are not all left out.
    Which images of a stratum are drawn depends on the seed only, not on row order.
    """
    if not 0 <= test_fraction < 1:
        raise UserValueError(f'test_fraction must be in [0, 1), got {test_fraction}')
    strata = defaultdict(list)
    for row in rows:
        strata[(row.dataset, -1 if row.grade is None else row.grade)].append(row.name)
    keys = sorted(strata)
    rng = np.random.default_rng(seed)
    exact = {k: test_fraction * len(strata[k]) for k in keys}
    n_test = {k: int(np.floor(exact[k])) for k in keys}
    left = int(round(test_fraction * len(rows))) - sum(n_test.values())
    tie = rng.permutation(len(keys))
    by_remainder = sorted(range(len(keys)),
                          key=lambda i: (-(exact[keys[i]] - n_test[keys[i]]), tie[i]))
    for i in by_remainder[:max(0, left)]:
        n_test[keys[i]] += 1
    test = set()
    for k in keys:
        names = sorted(strata[k])
        test.update(rng.permutation(names)[:n_test[k]].tolist())
    return [replace(r, split='test' if r.name in test else 'train') for r in rows]


def label_path(root: PathLike, name: str) -> Path:
    return Path(root) / 'labels' / f'{name}.png'


def image_path(root: PathLike, name: str) -> Path:
    return Path(root) / 'images' / f'{name}.png'


def read_classes(root: PathLike) -> ClassSet:
    return ClassSet.load(Path(root) / 'classes.json')
