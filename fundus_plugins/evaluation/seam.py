"""Is there a seam where the inpainting translator's hole ends?

A painted region that does not blend in leaves an edge at the hole's boundary: a jump in
brightness or colour that the real photograph does not have there. The measure compares
the gradient magnitude on a thin band around each hole's boundary in the inpainted image
with the gradient magnitude of the healthy photograph at the same pixels (the same place,
no seam):

    seam ratio = mean |grad composite| on the band / mean |grad healthy| on the band

pooled over the pixels of all images (not a mean of per-image ratios). 1.0: the edge of
the hole is as smooth as the real image there; above 1: a visible seam. The gradient is
that of the luminance (0.299 R + 0.587 G + 0.114 B) by central differences (numpy's
``gradient``), in float64. The band is every pixel within ``band`` pixels of the
boundary on either side (the hole dilated by ``band`` minus the hole eroded by
``band``, square neighbourhoods), inside the field of view. The hole is the lesions
dilated by the translator's ``margin``, so the band lies about ``margin`` pixels from
them; with ``margin`` < 2 the gradient there would also see the lesion's own edge. The
mean gradient of the healthy images over their whole field of view is given as context
(``inside_real``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from ..datasets.layout import check_name, image_path, label_path, read_meta
from ..errors import UserFileNotFoundError, UserValueError

PathLike = Union[str, Path]


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W) float64: the luminance's gradient magnitude (central
    differences, one-sided at the border)."""
    lum = np.asarray(image, np.float64) @ np.array([0.299, 0.587, 0.114])
    gy, gx = np.gradient(lum)
    return np.hypot(gx, gy)


def boundary_band(hole: np.ndarray, band: int = 1) -> np.ndarray:
    """(H, W) bool: the pixels within ``band`` pixels of the hole's boundary, either
    side (``hole``: bool, or uint8 0/255). The image's own border is not a boundary: the
    erosion replicates the border, so a hole that reaches it has no band there."""
    if isinstance(band, bool) or not isinstance(band, (int, np.integer)) or band < 1:
        raise ValueError(f'band must be a whole number of pixels >= 1, got {band!r}')
    kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    h = hole.astype(np.uint8)
    return cv2.dilate(h, kernel).astype(bool) & ~cv2.erode(
        h, kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)


def seam_sums(composite: np.ndarray, original: np.ndarray, hole: np.ndarray,
              fov: Optional[np.ndarray] = None, band: int = 1) -> dict:
    """The sums of one image: gradient magnitude of the composite and of the original on
    the boundary band (in ``fov`` when given), the band's pixel count, and the original's
    gradient sum and pixel count over ``fov`` (the whole image without one)."""
    if composite.shape != original.shape or composite.shape[:2] != hole.shape:
        raise ValueError(f'composite {composite.shape}, original {original.shape} and hole '
                         f'{hole.shape} differ in size')
    if fov is not None and np.shape(fov) != hole.shape:
        raise ValueError(f'fov {np.shape(fov)} and hole {hole.shape} differ in size')
    ring = boundary_band(hole, band)
    area = np.ones(hole.shape, bool) if fov is None else np.asarray(fov, bool)
    ring &= area
    g_comp, g_orig = gradient_magnitude(composite), gradient_magnitude(original)
    return dict(boundary_inpainted=float(g_comp[ring].sum()),
                boundary_real=float(g_orig[ring].sum()), band_pixels=int(ring.sum()),
                inside_real=float(g_orig[area].sum()), fov_pixels=int(area.sum()))


def seam_scores(composite, original, hole, fov=None, band: int = 1) -> dict:
    """One image's means (see the module docstring) and its seam ratio."""
    return _means(seam_sums(composite, original, hole, fov, band), images=1, empty=0)


def _means(s: dict, images: int, empty: int) -> dict:
    n, m = s['band_pixels'], s['fov_pixels']
    inp = s['boundary_inpainted'] / n if n else float('nan')
    real = s['boundary_real'] / n if n else float('nan')
    return dict(boundary_inpainted=inp, boundary_real=real,
                inside_real=s['inside_real'] / m if m else float('nan'),
                seam_ratio=inp / real if n and real > 0 else float('nan'),
                images=images, empty_holes=empty, band_pixels=n)


def _read(path: Path, flag: int, what: str) -> np.ndarray:
    if not path.is_file():
        raise UserFileNotFoundError(f'{path}: {what} not found')
    img = cv2.imread(str(path), flag)
    if img is None:
        raise UserValueError(f'{path}: cannot decode the {what}')
    return img


def measure_seams(inpainted_root: PathLike, healthy_root: PathLike, band: int = 1,
                  progress: bool = True) -> dict:
    """The seam measure of an inpainted root (tools/inpaint_lesions.py: holes/,
    inpaint.csv) against the healthy root its images came from, pooled over the images
    with a non-empty hole (the others are counted in ``empty_holes``). A square healthy
    image of another size than the painted one is resized as the tool resized it. The field of view
    is the composite label's non-``BG`` pixels (class 0)."""
    from ..apis import progress_bar
    from ..inpaint import read_inpaint_records

    root, healthy = Path(inpainted_root), Path(healthy_root)
    records = read_inpaint_records(root)
    csv_file, meta_file = root / 'inpaint.csv', root / 'meta.csv'
    seen = set()
    for line, r in enumerate(records, 2):
        check_name(r['name'], f'{csv_file}, line {line}')
        check_name(r['healthy'], f'{csv_file}, line {line} (healthy)')
        if r['name'] in seen:
            raise UserValueError(f'{csv_file}, line {line}: name {r["name"]!r} appears twice')
        seen.add(r['name'])
    names = {r.name for r in read_meta(root)}
    unknown = sorted(seen - names)
    if unknown:
        raise UserValueError(f'{csv_file}: {unknown[:3]} not in {meta_file}')
    unlisted = sorted(names - seen)
    if unlisted:
        raise UserValueError(f'{meta_file}: {unlisted[:3]} have no row in {csv_file} (every '
                             f'image of an inpainted root has one)')
    total = dict(boundary_inpainted=0.0, boundary_real=0.0, band_pixels=0, inside_real=0.0,
                 fov_pixels=0)
    images = empty = 0
    with progress_bar(desc='seams', unit='img', total=len(records),
                      progress=progress) as bar:
        for r in records:
            hole_file = root / 'holes' / f"{r['name']}.png"
            hole = _read(hole_file, cv2.IMREAD_UNCHANGED, 'hole mask')
            if hole.ndim != 2 or not np.isin(hole, (0, 255)).all():
                raise UserValueError(f'{hole_file}: a hole mask must be single-channel with '
                                     f'values 0 and 255 only')
            comp = _read(image_path(root, r['name']), cv2.IMREAD_COLOR, 'inpainted image')
            orig = _read(image_path(healthy, r['healthy']), cv2.IMREAD_COLOR,
                         'healthy image')
            label = _read(label_path(root, r['name']), cv2.IMREAD_UNCHANGED, 'label map')
            if orig.shape[:2] != hole.shape and orig.shape[0] == orig.shape[1] \
                    and hole.shape[0] == hole.shape[1]:
                # painted at another size (inpaint_lesions --size): the healthy image as
                # the model got it (the same resampling)
                orig = cv2.resize(orig, hole.shape[::-1], interpolation=cv2.INTER_AREA)
            for what, arr, path in (('inpainted image', comp, image_path(root, r['name'])),
                                    ('healthy image', orig,
                                     image_path(healthy, r['healthy'])),
                                    ('label map', label, label_path(root, r['name']))):
                if arr.shape[:2] != hole.shape:
                    raise UserValueError(f'{path}: the {what} is {arr.shape[1]}x{arr.shape[0]} '
                                         f'but its hole mask {hole_file} is '
                                         f'{hole.shape[1]}x{hole.shape[0]}')
            bar.update()
            if not hole.any():
                empty += 1
                continue
            s = seam_sums(comp[..., ::-1], orig[..., ::-1], hole > 0, label != 0, band)
            for k in total:
                total[k] += s[k]
            images += 1
    return _means(total, images, empty)


def format_seams(result: dict) -> str:
    """A short markdown table of :func:`measure_seams`' result."""
    def f(v):
        return '-' if v != v else f'{v:.2f}'
    return '\n'.join([
        'Seams at the edge of the painted region (mean luminance gradient magnitude on a '
        "band around each hole's boundary; ratio 1.0: as smooth as the real image at the "
        'same place, above 1: a visible seam):', '',
        '| inpainted, hole edge | healthy image, same pixels | ratio | healthy image, whole '
        'field of view | images (empty holes) |', '|---|---|---|---|---|',
        f"| {f(result['boundary_inpainted'])} | {f(result['boundary_real'])} | "
        f"**{f(result['seam_ratio'])}** | {f(result['inside_real'])} | "
        f"{result['images']} ({result['empty_holes']}) |", ''])
