"""Data transforms for (image, label map) pairs of the prepared layout.

Registered in mmengine's root TRANSFORMS registry, so mmagic, mmseg and plain mmengine
pipelines all find them. Keys in ``results``:

* ``img``            (H, W, 3) uint8 image (RGB unless ``channel_order='bgr'``);
* ``gt_seg_map``     (H, W) uint8 class indices in the config's class order (mmseg's key);
* ``label_onehot``   (C, H, W) float32 one-hot of ``gt_seg_map``;
* ``grade``          DR grade 0-4 (-1 when ungraded).

None of them call compiled mmcv ops, so they run anywhere.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmagic.structures import DataSample
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS


def _read(path: str, flag: int) -> np.ndarray:
    """Decode an image file; errors name the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: file not found')
    data = np.fromfile(path, dtype=np.uint8)
    out = cv2.imdecode(data, flag) if data.size else None
    if out is None:
        raise ValueError(f'{path}: cannot decode (corrupt or not an image file)')
    return out


@TRANSFORMS.register_module()
class LoadFundusPair(BaseTransform):
    """Load the image and / or the label map of a prepared-layout sample.

    The label is remapped from the prepared root's classes to the config's classes with
    ``results['label_lut']`` (set by :class:`FundusDataset`), and checked: it must be 2-D,
    the size of its image, and hold only indices below ``results['num_classes']``.

    Args:
        with_image: load ``img_path`` into ``img``.
        with_label: load ``label_path`` into ``gt_seg_map``.
        channel_order: ``'rgb'`` (mmagic's convention here) or ``'bgr'`` (mmseg's, whose
            data preprocessor then takes ``bgr_to_rgb=True``).
        to_float32: return the image as float32.
    """

    def __init__(self, with_image: bool = True, with_label: bool = True,
                 channel_order: str = 'rgb', to_float32: bool = False):
        if channel_order not in ('rgb', 'bgr'):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        if not (with_image or with_label):
            raise ValueError('LoadFundusPair: load at least one of image and label')
        self.with_image = with_image
        self.with_label = with_label
        self.channel_order = channel_order
        self.to_float32 = to_float32

    def transform(self, results: dict) -> dict:
        shape = None
        if self.with_image:
            img = _read(results['img_path'], cv2.IMREAD_COLOR)
            if self.channel_order == 'rgb':
                img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            if self.to_float32:
                img = img.astype(np.float32)
            results['img'] = img
            shape = img.shape[:2]
            results['img_shape'] = shape
            results['ori_shape'] = shape
        if self.with_label:
            path = results['label_path']
            label = _read(path, cv2.IMREAD_UNCHANGED)
            if label.ndim != 2 or label.dtype != np.uint8:
                raise ValueError(f'{path}: a label map must be a single-channel uint8 PNG, '
                                 f'got shape {label.shape} and dtype {label.dtype}')
            if shape is not None and label.shape != shape:
                raise ValueError(f'{path}: label is {label.shape[1]}x{label.shape[0]} but its '
                                 f'image {results["img_path"]} is {shape[1]}x{shape[0]}')
            stored = results.get('num_stored_classes')
            if stored is not None and label.size and int(label.max()) >= stored:
                raise ValueError(f'{path}: label value {int(label.max())} outside '
                                 f'0..{stored - 1} (its root\'s classes.json lists {stored} '
                                 f'classes)')
            lut = results.get('label_lut')
            if lut is not None:
                label = np.asarray(lut, dtype=np.uint8)[label]
            num_classes = results.get('num_classes')
            # 255 after the lookup: a class the image's source does not annotate (ignored).
            valid = label[label != 255] if lut is not None else label
            if num_classes is not None and valid.size and int(valid.max()) >= num_classes:
                raise ValueError(f'{path}: label value {int(valid.max())} outside '
                                 f'0..{num_classes - 1} (classes.json of its root lists '
                                 f'fewer classes than the label uses)')
            results['gt_seg_map'] = label
            results.setdefault('seg_fields', [])
            if 'gt_seg_map' not in results['seg_fields']:
                results['seg_fields'].append('gt_seg_map')
            if shape is None:
                results['img_shape'] = label.shape
                results['ori_shape'] = label.shape
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(with_image={self.with_image}, '
                f'with_label={self.with_label}, channel_order={self.channel_order!r})')


@TRANSFORMS.register_module()
class ResizeFundus(BaseTransform):
    """Resize image and label map together to ``size`` (int or (h, w)).

    The image by area averaging when shrinking, bilinear when growing; the label map by
    nearest neighbour, so every pixel keeps a class of the source. ``resize_label=False``
    leaves the label at its original size: mmseg test pipelines do that, since the
    segmenter resizes its prediction back to ``ori_shape`` before it is scored.
    """

    def __init__(self, size: Union[int, Sequence[int], None] = None,
                 resize_label: bool = True):
        self.resize_label = resize_label
        if size is None:
            raise ValueError('ResizeFundus: size is not set; give it, or a top-level '
                             '`image_size` in the config (the tools fill it in)')
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f'ResizeFundus: size must be an int or (h, w), got {size!r}')

    def transform(self, results: dict) -> dict:
        h, w = self.size
        img = results.get('img')
        if img is not None and img.shape[:2] != (h, w):
            interp = cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR
            results['img'] = cv2.resize(img, (w, h), interpolation=interp)
        label = results.get('gt_seg_map')
        if self.resize_label and label is not None and label.shape != (h, w):
            results['gt_seg_map'] = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
        results['img_shape'] = (h, w)
        results['scale_factor'] = (w / results['ori_shape'][1], h / results['ori_shape'][0])
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(size={self.size})'


@TRANSFORMS.register_module()
class RandomFlipFundus(BaseTransform):
    """Flip image and label map together with probability ``prob`` per direction.

    Horizontal flips swap left and right eyes' geometry, which fundus data sets hold
    both of; vertical flips are off by default (the vessel arcades are not symmetric
    about the horizontal axis in every sense a reader might care about).
    """

    def __init__(self, prob: float = 0.5, directions: Sequence[str] = ('horizontal',)):
        if not 0 <= prob <= 1:
            raise ValueError(f'RandomFlipFundus: prob must be in [0, 1], got {prob}')
        bad = set(directions) - {'horizontal', 'vertical'}
        if bad:
            raise ValueError(f'RandomFlipFundus: unknown direction(s) {sorted(bad)}; '
                             f"expected 'horizontal' and / or 'vertical'")
        self.prob = prob
        self.directions = tuple(directions)

    def transform(self, results: dict) -> dict:
        flips = [d for d in self.directions if np.random.rand() < self.prob]
        for d in flips:
            axis = 1 if d == 'horizontal' else 0
            for key in ('img', 'gt_seg_map'):
                if results.get(key) is not None:
                    results[key] = np.ascontiguousarray(np.flip(results[key], axis=axis))
        results['flip'] = bool(flips)
        results['flip_direction'] = flips[0] if len(flips) == 1 else (
            'diagonal' if flips else None)
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(prob={self.prob}, directions={self.directions})'


@TRANSFORMS.register_module()
class AlignOpticDisc(BaseTransform):
    """Mirror a sample so that its optic disc lies on one side (``'right'`` or ``'left'``).

    Fundus data sets hold left and right eyes, whose discs lie on opposite sides, so a
    generator must learn two modes of disc position; between them it draws maps with two
    half discs (the paper's main failure). Since the data are mirror-symmetric anyway (we
    train with flips), a label generator can learn one side only and the sampler mirror
    half of its maps at random (``LabelACGAN(sample_flip=True)``), which gives back the
    symmetric distribution. Uses the ``OD`` channel of ``gt_seg_map`` (index
    ``od_index``, found from ``results['classes']`` when not given); a map without
    disc pixels is left as it is.
    """

    def __init__(self, side: str = 'right', od_index: Optional[int] = None):
        if side not in ('right', 'left'):
            raise ValueError(f"AlignOpticDisc: side must be 'right' or 'left', got {side!r}")
        self.side = side
        self.od_index = od_index

    def transform(self, results: dict) -> dict:
        label = results['gt_seg_map']
        od = self.od_index
        if od is None:
            classes = results.get('classes')
            if classes is None or 'OD' not in classes:
                raise KeyError('AlignOpticDisc: the class list has no OD (give od_index)')
            od = list(classes).index('OD')
        cols = np.nonzero(label == od)[1]
        flip = False
        if cols.size:
            on_right = cols.mean() >= (label.shape[1] - 1) / 2
            flip = on_right != (self.side == 'right')
        if flip:
            for key in ('img', 'gt_seg_map'):
                if results.get(key) is not None:
                    results[key] = np.ascontiguousarray(results[key][:, ::-1])
        results['od_aligned_flip'] = flip
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(side={self.side!r})'


@TRANSFORMS.register_module()
class BenGrahamFundus(BaseTransform):
    """Ben Graham's local-contrast normalisation of the image (Kaggle DR 2015 winner).

    ``img = 4 * img - 4 * GaussianBlur(img, sigma) + 128``, per channel, rounded and
    saturated to 0..255 (``cv2.addWeighted`` on uint8 images): the local mean colour
    becomes mid-grey and local detail (lesions, vessels) is amplified four times, which
    evens out illumination and camera colour between images and sources. Then the
    field of view (FOV) is shrunk by ``fov_margin`` of its radius and everything
    outside it is set to ``outside_value``: near the FOV edge the blur mixes in the
    black surround, which leaves a bright ring. Only ``img`` changes; the label never.

    The recipe: Graham rescales each photograph to an FOV radius r, blurs with
    sigma = r / 30 and keeps a centred circle of radius 0.9 r, 128 outside it. Son et
    al.'s code (which fed its U-Net such images) applies it to FOV-cropped squares of
    side s with sigma = s / 30 (twice Graham's: s = 2 r) and the same 0.9 r circle.
    Our prepared images are FOV-cropped squares too, but the FOV is not always a full
    centred circle (IDRiD's is cut flat at the top and bottom), so the FOV is taken from
    the sample itself: the label map's ``BG`` class (index 0) is outside it when the
    label is loaded (it is then the annotated FOV; a label of another size is resized
    by nearest neighbour), otherwise the pixels whose brightest channel exceeds
    ``fov_threshold``, holes filled. With r = s / 2, the FOV is shrunk by
    ``fov_margin * s / 2`` pixels. The margin hides the ring, and with it whatever the
    image shows there (the label keeps its lesions): ``fov_margin=0`` keeps every FOV
    pixel and the ring.

    Args:
        sigma: blur sigma as a fraction of the image side (1/30: Son et al.'s code;
            1/60: Graham's r / 30 on an FOV-cropped image).
        fov_margin: fraction of the FOV radius (half the image side) cut off the FOV
            edge (0.1: the recipe's 0.9 circle). 0 keeps the whole FOV.
        outside_value: value of every channel outside the shrunk FOV (128 in the
            recipe; 0 gives black).
        fov_threshold: brightness above which a pixel is in the FOV, for samples without
            a label map.
    """

    def __init__(self, sigma: float = 1 / 30, fov_margin: float = 0.1,
                 outside_value: int = 128, fov_threshold: int = 10):
        if not sigma > 0:
            raise ValueError(f'BenGrahamFundus: sigma (a fraction of the image side) must '
                             f'be > 0, got {sigma}')
        if not 0 <= fov_margin < 1:
            raise ValueError(f'BenGrahamFundus: fov_margin must be in [0, 1), got '
                             f'{fov_margin}')
        if not 0 <= outside_value <= 255:
            raise ValueError(f'BenGrahamFundus: outside_value must be in 0..255, got '
                             f'{outside_value}')
        self.sigma = sigma
        self.fov_margin = fov_margin
        self.outside_value = outside_value
        self.fov_threshold = fov_threshold

    def fov_mask(self, results: dict) -> np.ndarray:
        """(H, W) bool: the sample's field of view, before the margin is cut off."""
        img = results['img']
        h, w = img.shape[:2]
        label = results.get('gt_seg_map')
        if label is not None:
            fov = np.asarray(label) != 0
            if fov.shape != (h, w):
                fov = cv2.resize(fov.astype(np.uint8), (w, h),
                                 interpolation=cv2.INTER_NEAREST) > 0
            return fov
        bright = img.max(axis=2) if img.ndim == 3 else img
        mask = (bright > self.fov_threshold).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        filled = np.zeros_like(mask)
        cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
        return filled > 0

    def transform(self, results: dict) -> dict:
        img = results.get('img')
        if img is None:
            raise KeyError('BenGrahamFundus: results have no image (put it after a '
                           'LoadFundusPair that loads the image)')
        h, w = img.shape[:2]
        side = max(h, w)
        blur = cv2.GaussianBlur(img, (0, 0), self.sigma * side)
        out = 4.0 * img.astype(np.float32) - 4.0 * blur.astype(np.float32) + 128.0
        out = np.clip(np.rint(out) if img.dtype == np.uint8 else out, 0, 255)
        fov = self.fov_mask(results)
        margin = self.fov_margin * side / 2
        if margin > 0:
            # Distance to the nearest non-FOV pixel, the outside of the image included.
            padded = cv2.copyMakeBorder(fov.astype(np.uint8), 1, 1, 1, 1,
                                        cv2.BORDER_CONSTANT, value=0)
            dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
            fov = dist > margin
        out[~fov] = self.outside_value
        results['img'] = out.astype(img.dtype)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(sigma={self.sigma:.4g}, '
                f'fov_margin={self.fov_margin}, outside_value={self.outside_value})')


@TRANSFORMS.register_module()
class LabelToOneHot(BaseTransform):
    """``gt_seg_map`` (H, W) -> ``label_onehot`` (C, H, W) float32.

    ``num_classes`` defaults to ``results['num_classes']`` (set by the dataset).
    """

    def __init__(self, num_classes: Optional[int] = None, key: str = 'gt_seg_map',
                 out_key: str = 'label_onehot'):
        self.num_classes = num_classes
        self.key = key
        self.out_key = out_key

    def transform(self, results: dict) -> dict:
        label = results[self.key]
        c = self.num_classes or results.get('num_classes')
        if c is None:
            raise KeyError('LabelToOneHot: give num_classes, or use a dataset that sets '
                           "results['num_classes']")
        if label.size and int(label.max()) >= c:
            raise ValueError(f'LabelToOneHot: label value {int(label.max())} >= num_classes {c}'
                             f' ({results.get("label_path", "")})')
        onehot = np.zeros((c, *label.shape), np.float32)
        np.put_along_axis(onehot, label[None].astype(np.int64), 1.0, axis=0)
        results[self.out_key] = onehot
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(num_classes={self.num_classes})'


@TRANSFORMS.register_module()
class PackFundusGenInputs(BaseTransform):
    """Pack a sample for mmagic's generative models.

    ``inputs`` maps input names to result keys: ``dict(img='label_onehot')`` feeds the
    one-hot label map to a label GAN as its "image"; ``dict(img='img', label='label_onehot')``
    gives SPADE the photograph and its label. Images (H, W, 3) become (3, H, W) tensors;
    (C, H, W) arrays are kept as they are. The DR grade goes to ``gt_label`` (mmagic's
    conditional GANs read it there), the label map to ``gt_seg`` and the names and paths
    to the metainfo.
    """

    META = ('name', 'grade', 'grade_source', 'dataset', 'split', 'img_path', 'label_path',
            'ori_shape', 'img_shape', 'flip', 'flip_direction')

    def __init__(self, inputs: Optional[dict] = None, with_grade: bool = True):
        self.inputs = dict(inputs or {'img': 'img'})
        self.with_grade = with_grade

    def transform(self, results: dict) -> dict:
        packed = {}
        for name, key in self.inputs.items():
            if key not in results:
                raise KeyError(f'PackFundusGenInputs: results have no {key!r} for input '
                               f'{name!r} (have {sorted(results)})')
            value = np.asarray(results[key])
            if value.ndim == 3 and key == 'img':
                value = value.transpose(2, 0, 1)
            elif value.ndim == 2:
                value = value[None]
            packed[name] = torch.from_numpy(np.ascontiguousarray(value))
        sample = DataSample()
        if self.with_grade:
            grade = int(results.get('grade', -1))
            if grade < 0:
                raise ValueError(f'{results.get("label_path", "sample")}: has no DR grade, '
                                 f'but this pipeline needs one (select graded images with '
                                 f"the dataset's ungraded='skip', or predict grades first)")
            sample.set_gt_label(grade)
        if 'gt_seg_map' in results:
            sample.set_tensor_data(
                {'gt_seg': torch.from_numpy(np.ascontiguousarray(results['gt_seg_map']))[None]})
        sample.set_metainfo({k: results[k] for k in self.META if k in results})
        return {'inputs': packed, 'data_samples': sample}

    def __repr__(self):
        return f'{self.__class__.__name__}(inputs={self.inputs})'
