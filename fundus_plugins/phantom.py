"""The fundus phantom: procedural DR fundus images with exact lesion labels.

It is the embedded default data, so everything runs on a fresh machine with no download.
Each image is drawn from a seed (same seed, same bytes):

* a circular field of view on black, orange-red background with radial shading and a
  low-frequency texture;
* an optic disc (bright, yellowish, about 1/7 of the field's diameter) left or right of
  centre, with a brighter cup, and a darker macula on the other side of centre;
* a vessel tree branching out of the disc: four arcades that curve around the macula,
  with side branches;
* lesions whose number and size follow the DR grade: 0 none; 1 a few microaneurysms;
  2 microaneurysms, haemorrhages, some hard exudates; 3 more of each plus soft exudates
  and IRMA; 4 all of it, the most, plus neovascularisation at the disc.

Every class is drawn into its own mask and painted in priority order, so the label map
(composed by the same priorities, see :mod:`fundus_plugins.classes`) is exactly what was
drawn: a pixel is labelled with the class whose colour is on top there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from .classes import ClassSet
from .datasets.layout import MetaRow, read_meta, stratified_split, write_meta
from .datasets.prepare import atomic_root, init_layout, run_jobs, write_pair
from .errors import UserValueError

#: The smallest image side the phantom draws (its smallest lesions need a few pixels).
MIN_SIZE = 16
#: The classes the phantom draws, in its label order.
PHANTOM_CLASSES = ('OD', 'MA', 'HE', 'EX', 'SE', 'IRMA', 'NV')

# (low, high) inclusive counts per grade. EX counts clusters of exudate dots.
LESION_COUNTS = {
    'MA': [(0, 0), (2, 6), (6, 15), (12, 25), (18, 35)],
    'HE': [(0, 0), (0, 0), (1, 5), (6, 14), (10, 22)],
    'EX': [(0, 0), (0, 0), (1, 3), (3, 6), (4, 9)],
    'SE': [(0, 0), (0, 0), (0, 0), (1, 4), (2, 6)],
    'IRMA': [(0, 0), (0, 0), (0, 0), (0, 2), (1, 3)],
    'NV': [(0, 0), (0, 0), (0, 0), (0, 0), (1, 3)],
}

# Base RGB colours (before per-image jitter and vignetting).
COLORS = {
    'MA': (125, 18, 12),
    'HE': (115, 14, 8),
    'EX': (245, 215, 95),
    'SE': (238, 222, 192),
    'IRMA': (135, 25, 18),
    'NV': (150, 30, 22),
    'vessel': (120, 22, 14),
    'od': (250, 215, 140),
    'cup': (255, 242, 205),
}


@dataclass
class PhantomSample:
    image: np.ndarray   # (S, S, 3) uint8 RGB
    label: np.ndarray   # (S, S) uint8 class indices in ``classes`` order
    fov: np.ndarray     # (S, S) bool
    masks: dict         # code -> (S, S) bool, what was drawn of each class
    grade: int
    od_center: tuple    # (x, y) in pixels


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Zero-mean, unit-ish noise with features about size/cells pixels across."""
    small = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def _blend(img: np.ndarray, alpha: np.ndarray, color) -> None:
    """In place: img = img * (1 - alpha) + color * alpha, with alpha (S, S) in [0, 1].

    Works on the pixels where alpha > 0 only: lesions cover a small part of the image.
    """
    idx = np.flatnonzero(alpha)
    if idx.size == 0:
        return
    flat = img.reshape(-1, 3)
    a = alpha.reshape(-1)[idx, None]
    flat[idx] = flat[idx] * (1.0 - a) + a * np.asarray(color, dtype=np.float32)


def _random_walk(rng, start, angle, steps, step_len, turn, jitter):
    """Points of a smoothly turning path: heading changes by ``turn`` + noise per step."""
    pts = [start]
    x, y = start
    for _ in range(steps):
        angle += turn + rng.normal(0.0, jitter)
        x += step_len * math.cos(angle)
        y += step_len * math.sin(angle)
        pts.append((x, y))
    return np.array(pts, dtype=np.float32), angle


class _Canvas:
    """Geometry of one phantom image, in pixels."""

    def __init__(self, size: int, rng: np.random.Generator):
        self.size = size
        self.scale = size / 512.0
        self.cx = size / 2 + rng.uniform(-0.01, 0.01) * size
        self.cy = size / 2 + rng.uniform(-0.01, 0.01) * size
        self.radius = size / 2 * rng.uniform(0.93, 0.98)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self.rr = np.sqrt((xx - self.cx) ** 2 + (yy - self.cy) ** 2) / self.radius
        self.fov = self.rr <= 1.0
        side = rng.choice([-1.0, 1.0])  # +1: disc right of centre
        self.side = side
        self.od_r = self.radius / 7.0 * rng.uniform(0.9, 1.1)
        self.od = (self.cx + side * self.radius * rng.uniform(0.38, 0.5),
                   self.cy + self.radius * rng.uniform(-0.08, 0.08))
        self.macula = (self.cx - side * self.radius * rng.uniform(0.03, 0.12),
                       self.cy + self.radius * rng.uniform(-0.05, 0.05))

    def px(self, v512: float) -> float:
        """A length given for a 512-pixel image, scaled to this size."""
        return v512 * self.scale

    def random_point(self, rng, max_r=0.88, avoid_od=True, near=None, spread=None):
        """A point inside the field (and, with ``near``, within ``spread`` of it)."""
        for _ in range(100):
            if near is None:
                r = self.radius * max_r * math.sqrt(rng.uniform())
                a = rng.uniform(0, 2 * math.pi)
                x, y = self.cx + r * math.cos(a), self.cy + r * math.sin(a)
            else:
                x = near[0] + rng.normal(0, spread)
                y = near[1] + rng.normal(0, spread)
            if math.hypot(x - self.cx, y - self.cy) > self.radius * max_r:
                continue
            if avoid_od and math.hypot(x - self.od[0], y - self.od[1]) < 1.3 * self.od_r:
                continue
            return x, y
        return self.macula


def _draw_vessels(cv: _Canvas, rng) -> tuple[np.ndarray, list]:
    """A vessel tree out of the disc: darkness map in [0, 1] and the main paths."""
    S = cv.size
    v = np.zeros((S, S), np.float32)
    paths = []
    # Laid out for a disc right of centre (macula to the left, image y pointing down):
    # temporal arcades leave the disc up-left and down-left and curve around the macula,
    # nasal ones head right. A disc on the left mirrors them (heading -> pi - heading,
    # turn -> -turn).
    specs = [  # (initial heading, turn per step, width at 512, steps)
        (math.pi + 1.05, -0.035, 5.0, 70),   # superior temporal
        (math.pi - 1.05, +0.035, 5.0, 70),   # inferior temporal
        (-0.7, -0.01, 3.5, 40),              # superior nasal
        (+0.7, +0.01, 3.5, 40),              # inferior nasal
    ]
    if cv.side < 0:
        specs = [(math.pi - h, -t, w, n) for h, t, w, n in specs]
    step = cv.px(7.0)
    for heading, turn, width, steps in specs:
        pts, _ = _random_walk(rng, cv.od, heading + rng.normal(0, 0.15), steps, step,
                              turn, 0.05)
        paths.append(pts)
        _stroke(v, pts, cv.px(width), cv.px(1.2), rng.uniform(0.7, 1.0))
        # Side branches, and branches of branches.
        for _ in range(int(rng.integers(3, 6))):
            i = int(rng.integers(5, len(pts) - 5))
            _branch(v, cv, rng, pts[i], rng.uniform(0.5, 1.0) * rng.choice([-1, 1]),
                    width * 0.6, depth=2, heading=_heading(pts, i))
    return np.clip(v, 0, 1) * cv.fov, paths


def _heading(pts, i):
    d = pts[i + 1] - pts[i]
    return math.atan2(float(d[1]), float(d[0]))


def _branch(v, cv, rng, start, offset, width, depth, heading):
    if depth == 0 or width < 0.8:
        return
    steps = int(rng.integers(10, 30))
    pts, _ = _random_walk(rng, tuple(start), heading + offset, steps, cv.px(6.0),
                          rng.normal(0, 0.03), 0.08)
    _stroke(v, pts, cv.px(width), cv.px(0.8), rng.uniform(0.6, 0.95))
    for _ in range(int(rng.integers(0, 3))):
        i = int(rng.integers(2, len(pts) - 2))
        _branch(v, cv, rng, pts[i], rng.uniform(0.5, 1.0) * rng.choice([-1, 1]),
                width * 0.65, depth - 1, _heading(pts, i))


def _stroke(canvas, pts, w0, w1, value):
    """Polyline whose width tapers from w0 to w1 pixels, max-combined into ``canvas``."""
    n = len(pts) - 1
    shift = 2  # sub-pixel precision for cv2 drawing
    ipts = np.round(pts * (1 << shift)).astype(np.int32)
    for i in range(n):
        w = w0 + (w1 - w0) * i / max(n - 1, 1)
        cv2.line(canvas, tuple(ipts[i]), tuple(ipts[i + 1]), float(value),
                 thickness=max(1, int(round(w))), lineType=cv2.LINE_8, shift=shift)


def _lesion_masks(cv: _Canvas, rng, grade: int, paths) -> dict:
    """Draw every lesion class of ``grade`` into its own uint8 strength canvas (0-255)."""
    S = cv.size
    out = {}

    def count(code):
        lo, hi = LESION_COUNTS[code][grade]
        return int(rng.integers(lo, hi + 1))

    def canvas():
        return np.zeros((S, S), np.uint8)

    n = count('MA')
    if n:
        m = canvas()
        for _ in range(n):
            x, y = cv.random_point(rng)
            r = max(1, int(round(cv.px(rng.uniform(1.2, 3.0)))))
            cv2.circle(m, (int(x), int(y)), r, int(rng.integers(200, 256)), -1)
        out['MA'] = m

    n = count('HE')
    if n:
        m = canvas()
        for _ in range(n):
            x, y = cv.random_point(rng)
            for _ in range(int(rng.integers(1, 4))):  # blots made of 1-3 ellipses
                ax = (max(1, int(cv.px(rng.uniform(3, 13)))),
                      max(1, int(cv.px(rng.uniform(2, 9)))))
                c = (int(x + cv.px(rng.normal(0, 3))), int(y + cv.px(rng.normal(0, 3))))
                cv2.ellipse(m, c, ax, rng.uniform(0, 180), 0, 360,
                            int(rng.integers(170, 256)), -1)
        out['HE'] = m

    n = count('EX')
    if n:
        m = canvas()
        for _ in range(n):  # clusters, mostly around the macula
            centre = cv.random_point(rng, near=cv.macula, spread=cv.radius * 0.35)
            for _ in range(int(rng.integers(3, 12))):
                x, y = cv.random_point(rng, near=centre, spread=cv.px(12))
                ax = (max(1, int(cv.px(rng.uniform(1.5, 4.5)))),
                      max(1, int(cv.px(rng.uniform(1.5, 3.5)))))
                cv2.ellipse(m, (int(x), int(y)), ax, rng.uniform(0, 180), 0, 360,
                            int(rng.integers(200, 256)), -1)
        out['EX'] = m

    n = count('SE')
    if n:
        m = canvas()
        for _ in range(n):  # cotton-wool spots lie near the arcades
            path = paths[int(rng.integers(0, 2))]
            px, py = path[int(rng.integers(5, len(path)))]
            x, y = cv.random_point(rng, near=(px, py), spread=cv.px(18))
            ax = (max(2, int(cv.px(rng.uniform(7, 17)))), max(2, int(cv.px(rng.uniform(5, 11)))))
            cv2.ellipse(m, (int(x), int(y)), ax, rng.uniform(0, 180), 0, 360,
                        int(rng.integers(150, 231)), -1)
        out['SE'] = m

    n = count('IRMA')
    if n:
        m = canvas()
        for _ in range(n):  # short tortuous segments
            x, y = cv.random_point(rng, max_r=0.75)
            pts, _ = _random_walk(rng, (x, y), rng.uniform(0, 2 * math.pi),
                                  int(rng.integers(8, 16)), cv.px(3.0), 0.0, 0.9)
            _stroke(m, pts, max(1.0, cv.px(2.0)), max(1.0, cv.px(1.5)), 230)
        out['IRMA'] = m

    n = count('NV')
    if n:
        m = canvas()
        for _ in range(n):  # fine loops at or next to the disc
            a = rng.uniform(0, 2 * math.pi)
            r = cv.od_r * rng.uniform(0.3, 1.6)
            start = (cv.od[0] + r * math.cos(a), cv.od[1] + r * math.sin(a))
            for _ in range(int(rng.integers(2, 5))):
                pts, _ = _random_walk(rng, start, rng.uniform(0, 2 * math.pi),
                                      int(rng.integers(10, 20)), cv.px(2.5), 0.35, 0.5)
                _stroke(m, pts, max(1.0, cv.px(1.5)), max(1.0, cv.px(1.0)), 220)
        out['NV'] = m
    return out


def draw_phantom(grade: int, size: int = 512, seed=0,
                 classes: Optional[ClassSet] = None) -> PhantomSample:
    """Draw one phantom fundus of DR ``grade`` (0-4) at ``size`` x ``size`` pixels.

    ``seed`` is anything ``numpy.random.default_rng`` takes. ``classes`` sets the label
    order (default: :data:`PHANTOM_CLASSES`); drawn classes it does not select are
    labelled ``RET``.
    """
    if grade not in range(5):
        raise ValueError(f'grade must be one of 0-4, got {grade!r}')
    if size < 32:
        raise ValueError(f'phantom size must be at least 32 pixels, got {size}')
    classes = classes or ClassSet(PHANTOM_CLASSES)
    rng = np.random.default_rng(seed)
    cv = _Canvas(size, rng)
    S = size

    # Background: orange-red with texture.
    base = np.array([rng.uniform(175, 215), rng.uniform(70, 105), rng.uniform(25, 50)],
                    np.float32)
    tex = (0.06 * _smooth_noise(rng, S, 10) + 0.03 * _smooth_noise(rng, S, 40))
    img = base[None, None, :] * (1.0 + tex[..., None])

    # Macula: darker, with a tiny reflex.
    mx, my = cv.macula
    yy, xx = np.ogrid[0:S, 0:S]
    d2 = ((xx - mx) ** 2 + (yy - my) ** 2).astype(np.float32)
    sig = cv.radius * rng.uniform(0.14, 0.2)
    img *= (1.0 - 0.3 * np.exp(-d2 / (2 * sig * sig)))[..., None]

    # Optic disc: ellipse, radial gradient, brighter cup.
    ox, oy = cv.od
    ry = cv.od_r * rng.uniform(1.0, 1.12)
    od_mask = np.zeros((S, S), np.uint8)
    cv2.ellipse(od_mask, (int(round(ox)), int(round(oy))),
                (max(1, int(round(cv.od_r))), max(1, int(round(ry)))), 0, 0, 360, 255, -1)
    od = od_mask > 0
    dn = np.sqrt((xx - ox) ** 2 / cv.od_r ** 2 + (yy - oy) ** 2 / ry ** 2).astype(np.float32)
    alpha = np.clip(1.15 - 0.5 * dn ** 2, 0, 1) * od
    _blend(img, alpha, COLORS['od'])
    cup = np.clip(1.0 - dn / rng.uniform(0.35, 0.5), 0, 1) * od
    _blend(img, 0.8 * cup, COLORS['cup'])

    # Vessels, drawn over the disc.
    vess, paths = _draw_vessels(cv, rng)
    vess = cv2.GaussianBlur(vess, (0, 0), max(0.5, cv.px(0.7)))
    _blend(img, 0.75 * vess, COLORS['vessel'])

    # Lesions, painted in priority order so that the top colour is the label.
    strengths = _lesion_masks(cv, rng, grade, paths)
    masks = {'OD': od & cv.fov}
    for code in sorted(strengths, key=lambda c: classes.priorities[classes.index(c)]
                       if c in classes.codes else 0):
        s = strengths[code]
        mask = (s > 0) & cv.fov
        masks[code] = mask
        a = s.astype(np.float32) / 255.0
        if code in ('SE', 'HE'):  # soft edges, kept inside the mask
            a = cv2.GaussianBlur(a, (0, 0), max(0.5, cv.px(2.0 if code == 'SE' else 1.0)))
            a = np.where(mask, np.maximum(a, 0.35), 0.0).astype(np.float32)
        jitter = rng.uniform(0.9, 1.1, 3).astype(np.float32)
        _blend(img, a, np.clip(np.array(COLORS[code], np.float32) * jitter, 0, 255))

    # Vignetting, fine noise, then black outside the field of view.
    img *= (1.0 - 0.45 * np.clip(cv.rr, 0, 1) ** 2.5)[..., None]
    img += rng.normal(0, 2.0, size=(S, S, 1)).astype(np.float32)
    img[~cv.fov] = 0.0
    image = np.clip(img, 0, 255).astype(np.uint8)

    label = classes.compose(cv.fov, masks)
    return PhantomSample(image=image, label=label, fov=cv.fov, masks=masks, grade=grade,
                         od_center=(float(ox), float(oy)))


def phantom_grades(num: int, seed: int = 0, distribution=None) -> list[int]:
    """Grades for ``num`` phantom images: balanced (as equal as possible) by default, or
    drawn from ``distribution`` (5 weights, normalised)."""
    rng = np.random.default_rng([seed, 5])
    if distribution is None:
        grades = np.arange(num) % 5
        return rng.permutation(grades).tolist()
    p = np.asarray(distribution, dtype=np.float64)
    if p.shape != (5,) or (p < 0).any() or p.sum() <= 0:
        raise UserValueError(f'grade distribution must be 5 non-negative weights with a '
                             f'positive sum, got {distribution!r}')
    return rng.choice(5, size=num, p=p / p.sum()).tolist()


def _phantom_job(args):
    index, grade, size, seed, codes, out = args
    sample = draw_phantom(grade, size, seed=[seed, index], classes=ClassSet(codes))
    name = phantom_name(index)
    write_pair(out, name, sample.image, sample.label)
    return name


def phantom_name(index: int) -> str:
    return f'phantom_{index:05d}'


def write_phantom_dataset(out, num: int, size: int = 512, seed: int = 0,
                          distribution=None, classes=None, workers: int = 1,
                          test_fraction: float = 0.2, overwrite: bool = False,
                          progress: bool = True):
    """Write ``num`` phantom images in the prepared layout under ``out``.

    Image ``i`` is drawn from the seed ``[seed, i]``, so the files do not depend on
    ``workers``. Grades are balanced, or drawn from ``distribution``; the split is the
    same seeded, grade-stratified 80/20 split as ``tools/prepare_data.py`` writes.
    Returns the list of meta rows.
    """

    if num < 1:
        raise UserValueError(f'num must be at least 1, got {num}')
    classes = classes if isinstance(classes, ClassSet) else ClassSet(classes or PHANTOM_CLASSES)
    unknown = [c for c in classes.lesion_codes if c not in PHANTOM_CLASSES]
    if unknown:
        raise UserValueError(f'the phantom does not draw {unknown}; it draws {list(PHANTOM_CLASSES)}')
    if int(size) < MIN_SIZE:
        raise UserValueError(f'size must be at least {MIN_SIZE} pixels, got {size}')
    grades = phantom_grades(num, seed, distribution)
    # Written into a temporary sibling and swapped in only when whole (atomic_root).
    with atomic_root(out, overwrite) as tmp:
        init_layout(tmp, classes)
        jobs = [(i, g, size, seed, classes.codes, tmp) for i, g in enumerate(grades)]
        run_jobs(_phantom_job, jobs, workers, 'phantom', progress, chunksize=4)
        rows = [MetaRow(phantom_name(i), g, 'annotated', 'phantom', 'train')
                for i, g in enumerate(grades)]
        rows = stratified_split(rows, seed=seed, test_fraction=test_fraction)
        write_meta(tmp, rows)
        read_meta(tmp)
    return rows
