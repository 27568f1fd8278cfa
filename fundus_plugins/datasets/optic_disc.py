"""Optic-disc (OD) masks for images whose source draws none (FGADR, DDR).

Two ways to give such an image its disc:

**A drawn ellipse.** A CSV file (``--od-file``) with the header ``image,cx,cy,rx,ry,angle``
and one row per image::

    image,cx,cy,rx,ry,angle
    0001_A.png,1012.5,640,98,104,0
    0002_B,260,655.2,101,95.5,-12

* ``image``: the source image's file name as published (``0001_A.png``) or its stem
  (``0001_A``); the two name the same image. A known image suffix (``.png``, ``.jpg``,
  ``.jpeg``, ``.tif``, ``.tiff``, ``.bmp``) is dropped, so rows are keyed by the stem. A
  path (with ``/`` or ``\\``) is an error: the name alone says which image.
* ``cx``, ``cy``: the disc's centre in pixels of the ORIGINAL image (before the crop to
  the field of view and the resize that ``prepare_data`` does); x to the right, y down,
  pixel (0, 0) the centre of the top-left pixel.
* ``rx``, ``ry``: the semi-axes in pixels (> 0); ``rx`` lies along x before rotation.
* ``angle``: rotation in degrees in OpenCV's ``cv2.ellipse`` convention: the ``rx``
  axis turned from the +x axis towards +y, which is clockwise on screen (image y points
  down); 0 means ``rx`` is horizontal. (``cv2.ellipse(img, (cx, cy), (rx, ry), angle,
  0, 360, ...)`` draws the same ellipse.)

Columns may come in any order; other columns are ignored; blank lines are skipped. A
missing column, a non-numeric or non-finite value, a non-positive semi-axis, an image
listed twice (also as ``x.png`` and ``x``) or a name that is a path raises an error
naming the file and line. :func:`read_od_ellipses` reads it, :func:`ellipse_mask` draws
one ellipse.

**A small disc model.** :func:`train_od_model` trains a tiny U-Net-like fully
convolutional network (``depth`` max-pool downsamplings, ``base`` channels doubling per
level, skip connections, GroupNorm) on prepared images of sources that annotate the disc
(IDRiD), resized to ``size`` pixels, with random horizontal flips and brightness jitter,
BCE + soft Dice loss and Adam. :meth:`ODModel.predict` always returns exactly one disc:
it thresholds the probability map (upsampled to the image's size), keeps the largest
connected region, fits an ellipse to its outline (``cv2.fitEllipse``) and fills it. When
no pixel passes the threshold (or the largest region is too small to fit an ellipse,
under 5 outline points) it falls back to a circle of the mean training disc area centred
on the most probable pixel (ties averaged), and says so (``DiscPrediction.fallback``),
so that callers can count such guesses. :func:`evaluate_od_model` scores a model by :func:`dice`.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..errors import UserFileNotFoundError, UserValueError
# One thread by default here: the network is so small that a second thread gains little,
# and on a CPU that other processes share, torch's threads spin-waiting on each other
# slow it many times over.
from ..threads import torch_threads

PathLike = Union[str, Path]

OD_FILE_COLUMNS = ('image', 'cx', 'cy', 'rx', 'ry', 'angle')
#: Suffixes dropped from an OD file's ``image`` to get the stem it is keyed by.
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp')
#: Marks a file written by :meth:`ODModel.save`.
MODEL_FORMAT = 'fundus_plugins.od_model/1'


# ----------------------------------------------------------------------------------------
# Ellipses


@dataclass(frozen=True)
class Ellipse:
    """A filled ellipse in pixel coordinates (see the module docstring for the
    convention). ``origin`` says where it came from (``file:line``) for error messages;
    it takes no part in comparisons."""

    cx: float
    cy: float
    rx: float
    ry: float
    angle: float = 0.0
    origin: str = field(default='', compare=False)

    @property
    def area(self) -> float:
        return math.pi * self.rx * self.ry


def image_stem(name: str) -> str:
    """``0001_A.png`` -> ``0001_A``; a name without a known image suffix is kept whole."""
    low = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return name


def read_od_ellipses(path: PathLike) -> dict[str, Ellipse]:
    """The ellipses of an OD file (format: module docstring), keyed by image stem."""
    path = Path(path)
    if not path.is_file():
        raise UserFileNotFoundError(f'{path}: optic-disc ellipse file not found (expected a '
                                    f'CSV with the header {",".join(OD_FILE_COLUMNS)})')
    out: dict[str, Ellipse] = {}
    first_line: dict[str, int] = {}
    with path.open(newline='', encoding='utf-8-sig') as f:
        reader = csv.reader(f)
        header = None
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            if header is None:
                header = [c.strip().lower() for c in row]
                missing = [c for c in OD_FILE_COLUMNS if c not in header]
                if missing:
                    raise UserValueError(f'{path}:{line}: header lacks the column(s) {missing}; '
                                         f'expected {",".join(OD_FILE_COLUMNS)}, got '
                                         f'{",".join(header)}')
                dup = sorted({c for c in header if c and header.count(c) > 1})
                if dup:
                    raise UserValueError(f'{path}:{line}: header repeats the column(s) {dup}')
                col = {c: header.index(c) for c in OD_FILE_COLUMNS}
                continue
            if len(row) < len(header):
                raise UserValueError(f'{path}:{line}: {len(row)} value(s) but the header has '
                                     f'{len(header)} columns')
            name = row[col['image']].strip()
            if not name:
                raise UserValueError(f'{path}:{line}: empty image name')
            if '/' in name or '\\' in name:
                base = name.replace('\\', '/').rsplit('/', 1)[-1]
                raise UserValueError(f'{path}:{line}: image {name!r} is a path; give the file '
                                     f'name or stem only (e.g. {base!r})')
            values = {}
            for key in OD_FILE_COLUMNS[1:]:
                text = row[col[key]].strip()
                try:
                    v = float(text)
                except ValueError:
                    raise UserValueError(f'{path}:{line}: {key} of {name!r} is {text!r}, '
                                         f'expected a number') from None
                if not math.isfinite(v):
                    raise UserValueError(f'{path}:{line}: {key} of {name!r} is {text!r}, '
                                         f'expected a finite number')
                values[key] = v
            for key in ('rx', 'ry'):
                if values[key] <= 0:
                    raise UserValueError(f'{path}:{line}: {key} of {name!r} is {values[key]:g}, '
                                         f'expected a semi-axis > 0 pixels')
            stem = image_stem(name)
            if stem in out:
                raise UserValueError(f'{path}:{line}: image {stem!r} is listed twice (also on '
                                     f'line {first_line[stem]})')
            first_line[stem] = line
            out[stem] = Ellipse(origin=f'{path}:{line}', **values)
    if header is None:
        raise UserValueError(f'{path}: empty; expected a CSV with the header '
                             f'{",".join(OD_FILE_COLUMNS)}')
    return out


def ellipse_mask(shape: Sequence[int], ellipse: Ellipse) -> np.ndarray:
    """Boolean (H, W) mask of the pixels whose centres lie in ``ellipse``.

    ``shape`` is (H, W, ...). An ellipse that covers no pixel of the image (drawn for
    another image size, or centred far outside it) raises, naming its origin.
    """
    h, w = int(shape[0]), int(shape[1])
    e = ellipse
    a = math.radians(e.angle)
    cos, sin = math.cos(a), math.sin(a)
    # Bounding box of the rotated ellipse, clipped to the image.
    hx = math.hypot(e.rx * cos, e.ry * sin)
    hy = math.hypot(e.rx * sin, e.ry * cos)
    x0, x1 = max(0, math.ceil(e.cx - hx)), min(w - 1, math.floor(e.cx + hx))
    y0, y1 = max(0, math.ceil(e.cy - hy)), min(h - 1, math.floor(e.cy + hy))
    mask = np.zeros((h, w), bool)
    if x0 <= x1 and y0 <= y1:
        yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.float64)
        dx, dy = xx - e.cx, yy - e.cy
        u = (dx * cos + dy * sin) / e.rx
        v = (-dx * sin + dy * cos) / e.ry
        mask[y0:y1 + 1, x0:x1 + 1] = u * u + v * v <= 1.0
    if not mask.any():
        where = f'{e.origin}: ' if e.origin else ''
        raise ValueError(f'{where}the optic-disc ellipse (cx={e.cx:g}, cy={e.cy:g}, '
                         f'rx={e.rx:g}, ry={e.ry:g}, angle={e.angle:g}) covers no pixel of '
                         f'the {w}x{h} (WxH) image; expected coordinates in the original '
                         f'image\'s pixels')
    return mask


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap 2|a & b| / (|a| + |b|) of two boolean masks; 1.0 when both are
    empty."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f'dice: masks of different shapes {a.shape} and {b.shape}')
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / total


# ----------------------------------------------------------------------------------------
# The disc model


def _block(cin: int, cout: int) -> nn.Sequential:
    def gn(c):
        return nn.GroupNorm(min(4, c), c)
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), gn(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), gn(cout), nn.ReLU(inplace=True))


class DiscNet(nn.Module):
    """A tiny U-Net: RGB in [0, 1] -> one disc logit per pixel, at the input's size.

    ``depth`` downsamplings by 2: a stride-2 stem convolution to ``base`` channels, then
    ``depth - 1`` 2x2 max-pools, each level doubling the channels (a level is two 3x3
    convolutions with GroupNorm and ReLU). The decoder upsamples bilinearly and
    concatenates the encoder's features of each level; the logits, at half the input
    size, are upsampled bilinearly to it. (Working at half size from the first layer on
    keeps training on a CPU quick; a disc is much larger than two pixels.)
    """

    def __init__(self, base: int = 8, depth: int = 3):
        super().__init__()
        if base < 1 or depth < 1:
            raise ValueError(f'DiscNet: base and depth must be >= 1, got {base}, {depth}')
        chans = [base * 2 ** i for i in range(depth)]
        self.stem = nn.Sequential(nn.Conv2d(3, base, 3, stride=2, padding=1),
                                  nn.GroupNorm(min(4, base), base), nn.ReLU(inplace=True))
        self.down = nn.ModuleList([_block(base, chans[0])] + [
            _block(chans[i - 1], chans[i]) for i in range(1, depth)])
        self.up = nn.ModuleList([_block(chans[i + 1] + chans[i], chans[i])
                                 for i in reversed(range(depth - 1))])
        self.head = nn.Conv2d(chans[0], 1, 1)
        # Start at a small disc probability (about 2 %, a disc's share of an image), so
        # the first steps do not spend themselves on pushing every pixel to background.
        nn.init.constant_(self.head.bias, -4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.stem(x)
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode='bilinear', align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return F.interpolate(self.head(x), size=size, mode='bilinear', align_corners=False)


def _check_image(image, where: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(
            image.shape[:2]) < 1:
        raise ValueError(f'{where}: expected a uint8 RGB image of shape (H, W, 3), got '
                         f'{image.dtype} {image.shape}')
    return image


def _resize(array: np.ndarray, size: int) -> np.ndarray:
    h, w = array.shape[:2]
    interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
    return cv2.resize(array, (size, size), interpolation=interp)


def _to_input(image: np.ndarray, size: int) -> np.ndarray:
    """(3, size, size) float32 in [0, 1]."""
    return _resize(image, size).astype(np.float32).transpose(2, 0, 1) / 255.0


@dataclass
class DiscPrediction:
    """One predicted disc: ``mask`` (H, W) bool, the filled ``ellipse`` (in the image's
    pixels), ``fallback`` (True when nothing usable passed the threshold and the disc is
    the mean training disc at the most probable pixel) and ``max_prob``."""

    mask: np.ndarray
    ellipse: Ellipse
    fallback: bool
    max_prob: float


class ODModel:
    """A trained disc network with what prediction needs: the input ``size``, the
    probability ``threshold`` and ``disc_fraction`` (the mean disc area over the image
    area in training, the fallback disc's size). ``threads``: torch CPU threads for
    prediction (see :func:`torch_threads`; not saved)."""

    def __init__(self, net: DiscNet, size: int, base: int, depth: int,
                 disc_fraction: float, threshold: float = 0.5, iters: int = 0,
                 seed: int = 0, threads: Optional[int] = 1):
        self.net = net.eval()
        self.threads = threads
        self.size = int(size)
        self.base = int(base)
        self.depth = int(depth)
        self.disc_fraction = float(disc_fraction)
        self.threshold = float(threshold)
        self.iters = int(iters)
        self.seed = int(seed)

    def __repr__(self):
        return (f'ODModel(size={self.size}, base={self.base}, depth={self.depth}, '
                f'threshold={self.threshold}, disc_fraction={self.disc_fraction:.4f})')

    @torch.no_grad()
    def probability(self, image: np.ndarray) -> np.ndarray:
        """(H, W) float32 disc probability at ``image``'s own size."""
        image = _check_image(image, 'ODModel.probability')
        x = torch.from_numpy(_to_input(image, self.size))[None]
        with torch_threads(self.threads):
            prob = torch.sigmoid(self.net(x))[0, 0].numpy()
        h, w = image.shape[:2]
        return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)

    def predict(self, image: np.ndarray, threshold: Optional[float] = None) -> DiscPrediction:
        """Exactly one filled elliptical disc for ``image`` (uint8 RGB (H, W, 3), a
        prepared image), see the module docstring."""
        prob = self.probability(image)
        thr = self.threshold if threshold is None else float(threshold)
        h, w = prob.shape
        binary = (prob > thr).astype(np.uint8)
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        ellipse = None
        if contours:
            largest = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
            if len(largest) >= 5:
                (cx, cy), (aw, ah), angle = cv2.fitEllipse(largest)
                # The outline runs through the centres of the region's boundary pixels,
                # half a pixel inside its edge: widen by that half pixel.
                fit = Ellipse(float(cx), float(cy), aw / 2 + 0.5, ah / 2 + 0.5, float(angle))
                if all(math.isfinite(v) for v in (fit.cx, fit.cy, fit.rx, fit.ry, fit.angle)):
                    ellipse = fit
        fallback = ellipse is None
        if fallback:
            ellipse = self._fallback_disc(prob)
        try:
            mask = ellipse_mask((h, w), ellipse)
        except ValueError:  # a degenerate fit wholly outside the image
            ellipse, fallback = self._fallback_disc(prob), True
            mask = ellipse_mask((h, w), ellipse)
        return DiscPrediction(mask=mask, ellipse=ellipse, fallback=fallback,
                              max_prob=float(prob.max()))

    def _fallback_disc(self, prob: np.ndarray) -> Ellipse:
        """A circle of the mean training disc area at the most probable pixel (the mean
        position of the pixels that tie for the maximum: the centre of a flat map)."""
        h, w = prob.shape
        ys, xs = np.nonzero(prob >= prob.max())
        r = max(1.0, math.sqrt(self.disc_fraction * h * w / math.pi))
        return Ellipse(float(xs.mean()), float(ys.mean()), r, r, 0.0)

    # -- files ------------------------------------------------------------------------------
    def save(self, path: PathLike) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({'format': MODEL_FORMAT, 'size': self.size, 'base': self.base,
                    'depth': self.depth, 'disc_fraction': self.disc_fraction,
                    'threshold': self.threshold, 'iters': self.iters, 'seed': self.seed,
                    'state_dict': {k: v.detach().cpu().clone()
                                   for k, v in self.net.state_dict().items()}}, str(path))

    @classmethod
    def load(cls, path: PathLike) -> 'ODModel':
        """A model written by :meth:`save` (read with ``weights_only=True``)."""
        path = Path(path)
        if not path.is_file():
            raise UserFileNotFoundError(f'{path}: optic-disc model not found (expected a file '
                                        f'written by ODModel.save, e.g. a prepared root\'s '
                                        f'od_model.pt)')
        try:
            data = torch.load(str(path), map_location='cpu', weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises many kinds on bad files
            raise UserValueError(f'{path}: cannot read an optic-disc model ({e!r})') from e
        if not isinstance(data, dict) or data.get('format') != MODEL_FORMAT:
            raise UserValueError(f'{path}: not an optic-disc model (expected a dict with '
                                 f'format {MODEL_FORMAT!r} written by ODModel.save)')
        try:
            net = DiscNet(int(data['base']), int(data['depth']))
            net.load_state_dict(data['state_dict'])
            return cls(net, size=data['size'], base=data['base'], depth=data['depth'],
                       disc_fraction=data['disc_fraction'], threshold=data['threshold'],
                       iters=data.get('iters', 0), seed=data.get('seed', 0))
        except (KeyError, RuntimeError, TypeError, ValueError) as e:
            raise UserValueError(f'{path}: corrupt optic-disc model ({e!r})') from e


# ----------------------------------------------------------------------------------------
# Training and evaluation


def _soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    return (1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)).mean()


def train_od_model(images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                   size: int = 128, iters: int = 600, batch_size: int = 8,
                   lr: float = 3e-3, base: int = 16, depth: int = 4,
                   brightness: float = 0.2, threshold: float = 0.5, seed: int = 0,
                   threads: Optional[int] = 1, progress: bool = True,
                   log: Optional[Callable[[str], None]] = None) -> ODModel:
    """Train a disc model on ``images`` (uint8 RGB (H, W, 3), prepared) and their disc
    ``masks`` (bool (H, W)).

    Each image and mask is resized to ``size`` x ``size`` (the mask by area, giving soft
    targets at its edge). ``iters`` Adam steps (learning rate ``lr``, cosine-decayed to
    5 % of it) on batches of ``batch_size`` images drawn with replacement, each flipped
    left-right with probability 1/2 and scaled in brightness by a factor in
    ``1 +- brightness`` (and per channel by ``1 +- brightness / 4``); loss BCE + soft
    Dice. Runs on the CPU with ``threads`` torch threads (:func:`torch_threads`).
    Deterministic for a ``seed`` and thread count; the global torch RNG is forked, so
    the caller's random state is left as it was. ``log`` (if given)
    gets one line with the final loss.
    """

    if len(images) != len(masks):
        raise ValueError(f'train_od_model: {len(images)} images but {len(masks)} masks')
    if not len(images):
        raise ValueError('train_od_model: no training images (expected images whose '
                         'source annotates the optic disc)')
    if size < 2 ** depth * 2:
        raise ValueError(f'train_od_model: size {size} is too small for depth {depth} '
                         f'(at least {2 ** depth * 2})')
    if iters < 1 or batch_size < 1:
        raise ValueError(f'train_od_model: iters and batch_size must be >= 1, got {iters}, '
                         f'{batch_size}')
    xs, ys, fractions = [], [], []
    for i, (image, mask) in enumerate(zip(images, masks)):
        image = _check_image(image, f'train_od_model: image {i}')
        mask = np.asarray(mask)
        if mask.shape != image.shape[:2]:
            raise ValueError(f'train_od_model: mask {i} has shape {mask.shape}, expected '
                             f'its image\'s {image.shape[:2]}')
        mask = mask.astype(bool)
        if mask.any():
            fractions.append(float(mask.mean()))
        xs.append(_to_input(image, size))
        ys.append(_resize(mask.astype(np.float32), size)[None])
    if not fractions:
        raise ValueError(f'train_od_model: none of the {len(masks)} masks holds a disc pixel')
    x_all = torch.from_numpy(np.stack(xs))
    y_all = torch.from_numpy(np.stack(ys))
    n = len(xs)

    with torch.random.fork_rng(devices=[]), torch_threads(threads):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = DiscNet(base, depth)
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda t: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t / iters)))
        bar = tqdm(range(iters), desc='optic-disc model', unit='it', disable=not progress)
        loss_value = float('nan')
        for it in bar:
            idx = torch.randint(0, n, (batch_size,), generator=gen)
            x, y = x_all[idx], y_all[idx]
            flip = torch.rand(batch_size, generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            y = torch.where(flip[:, None, None, None], y.flip(-1), y)
            gain = 1 + brightness * (2 * torch.rand(batch_size, 1, 1, 1, generator=gen) - 1)
            gain = gain * (1 + brightness / 4 * (
                2 * torch.rand(batch_size, 3, 1, 1, generator=gen) - 1))
            x = (x * gain).clamp(0, 1)
            logits = net(x)
            loss = F.binary_cross_entropy_with_logits(logits, y) + _soft_dice_loss(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_value = float(loss.detach())
            if it % 10 == 0 or it == iters - 1:
                bar.set_postfix(loss=f'{loss_value:.3f}')
        bar.close()
    if log is not None:
        log(f'optic-disc model: {iters} iterations on {n} images, final loss '
            f'{loss_value:.3f}')
    return ODModel(net, size=size, base=base, depth=depth,
                   disc_fraction=float(np.mean(fractions)), threshold=threshold,
                   iters=iters, seed=seed)


def evaluate_od_model(model: ODModel, images: Sequence[np.ndarray],
                      masks: Sequence[np.ndarray],
                      threshold: Optional[float] = None) -> dict:
    """Score ``model`` on held-out (image, disc mask) pairs: ``mean_dice``, per-image
    ``dice`` (of :meth:`ODModel.predict`'s disc against the mask) and ``fallbacks``
    (how many predictions fell back)."""
    if len(images) != len(masks):
        raise ValueError(f'evaluate_od_model: {len(images)} images but {len(masks)} masks')
    if not len(images):
        raise ValueError('evaluate_od_model: no images to evaluate on')
    scores, fallbacks = [], 0
    for i, (image, mask) in enumerate(zip(images, masks)):
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != np.asarray(image).shape[:2]:
            raise ValueError(f'evaluate_od_model: mask {i} has shape {mask.shape}, '
                             f'expected its image\'s {np.asarray(image).shape[:2]}')
        pred = model.predict(image, threshold)
        fallbacks += int(pred.fallback)
        scores.append(dice(pred.mask, mask))
    return {'mean_dice': float(np.mean(scores)), 'dice': scores, 'fallbacks': fallbacks}
