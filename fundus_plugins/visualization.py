"""Pictures: labelled grids of images and label maps, with a class legend."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import cv2
import numpy as np

from .classes import ClassSet
from .datasets.layout import image_path, label_path, read_classes, read_meta
from .errors import write_file

FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text_strip(width: int, height: int, text: str, scale: float = 0.5) -> np.ndarray:
    strip = np.full((height, width, 3), 255, np.uint8)
    (tw, th), _ = cv2.getTextSize(text, FONT, scale, 1)
    cv2.putText(strip, text, (max(2, (width - tw) // 2), (height + th) // 2), FONT, scale,
                (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def legend(classes: ClassSet, width: int, swatch: int = 14) -> np.ndarray:
    """One or more lines of colour swatches with class codes."""
    items = [(c.code, c.color) for c in classes]
    lines, line, x = [], [], 6
    for code, color in items:
        w = swatch + 6 + cv2.getTextSize(code, FONT, 0.45, 1)[0][0] + 14
        if x + w > width and line:
            lines.append(line)
            line, x = [], 6
        line.append((code, color, x))
        x += w
    lines.append(line)
    h = swatch + 10
    out = np.full((h * len(lines), width, 3), 255, np.uint8)
    for row, line in enumerate(lines):
        y = row * h + 5
        for code, color, x0 in line:
            cv2.rectangle(out, (x0, y), (x0 + swatch, y + swatch), tuple(int(c) for c in color), -1)
            cv2.rectangle(out, (x0, y), (x0 + swatch, y + swatch), (0, 0, 0), 1)
            cv2.putText(out, code, (x0 + swatch + 4, y + swatch - 2), FONT, 0.45, (0, 0, 0), 1,
                        cv2.LINE_AA)
    return out


def tile_grid(rows: Sequence[Sequence[np.ndarray]], col_titles: Sequence[str] = (),
              row_titles: Sequence[str] = (), pad: int = 4,
              classes: Optional[ClassSet] = None) -> np.ndarray:
    """A grid of equally sized RGB tiles with optional column / row titles and legend."""
    th, tw = rows[0][0].shape[:2]
    ncol = max(len(r) for r in rows)
    left = 0
    if row_titles:
        left = max(cv2.getTextSize(t, FONT, 0.5, 1)[0][0] for t in row_titles) + 12
    width = left + ncol * (tw + pad) + pad
    parts = []
    if col_titles:
        header = np.full((24, width, 3), 255, np.uint8)
        for j, t in enumerate(col_titles):
            x0 = left + pad + j * (tw + pad)
            header[:, x0:x0 + tw] = _text_strip(tw, 24, t)
        parts.append(header)
    for i, row in enumerate(rows):
        line = np.full((th + pad, width, 3), 255, np.uint8)
        if row_titles:
            line[:th, :left] = _text_strip(left, th, row_titles[i])
        for j, tile in enumerate(row):
            tile = np.asarray(tile)
            if tile.ndim == 2:
                tile = np.repeat(tile[..., None], 3, axis=2)
            if tile.shape[:2] != (th, tw):
                tile = cv2.resize(tile, (tw, th), interpolation=cv2.INTER_NEAREST)
            x0 = left + pad + j * (tw + pad)
            line[:th, x0:x0 + tw] = tile
        parts.append(line)
    if classes is not None:
        parts.append(legend(classes, width))
    return np.concatenate(parts, axis=0)


def save_rgb(path: Union[str, Path], image: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix or '.png', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f'{path}: cannot encode the image as {path.suffix}')
    write_file(path, buf.tobytes())  # a full disk is named as such, with the path
    return path


def preview_dataset(root: Union[str, Path], out: Union[str, Path], per_grade: int = 1,
                    tile: int = 256, seed: int = 0,
                    split: Optional[str] = None) -> Path:
    """A picture of a prepared root: one column per grade, image and label rows.

    ``per_grade`` examples of each grade present (chosen by ``seed``); a label-only root
    gets label rows only.
    """

    root = Path(root)
    rows_meta = [r for r in read_meta(root) if split is None or r.split == split]
    classes = read_classes(root)
    rng = np.random.default_rng(seed)
    grades = sorted({r.grade for r in rows_meta if r.grade is not None})
    if not grades:
        raise ValueError(f'{root}: no graded images to preview')
    picks = {g: rng.permutation(sorted(r.name for r in rows_meta if r.grade == g))[:per_grade]
             for g in grades}
    has_images = (root / 'images').is_dir()
    rows, titles = [], []
    for k in range(per_grade):
        img_row, lab_row = [], []
        for g in grades:
            if k >= len(picks[g]):
                blank = np.full((tile, tile, 3), 255, np.uint8)
                img_row.append(blank)
                lab_row.append(blank)
                continue
            name = picks[g][k]
            label = cv2.imread(str(label_path(root, name)), cv2.IMREAD_UNCHANGED)
            lab_row.append(cv2.resize(classes.colorize(label), (tile, tile),
                                      interpolation=cv2.INTER_NEAREST))
            if has_images:
                img = cv2.cvtColor(cv2.imread(str(image_path(root, name))), cv2.COLOR_BGR2RGB)
                img_row.append(cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA))
        if has_images:
            rows.append(img_row)
            titles.append('image')
        rows.append(lab_row)
        titles.append('label')
    grid = tile_grid(rows, [f'grade {g}' for g in grades], titles, classes=classes)
    return save_rgb(out, grid)
