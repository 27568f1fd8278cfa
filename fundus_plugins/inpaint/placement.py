"""Lesion maps placed on a real image: the label map of an inpainted composite.

Whole-image synthesis draws the anatomy too; inpainting keeps a real healthy (grade-0)
photograph and paints lesions into it (after Feng et al., MICCAI 2024). This module makes
the label map of such a composite, in numpy, without a model:

* :func:`place_lesions` takes a real label map (its field of view, retina and optic disc)
  and a lesion map (same class order, any size) and writes the lesion map's lesions onto
  the real one: the lesion map is resized (nearest) to the real map's size and mirrored
  left-right when its disc lies on the other side (:func:`disc_side`), so lesions keep
  their place relative to the disc and the macula; lesions outside the real field of view
  are dropped, and so are lesions on a real class they cannot lie on (the rule table,
  :data:`DEFAULT_PLACEMENT_RULES`: no MA, HE, EX or SE on the disc). Where a placed and a
  real lesion overlap, the class of higher priority (:class:`~fundus_plugins.classes.ClassSet`)
  keeps the pixel. It returns the composite map and the mask of the pixels it changed,
  which is the region to inpaint.
* Lesion maps come from the label ACGAN (:func:`sampled_lesion_maps` gathers what
  :func:`fundus_plugins.apis.sample_label_maps` yields) or from the real maps of a
  prepared root, shuffled between its images (:func:`real_lesion_maps`).
* :func:`place_on_healthy` pairs each grade-0 image of a prepared root with a grade and a
  lesion map of that grade (seeded) and yields the composites; it writes nothing.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Optional, Tuple, Union

import cv2
import numpy as np

from ..classes import BACKGROUND, RETINA, ClassSet, get_lesion_class
from ..datasets.layout import GRADES, image_path, label_path, read_classes, read_meta
from ..datasets.prepare import read_image
from ..errors import UserFileNotFoundError, UserValueError

PathLike = Union[str, Path]

#: The class of the optic disc, kept from the real image and used to tell its side.
OPTIC_DISC = 'OD'
SIDES = ('left', 'right')

#: Which real classes each placed lesion class must not be written on (``BG``, outside the
#: field of view, never takes a lesion whatever the table says). Microaneurysms,
#: haemorrhages and exudates lie in the retina, not on the disc; neovascularisation at the
#: disc (NVD) and classes the table does not list may lie on it.
DEFAULT_PLACEMENT_RULES: Mapping[str, Tuple[str, ...]] = {
    'MA': (OPTIC_DISC,), 'HE': (OPTIC_DISC,), 'EX': (OPTIC_DISC,), 'SE': (OPTIC_DISC,)}


class Placement(NamedTuple):
    """What :func:`place_lesions` returns."""

    #: (H, W) uint8: the composite label map, in the class order of the inputs.
    label: np.ndarray
    #: (H, W) bool: the pixels whose class the placed lesions changed (the region to inpaint).
    mask: np.ndarray
    #: whether the lesion map was mirrored left-right to match the real disc's side.
    mirrored: bool


class PlacedSample(NamedTuple):
    """One composite of :func:`place_on_healthy`."""

    #: name of the composite: ``<healthy name>_g<grade>`` (``_<k>_g<grade>`` with
    #: ``per_image > 1``).
    name: str
    grade: int
    #: (H, W, 3) uint8 RGB: the real healthy image, unchanged (the inpainter paints it).
    image: np.ndarray
    #: (H, W) uint8: the composite label map (:attr:`Placement.label`).
    label: np.ndarray
    #: (H, W) bool: the placed lesion pixels (:attr:`Placement.mask`).
    mask: np.ndarray
    #: name of the healthy image in its root.
    healthy: str
    #: index of the lesion map in ``lesion_maps[grade]``.
    lesion_index: int
    mirrored: bool


# ----------------------------------------------------------------------------------------
# Checks
def _check_label(label, classes: ClassSet, what: str) -> np.ndarray:
    """A 2-D integer map whose values are indices of ``classes``; errors name ``what``."""
    label = np.asarray(label)
    if label.ndim != 2 or label.size == 0:
        raise ValueError(f'{what}: expected a 2-D label map (H, W), got shape {label.shape}')
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f'{what}: expected integer class indices, got dtype {label.dtype}')
    low, high = int(label.min()), int(label.max())
    if low < 0 or high >= len(classes):
        bad = low if low < 0 else high
        raise ValueError(f'{what}: label value {bad} outside 0..{len(classes) - 1}; its '
                         f'classes differ from {list(classes.codes)}')
    return label.astype(np.uint8, copy=False)


def _check_rules(rules: Mapping) -> dict:
    """``{code: tuple of codes}``, every code registered."""
    if not isinstance(rules, Mapping):
        raise TypeError(f'rules must map a lesion code to the codes it must not be placed '
                        f'on, e.g. {dict(DEFAULT_PLACEMENT_RULES)}; got {rules!r}')
    out = {}
    for code, banned in rules.items():
        get_lesion_class(code)  # a KeyError naming an unknown code
        if isinstance(banned, str) or not isinstance(banned, Iterable):
            raise TypeError(f'rules[{code!r}]: expected a list of class codes, got '
                            f'{banned!r}')
        banned = tuple(banned)
        for other in banned:
            get_lesion_class(other)
        out[code] = banned
    return out


def _placed_codes(classes: ClassSet, lesion_classes) -> tuple:
    """The codes of ``classes`` to take from a lesion map (default: every lesion class
    except the disc)."""
    if lesion_classes is None:
        return tuple(c for c in classes.lesion_codes if c != OPTIC_DISC)
    if isinstance(lesion_classes, str):
        raise TypeError(f'lesion_classes must be a list of codes, got the string '
                        f'{lesion_classes!r}; write [{lesion_classes!r}]')
    codes = tuple(lesion_classes)
    for code in codes:
        classes.index(code)  # a KeyError naming a code the class set lacks
        if code in (BACKGROUND, RETINA, OPTIC_DISC):
            raise ValueError(f'lesion_classes: {code} is anatomy, not a lesion; the real '
                             f"image's {code} is kept (got {list(codes)})")
    return codes


# ----------------------------------------------------------------------------------------
# Placement
def disc_side(label, classes) -> Optional[str]:
    """``'left'`` or ``'right'``: the side of the field of view's centre that the optic
    disc (class ``OD``) of ``label`` lies on; ``None`` when the map has no disc pixels or
    ``classes`` has no ``OD``.

    As :class:`~fundus_plugins.datasets.transforms.AlignOpticDisc` decides it: the mean
    column of the disc pixels against the centre, a tie counting as right; the centre is
    the mean column of the field of view (non-``BG`` pixels), which is the image's centre
    column ``(W - 1) / 2`` for a prepared (field-of-view-centred) map, or that column when
    the map has no field of view.
    """
    classes = ClassSet(classes)
    label = _check_label(label, classes, 'disc_side')
    if OPTIC_DISC not in classes.codes:
        return None
    cols = np.nonzero(label == classes.index(OPTIC_DISC))[1]
    if not cols.size:
        return None
    fov_cols = np.nonzero(label != classes.index(BACKGROUND))[1]
    centre = fov_cols.mean() if fov_cols.size else (label.shape[1] - 1) / 2
    return 'right' if cols.mean() >= centre else 'left'


def place_lesions(real_label, lesion_map, classes, lesion_classes=None, rules=None,
                  align_disc: bool = True) -> Placement:
    """Write the lesions of ``lesion_map`` onto the real label map ``real_label``.

    Args:
        real_label: (H, W) uint8 label map of the real image, in the order of ``classes``.
            It must have a field of view (non-``BG`` pixels) and, when ``classes`` has
            ``OD``, disc pixels (lesions are kept off a disc only where it is labelled).
        lesion_map: a label map in the same class order, any size; resized to (H, W) by
            nearest neighbour. Only its classes ``lesion_classes`` are taken.
        classes: the :class:`ClassSet` (or codes) of both maps.
        lesion_classes: codes to place (default: every lesion class of ``classes`` but
            ``OD``); ``BG``, ``RET`` and ``OD`` are refused.
        rules: ``{code: [codes]}``: the real classes a placed class must not be written
            on (default :data:`DEFAULT_PLACEMENT_RULES`; a code it does not list may go on
            any class of the field of view). Codes absent from ``classes`` are ignored.
        align_disc: mirror ``lesion_map`` left-right when its disc lies on the other side
            of its centre than the real disc (:func:`disc_side`); a map without disc, or
            a real map without, is not mirrored.

    Returns:
        :class:`Placement` ``(label, mask, mirrored)``. ``label`` keeps the real map's
        ``BG``, and its ``RET`` and ``OD`` wherever no lesion was placed (``OD`` takes only
        lesions the rules allow there); a placed lesion takes a pixel of ``RET`` always
        and of a real class only when its priority is higher (equal priority: the real
        class stays). ``mask`` is where ``label`` differs from ``real_label``.
    """
    classes = ClassSet(classes)
    real = _check_label(real_label, classes, 'real label map')
    lesions = _check_label(lesion_map, classes, 'lesion map')
    codes = _placed_codes(classes, lesion_classes)
    rules = _check_rules(DEFAULT_PLACEMENT_RULES if rules is None else rules)
    bg = classes.index(BACKGROUND)
    if not (real != bg).any():
        raise ValueError('real label map: no field of view (every pixel is BG); lesions '
                         'cannot be placed on it')
    has_od = OPTIC_DISC in classes.codes
    if has_od and not (real == classes.index(OPTIC_DISC)).any():
        raise ValueError('real label map: no optic disc (no OD pixel), so lesions cannot be '
                         'kept off the disc; give a map with its disc labelled (or a class '
                         'set without OD)')

    h, w = real.shape
    if lesions.shape != (h, w):
        lesions = cv2.resize(lesions, (w, h), interpolation=cv2.INTER_NEAREST)
    mirrored = False
    if align_disc:
        real_side, map_side = disc_side(real, classes), disc_side(lesions, classes)
        mirrored = None not in (real_side, map_side) and real_side != map_side
        if mirrored:
            lesions = np.ascontiguousarray(lesions[:, ::-1])

    priority = np.asarray(classes.priorities)
    retina = classes.index(RETINA)
    out = real.copy()
    for code in codes:
        index = classes.index(code)
        where = (lesions == index) & (real != bg)
        for banned in rules.get(code, ()):
            if banned in classes.codes:
                where &= real != classes.index(banned)
        # RET always gives way; a real class only to a higher-priority lesion.
        where &= (real == retina) | (priority[real] < priority[index])
        out[where] = index
    return Placement(out, out != real, bool(mirrored))


# ----------------------------------------------------------------------------------------
# Lesion sources
def sampled_lesion_maps(samples: Iterable, classes=None) -> dict:
    """Gather label-ACGAN maps by grade: ``{grade: [uint8 map, ...]}`` in the order given.

    ``samples`` yields ``(grade, map)`` or ``(grade, index, map)`` (what
    :func:`fundus_plugins.apis.sample_label_maps` yields); with ``classes``, every map's
    values are checked against them.
    """
    classes = None if classes is None else ClassSet(classes)
    out = defaultdict(list)
    for i, item in enumerate(samples):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise ValueError(f'lesion sample {i}: expected (grade, map) or (grade, index, '
                             f'map), got {type(item).__name__} of length '
                             f'{len(item) if hasattr(item, "__len__") else "?"}')
        grade, m = item[0], item[-1]
        if grade not in GRADES:
            raise ValueError(f'lesion sample {i}: grade {grade!r} is outside 0-4')
        m = np.asarray(m)
        if classes is not None:
            m = _check_label(m, classes, f'lesion sample {i} (grade {grade})')
        elif m.ndim != 2:
            raise ValueError(f'lesion sample {i}: expected a 2-D label map, got shape '
                             f'{m.shape}')
        out[int(grade)].append(m.astype(np.uint8, copy=False))
    return dict(out)


def _derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of ``range(n)`` with no fixed point (uniform over them),
    drawn by rejection; the identity for ``n == 1``."""
    if n < 2:
        return np.arange(n)
    while True:
        perm = rng.permutation(n)
        if (perm != np.arange(n)).all():
            return perm


def _read_label(path: Path) -> np.ndarray:
    """A prepared label map (single-channel uint8 PNG); errors name the file."""
    if not path.is_file():
        raise UserFileNotFoundError(f'{path}: label map not found')
    data = np.fromfile(str(path), dtype=np.uint8)
    label = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if label is None:
        raise UserValueError(f'{path}: cannot decode the label map (corrupt or not a PNG)')
    if label.ndim != 2 or label.dtype != np.uint8:
        raise UserValueError(f'{path}: a label map must be a single-channel uint8 PNG, got '
                             f'shape {label.shape} and dtype {label.dtype}')
    return label


def _lookup(root: PathLike, classes: ClassSet) -> tuple:
    """(root's ClassSet, lookup table from its indices to those of ``classes``). Every
    class of ``classes`` must be in the root; the root's other classes become ``RET``."""
    stored = read_classes(root)
    missing = [c for c in classes.codes if c not in stored.codes]
    if missing:
        raise UserValueError(f'{Path(root) / "classes.json"}: lacks {missing} of the classes '
                             f'{list(classes.codes)}; its classes are {list(stored.codes)}')
    return stored, classes.remap_from(stored)


def _read_root_label(root: PathLike, name: str, stored: ClassSet, lut: np.ndarray):
    path = label_path(root, name)
    label = _read_label(path)
    if int(label.max()) >= len(stored):
        raise UserValueError(f'{path}: label value {int(label.max())} outside '
                             f'0..{len(stored) - 1} (its root\'s classes.json lists '
                             f'{list(stored.codes)})')
    return lut[label]


def _names_of_grade(root: Path, grade: int, split, what: str, purpose: str) -> list:
    """Sorted names of ``root``'s images of ``grade`` (in ``split`` when given); none is an
    error saying ``what`` was looked for and for which ``purpose``."""
    rows = read_meta(root)
    names = sorted(r.name for r in rows if r.grade == grade
                   and (split is None or r.split == split))
    if not names:
        found = sorted({r.grade for r in rows if r.grade is not None})
        raise UserValueError(f'{root / "meta.csv"}: no {what}'
                             f'{"" if split is None else f" in split {split!r}"} to {purpose} '
                             f'(grades found: {found})')
    return names


def read_healthy(root: PathLike, name: str, stored: ClassSet, lut: np.ndarray,
                 classes: ClassSet) -> tuple:
    """(RGB image, label map in ``classes``' order) of a healthy image of a prepared root,
    checked: the same size, and a field of view to place lesions in; errors name the
    file."""
    image = read_image(image_path(root, name))
    real = _read_root_label(root, name, stored, lut)
    where = label_path(root, name)
    if real.shape != image.shape[:2]:
        raise UserValueError(f'{where}: label is {real.shape[1]}x{real.shape[0]} but its '
                             f'image {image_path(root, name)} is '
                             f'{image.shape[1]}x{image.shape[0]}')
    if not (real != classes.index(BACKGROUND)).any():
        raise UserValueError(f'{where}: the label has no field of view (every pixel is BG); '
                             f'a healthy image needs one to place lesions in')
    return image, real


class RealLesionMaps(Sequence):
    """The real label maps of one grade of a prepared root, shuffled between its images.

    Item ``i`` is the map of image ``sources[i]``, read from disk when asked for and
    remapped to ``classes``; ``targets`` are the images of the grade sorted by name and
    ``sources`` a seeded permutation of them without fixed point, so image
    ``targets[i]`` never gets its own map back when the grade has others. Build it with
    :func:`real_lesion_maps`.
    """

    def __init__(self, root: PathLike, classes, grade: int, seed: int = 0,
                 split: Optional[str] = None):
        if grade not in GRADES:
            raise ValueError(f'grade {grade!r} is outside 0-4')
        self.root = Path(root)
        self.classes = ClassSet(classes)
        self.grade = int(grade)
        names = _names_of_grade(self.root, grade, split, f'images of grade {grade}',
                                'take lesion maps from')
        self._stored, self._lut = _lookup(root, self.classes)
        rng = np.random.default_rng([seed, self.grade])
        self.targets: tuple = tuple(names)
        self.sources: tuple = tuple(names[j] for j in _derangement(len(names), rng))

    def __len__(self):
        return len(self.sources)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return _read_root_label(self.root, self.sources[i], self._stored, self._lut)

    def assignment(self) -> dict:
        """``{image name: name of the image whose map it gets}``."""
        return dict(zip(self.targets, self.sources))

    def __repr__(self):
        return (f'{self.__class__.__name__}({str(self.root)!r}, grade={self.grade}, '
                f'{len(self)} maps)')


def real_lesion_maps(root: PathLike, classes, grade: int, seed: int = 0,
                     split: Optional[str] = None) -> RealLesionMaps:
    """The real label maps of grade ``grade`` in the prepared root ``root`` (only those of
    ``split`` when given), in the order of a seeded shuffle between its images (no image
    gets its own map back when the grade has more than one), remapped to ``classes``
    (every class of which the root must have): a :class:`RealLesionMaps` sequence that
    reads each map when it is asked for."""
    return RealLesionMaps(root, classes, grade, seed, split)


# ----------------------------------------------------------------------------------------
# Composites on healthy images
def place_on_healthy(healthy_root: PathLike, lesion_maps: Mapping[int, Sequence],
                     classes=None, seed: int = 0, grades: Optional[Sequence[int]] = None,
                     per_image: int = 1, split: Optional[str] = None,
                     lesion_classes=None, rules=None) -> Iterator[PlacedSample]:
    """Yield a composite for each grade-0 image of ``healthy_root`` (``per_image`` each).

    Args:
        healthy_root: a prepared root; its grade-0 images (of ``split`` when given) are
            the healthy set.
        lesion_maps: ``{grade: sequence of label maps}`` in the order of ``classes``
            (:func:`sampled_lesion_maps`, or :func:`real_lesion_maps` per grade).
        classes: the class order of the maps (default: the healthy root's); the healthy
            labels are remapped to it (the root must have every class of it).
        seed: the composites depend on it alone: the grades are dealt to the images
            balanced (as equal as possible, the order shuffled) and each grade's maps are
            shuffled and dealt in turn (cycling when there are more images than maps).
        grades: the grades to deal (default: the keys of ``lesion_maps``, sorted); each
            must have at least one map.
        per_image: composites per healthy image (each its own grade and map).
        lesion_classes, rules: as for :func:`place_lesions`.

    Yields:
        :class:`PlacedSample` ``(name, grade, image, label, mask, healthy, lesion_index,
        mirrored)`` in the order of the healthy images' names. Nothing is written.
    """
    root = Path(healthy_root)
    classes = read_classes(root) if classes is None else ClassSet(classes)
    stored, lut = _lookup(root, classes)
    if per_image < 1:
        raise ValueError(f'per_image must be at least 1, got {per_image}')
    if not isinstance(lesion_maps, Mapping):
        raise TypeError(f'lesion_maps must map a grade to its label maps, got '
                        f'{type(lesion_maps).__name__}')
    grades = sorted(lesion_maps) if grades is None else list(grades)
    if not grades:
        raise ValueError('no grades to place: lesion_maps is empty')
    for g in grades:
        if g not in GRADES:
            raise ValueError(f'grade {g!r} is outside 0-4')
        if g not in lesion_maps or len(lesion_maps[g]) == 0:
            raise ValueError(f'no lesion maps of grade {g} (lesion_maps has '
                             f'{ {k: len(v) for k, v in lesion_maps.items()} })')

    healthy = _names_of_grade(Path(root), 0, split, 'grade-0 (healthy) images',
                              'place lesions on')

    # The whole plan is drawn before anything is read: it depends on the seed alone.
    rng = np.random.default_rng([seed, 14])
    slots = len(healthy) * per_image
    dealt = rng.permutation(np.arange(slots) % len(grades))
    order = {g: rng.permutation(len(lesion_maps[g])) for g in grades}
    used = {g: 0 for g in grades}
    plan = []
    for s in range(slots):
        g = grades[dealt[s]]
        plan.append((healthy[s // per_image], s % per_image, g,
                     int(order[g][used[g] % len(order[g])])))
        used[g] += 1

    for name, k, grade, j in plan:
        image, real = read_healthy(root, name, stored, lut, classes)
        where = label_path(root, name)
        try:
            placed = place_lesions(real, lesion_maps[grade][j], classes, lesion_classes,
                                   rules)
        except ValueError as e:
            raise UserValueError(f'{where} with lesion map {j} of grade {grade}: {e}') from e
        out = f'{name}_g{grade}' if per_image == 1 else f'{name}_{k}_g{grade}'
        yield PlacedSample(out, grade, image, placed.label, placed.mask, name, j,
                           placed.mirrored)
