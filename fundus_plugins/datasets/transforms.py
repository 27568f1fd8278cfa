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
            lut = results.get('label_lut')
            if lut is not None:
                label = np.asarray(lut, dtype=np.uint8)[label]
            num_classes = results.get('num_classes')
            if num_classes is not None and label.size and int(label.max()) >= num_classes:
                raise ValueError(f'{path}: label value {int(label.max())} outside '
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
        import torch
        from mmagic.structures import DataSample

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
