"""The lesion-class registry: one place that says what every label index means.

A label map is a uint8 image with one class index per pixel. Index 0 is always ``BG``
(outside the field of view) and index 1 always ``RET`` (retina with no selected
structure or lesion); the classes a run selects follow in the order its config lists them.
So a config's ``lesion_classes = ['OD', 'EX']`` gives label maps with C = 4 channels:
``BG, RET, OD, EX``. Every channel count (the label ACGAN's output, SPADE's ``label_nc``,
the segmenter's ``num_classes``) is ``len(ClassSet)``.

Each class carries:

* ``code``     short name used in configs and file names (``MA``, ``HE``, ...);
* ``name``     human-readable name;
* ``color``    RGB palette colour for visualisation;
* ``priority`` which class wins a pixel claimed by two masks (higher wins);
* ``sources``  where each public dataset keeps its masks (dataset key -> folder).

Register a new class with one call::

    from fundus_plugins.classes import register_lesion_class
    register_lesion_class(code='VES', name='vessel', color=(255, 255, 255), priority=8,
                          sources=dict(fgadr='Vessel_Masks'))

or with one config entry: an item of a config's ``lesion_classes`` list may be such a dict
instead of a code; it is registered when the class list is resolved.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence, Union

import numpy as np

from .errors import UserFileNotFoundError, UserKeyError, UserValueError

BACKGROUND = 'BG'
RETINA = 'RET'
BASE_CODES = (BACKGROUND, RETINA)

#: The classes a run uses when its config says nothing (DESIGN.md).
DEFAULT_CLASSES = ('OD', 'MA', 'HE', 'EX', 'SE')
#: The paper's first experiment.
PAPER_OD_EX_CLASSES = ('OD', 'EX')

# Dataset keys used in ``LesionClass.sources``.
IDRID = 'idrid'
FGADR = 'fgadr'
DDR = 'ddr'
KNOWN_SOURCES = (IDRID, FGADR, DDR)


@dataclass(frozen=True)
class LesionClass:
    """One label class. See the module docstring for the fields."""

    code: str
    name: str
    color: tuple
    priority: int
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.code, str) or not self.code or not self.code.isidentifier():
            raise UserValueError(f'lesion class code must be a non-empty identifier, got {self.code!r}')
        color = tuple(int(c) for c in self.color)
        if len(color) != 3 or any(not 0 <= c <= 255 for c in color):
            raise UserValueError(f'lesion class {self.code}: color must be 3 ints in 0..255, '
                                 f'got {self.color!r}')
        object.__setattr__(self, 'color', color)
        object.__setattr__(self, 'priority', int(self.priority))
        object.__setattr__(self, 'sources', dict(self.sources))

    def to_dict(self) -> dict:
        d = asdict(self)
        d['color'] = list(self.color)
        return d


_REGISTRY: dict[str, LesionClass] = {}


def register_lesion_class(code: str, name: str, color: Sequence[int], priority: int,
                          sources: Mapping[str, str] | None = None,
                          force: bool = False) -> LesionClass:
    """Register a label class under ``code`` and return it.

    Registering the same definition twice is a no-op; registering a different definition
    under an existing code needs ``force=True``.
    """
    cls = LesionClass(code=code, name=name, color=tuple(color), priority=priority,
                      sources=dict(sources or {}))
    if code in BASE_CODES and code in _REGISTRY and not force:
        raise UserValueError(f'{code} is a base class and cannot be redefined')
    old = _REGISTRY.get(code)
    if old is not None and old != cls and not force:
        raise UserValueError(f'lesion class {code!r} is already registered as {old}; '
                             f'pass force=True to replace it')
    _REGISTRY[code] = cls
    return cls


def get_lesion_class(code: str) -> LesionClass:
    try:
        return _REGISTRY[code]
    except KeyError:
        raise UserKeyError(f'unknown lesion class {code!r}; registered classes: '
                           f'{sorted(_REGISTRY)}. Register it with '
                           f'fundus_plugins.classes.register_lesion_class or give a dict '
                           f'(code, name, color, priority, sources) in the config\'s '
                           f'lesion_classes') from None


def registered_classes() -> dict[str, LesionClass]:
    return dict(_REGISTRY)


# ----------------------------------------------------------------------------------------
# Built-in classes. Priorities: small lesions win over large ones, everything wins over OD.
register_lesion_class(BACKGROUND, 'background (outside the field of view)', (0, 0, 0), -1)
register_lesion_class(RETINA, 'retina', (90, 45, 35), 0)
register_lesion_class('OD', 'optic disc', (60, 140, 255), 1, {IDRID: '5. Optic Disc'})
register_lesion_class('HE', 'haemorrhage', (30, 200, 60), 2,
                      {IDRID: '2. Haemorrhages', FGADR: 'Hemohedge_Masks', DDR: 'HE'})
register_lesion_class('EX', 'hard exudate', (255, 230, 0), 3,
                      {IDRID: '3. Hard Exudates', FGADR: 'HardExudate_Masks', DDR: 'EX'})
register_lesion_class('SE', 'soft exudate', (160, 255, 255), 4,
                      {IDRID: '4. Soft Exudates', FGADR: 'SoftExudate_Masks', DDR: 'SE'})
register_lesion_class('IRMA', 'intraretinal microvascular abnormality', (255, 0, 255), 5,
                      {FGADR: 'IRMA_Masks'})
register_lesion_class('NV', 'neovascularisation', (255, 140, 0), 6,
                      {FGADR: 'Neovascularization_Masks'})
register_lesion_class('MA', 'microaneurysm', (255, 40, 40), 7,
                      {IDRID: '1. Microaneurysms', FGADR: 'Microaneurysms_Masks', DDR: 'MA'})


ClassSpec = Union[str, Mapping]


class ClassSet:
    """The ordered classes of one run: ``BG, RET`` and then the selected classes.

    Args:
        classes: codes (or dicts that define and register a class) in label order.
            ``BG`` and ``RET`` are prepended when absent; if given they must come first.
    """

    def __init__(self, classes: Iterable[ClassSpec] = DEFAULT_CLASSES):
        if isinstance(classes, ClassSet):
            classes = classes.codes
        if isinstance(classes, str):
            raise TypeError(f'lesion_classes must be a list of codes, got the string '
                            f'{classes!r}; write [{classes!r}]')
        codes = []
        for item in classes:
            if isinstance(item, Mapping):
                item = register_lesion_class(**item).code
            elif not isinstance(item, str):
                raise TypeError(f'lesion_classes: expected a code or a dict, got {item!r}')
            get_lesion_class(item)  # raises a KeyError naming the unknown class
            codes.append(item)
        if len(set(codes)) != len(codes):
            raise UserValueError(f'lesion_classes lists a class twice: {codes}')
        given_base = [c for c in codes if c in BASE_CODES]
        if given_base and codes[:len(given_base)] != list(BASE_CODES)[:len(given_base)]:
            raise UserValueError(f'lesion_classes: {BACKGROUND} and {RETINA} must come first '
                                 f'(in that order) when listed, got {codes}')
        codes = list(BASE_CODES) + [c for c in codes if c not in BASE_CODES]
        if len(codes) > 255:
            raise UserValueError('at most 255 classes fit a uint8 label map')
        self.codes: tuple[str, ...] = tuple(codes)
        self.classes: tuple[LesionClass, ...] = tuple(get_lesion_class(c) for c in codes)

    # -- basic container protocol ---------------------------------------------------------
    def __len__(self):
        return len(self.codes)

    def __iter__(self):
        return iter(self.classes)

    def __eq__(self, other):
        return isinstance(other, ClassSet) and self.codes == other.codes

    def __repr__(self):
        return f'ClassSet({list(self.codes)})'

    def index(self, code: str) -> int:
        try:
            return self.codes.index(code)
        except ValueError:
            raise KeyError(f'class {code!r} is not in this class set {list(self.codes)}') from None

    @property
    def lesion_codes(self) -> tuple[str, ...]:
        """The selected classes, without ``BG`` and ``RET``."""
        return self.codes[len(BASE_CODES):]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def palette(self) -> np.ndarray:
        """(C, 3) uint8 RGB colours in label order."""
        return np.array([c.color for c in self.classes], dtype=np.uint8)

    @property
    def priorities(self) -> tuple[int, ...]:
        return tuple(c.priority for c in self.classes)

    def paint_order(self) -> list[str]:
        """Selected codes from lowest to highest priority: paint in this order."""
        return sorted(self.lesion_codes, key=lambda c: get_lesion_class(c).priority)

    # -- label maps -------------------------------------------------------------------------
    def compose(self, fov: np.ndarray, masks: Mapping[str, np.ndarray]) -> np.ndarray:
        """Build a uint8 label map from a field-of-view mask and per-class boolean masks.

        Pixels outside ``fov`` are ``BG``; inside, the highest-priority class whose mask
        covers the pixel wins, else ``RET``. Masks of classes not in this set are ignored;
        a mask whose shape differs from ``fov`` raises.
        """
        fov = np.asarray(fov, dtype=bool)
        label = np.where(fov, self.index(RETINA), self.index(BACKGROUND)).astype(np.uint8)
        for code in self.paint_order():
            mask = masks.get(code)
            if mask is None:
                continue
            if mask.shape != fov.shape:
                raise ValueError(f'mask of class {code} has shape {mask.shape}, '
                                 f'expected {fov.shape}')
            label[np.asarray(mask, dtype=bool) & fov] = self.index(code)
        return label

    def remap_from(self, source: 'ClassSet') -> np.ndarray:
        """A lookup table mapping label indices of ``source`` to indices of this set.

        Classes this set does not select become ``RET`` (they are inside the field of
        view); ``BG`` stays ``BG``. Entries past ``len(source)`` map to 255 (invalid).
        """
        lut = np.full(256, 255, dtype=np.uint8)
        for i, code in enumerate(source.codes):
            lut[i] = self.index(code) if code in self.codes else self.index(RETINA)
        return lut

    def colorize(self, label: np.ndarray) -> np.ndarray:
        """(H, W) class indices -> (H, W, 3) uint8 RGB in the class palette."""
        label = np.asarray(label)
        if label.size and int(label.max()) >= len(self):
            raise UserValueError(f'label value {int(label.max())} outside 0..{len(self) - 1} '
                                 f'for classes {list(self.codes)}')
        return self.palette[label]

    # -- (de)serialisation ------------------------------------------------------------------
    def to_json(self) -> dict:
        return {'classes': [c.to_dict() for c in self.classes]}

    def dump(self, path: Union[str, Path]) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + '\n')

    @classmethod
    def load(cls, path: Union[str, Path]) -> 'ClassSet':
        """Read a prepared root's ``classes.json``.

        Classes it defines that are not registered are registered from the file (the file
        is self-describing); a registered class whose definition differs is still used
        under its code, since label indices follow the code order.
        """
        path = Path(path)
        if not path.is_file():
            raise UserFileNotFoundError(f'{path}: classes.json not found (expected the class '
                                        f'list of a prepared dataset)')
        try:
            data = json.loads(path.read_text())
            entries = data['classes']
            codes = []
            for entry in entries:
                code = entry['code']
                if code not in _REGISTRY:
                    register_lesion_class(code=code, name=entry['name'],
                                          color=entry['color'], priority=entry['priority'],
                                          sources=entry.get('sources', {}))
                codes.append(code)
        except (ValueError, KeyError, TypeError) as e:
            raise UserValueError(f'{path}: not a valid classes.json ({e!r}); expected '
                                 f'{{"classes": [{{"code", "name", "color", "priority"}}, ...]}}'
                                 ) from e
        if tuple(codes[:2]) != BASE_CODES:
            raise UserValueError(f'{path}: the first two classes must be {list(BASE_CODES)}, '
                                 f'got {codes[:2]}')
        return cls(codes)


def resolve_classes(classes: Union[ClassSet, Iterable[ClassSpec], None]) -> ClassSet:
    """A ClassSet from a config value (``None`` means the default classes)."""
    if classes is None:
        return ClassSet(DEFAULT_CLASSES)
    if isinstance(classes, ClassSet):
        return classes
    return ClassSet(classes)
