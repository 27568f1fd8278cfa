"""A dataset over the prepared layout, for mmagic, mmseg and plain mmengine configs.

Registered in mmengine's root DATASETS registry, which mmagic's and mmseg's registries
fall back to, so ``dict(type='FundusDataset', ...)`` builds under any default scope.
"""
from __future__ import annotations

import os.path as osp
from typing import Optional, Sequence

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.registry import DATASETS

from ..classes import resolve_classes
from ..errors import UserFileNotFoundError, UserValueError
from .layout import GRADE_SOURCES, GRADES, SPLITS, image_path, label_path, read_classes, read_meta

UNGRADED_POLICIES = ('keep', 'skip', 'error')
UNANNOTATED_POLICIES = ('keep', 'ignore')
IGNORE_INDEX = 255


@DATASETS.register_module()
class FundusDataset(BaseDataset):
    """Images and label maps of one prepared root.

    Args:
        data_root: the prepared root (``images/``, ``labels/``, ``meta.csv``, ``classes.json``).
        classes: the config's class list (codes, or dicts that register new classes);
            ``BG`` and ``RET`` come first implicitly. Labels written with other classes are
            remapped: classes the config does not select become ``RET``. A selected class
            that the root's ``classes.json`` lacks is an error.
        split: ``'train'``, ``'test'`` or ``None`` (all rows).
        grades: keep only these DR grades (``None``: all).
        grade_sources: keep only rows whose ``grade_source`` is one of these.
        ungraded: what to do with rows that have no grade: ``'keep'`` (grade -1),
            ``'skip'`` (dropped, with a log line saying how many) or ``'error'``.
        with_images: ``False`` for label-only roots (e.g. sampled label maps).
        max_samples: keep the first N rows (after filtering, by name) - for demos.
        unannotated: what the label of an image holds for a selected class its source
            does not annotate (meta.csv ``annotated``; FGADR has no optic disc):
            ``'keep'`` gives the label as stored (a disc filled in by ``prepare_data``
            stays ``OD``, which the GANs need), ``'ignore'`` turns that class's pixels
            into 255 (mmseg's ignore index), so a segmenter is neither taught a drawn or
            predicted disc as truth nor the disc as retina. Either way every sample
            carries ``annotated``, the selected classes its source annotates, which the
            segmentation metrics use to score a class only where it is annotated.
    """

    def __init__(self, data_root: str, classes: Optional[Sequence] = None,
                 split: Optional[str] = 'train', grades: Optional[Sequence[int]] = None,
                 grade_sources: Optional[Sequence[str]] = None, ungraded: str = 'keep',
                 with_images: bool = True, max_samples: Optional[int] = None,
                 unannotated: str = 'keep', **kwargs):
        if split is not None and split not in SPLITS:
            raise UserValueError(f'FundusDataset: split must be one of {list(SPLITS)} or None, '
                                 f'got {split!r}')
        if grades is not None:
            bad = [g for g in grades if g not in GRADES]
            if bad:
                raise UserValueError(f'FundusDataset: grades {bad} outside 0-4 (key "grades")')
        if grade_sources is not None:
            bad = [s for s in grade_sources if s not in GRADE_SOURCES]
            if bad:
                raise UserValueError(f'FundusDataset: unknown grade_sources {bad}; expected '
                                     f'some of {list(GRADE_SOURCES)}')
        if ungraded not in UNGRADED_POLICIES:
            raise UserValueError(f'FundusDataset: ungraded must be one of {UNGRADED_POLICIES}, '
                                 f'got {ungraded!r}')
        if unannotated not in UNANNOTATED_POLICIES:
            raise UserValueError(f'FundusDataset: unannotated must be one of '
                                 f'{UNANNOTATED_POLICIES}, got {unannotated!r}')
        self.unannotated = unannotated
        self.class_set = resolve_classes(classes)
        self.split = split
        self.grades = None if grades is None else tuple(grades)
        self.grade_sources = None if grade_sources is None else tuple(grade_sources)
        self.ungraded = ungraded
        self.with_images = with_images
        self.max_samples = max_samples
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        metainfo.update(classes=self.class_set.codes,
                        class_names=self.class_set.names,
                        palette=[list(map(int, c)) for c in self.class_set.palette])
        super().__init__(data_root=data_root, metainfo=metainfo, **kwargs)

    def load_data_list(self) -> list[dict]:
        return self._load_root(self.data_root, self.split)

    def _load_root(self, root: str, split: Optional[str]) -> list[dict]:
        """The data list of one prepared root, with this dataset's filters."""
        if not osp.isdir(root):
            raise UserFileNotFoundError(f'{root}: data_root not found (expected a prepared '
                                        f'dataset: images/, labels/, meta.csv, classes.json)')
        stored = read_classes(root)
        missing = [c for c in self.class_set.lesion_codes if c not in stored.codes]
        if missing:
            raise UserValueError(f'{root}/classes.json lacks class(es) {missing} that the config '
                                 f'selects; it has {list(stored.codes)}. Prepare the data with '
                                 f'those classes.')
        lut = self.class_set.remap_from(stored)
        rows = read_meta(root)
        selected = [r for r in rows
                    if (split is None or r.split == split)
                    and (self.grades is None or r.grade in self.grades)
                    and (self.grade_sources is None or r.grade_source in self.grade_sources)]
        ungraded = [r for r in selected if r.grade is None]
        if ungraded and self.ungraded == 'error':
            raise UserValueError(f'{root}/meta.csv: {len(ungraded)} selected image(s) have no '
                                 f'grade (e.g. {ungraded[0].name}); predict grades first or set '
                                 f"ungraded='skip'")
        if ungraded and self.ungraded == 'skip':
            print_log(f'FundusDataset({root}, split={split}): skipping '
                      f'{len(ungraded)} ungraded image(s)', logger='current')
            selected = [r for r in selected if r.grade is not None]
        selected.sort(key=lambda r: r.name)
        if self.max_samples is not None:
            selected = selected[:self.max_samples]
        if not selected:
            raise UserValueError(f'{root}: no images selected (split={split}, '
                                 f'grades={self.grades}, grade_sources={self.grade_sources})')
        data_list = []
        luts = {}
        for r in selected:
            lab = str(label_path(root, r.name))
            if not osp.isfile(lab):
                raise UserFileNotFoundError(f'{lab}: label listed in meta.csv is missing')
            annotated = tuple(c for c in self.class_set.lesion_codes if r.annotates(c))
            if annotated not in luts:
                luts[annotated] = self._label_lut(lut, annotated)
            info = dict(name=r.name, label_path=lab, seg_map_path=lab,
                        grade=-1 if r.grade is None else r.grade,
                        grade_source=r.grade_source, dataset=r.dataset, split=r.split,
                        annotated=annotated, od_source=r.od_source,
                        label_lut=luts[annotated], num_classes=len(self.class_set),
                        num_stored_classes=len(stored),
                        classes=self.class_set.codes,
                        reduce_zero_label=False, seg_fields=[])
            if self.with_images:
                img = str(image_path(root, r.name))
                if not osp.isfile(img):
                    raise UserFileNotFoundError(f'{img}: image listed in meta.csv is missing')
                info['img_path'] = img
            data_list.append(info)
        self._log_unannotated(root, split, data_list)
        return data_list

    def _label_lut(self, lut, annotated: tuple):
        """The root's lookup table, with the classes an image does not annotate turned
        into the ignore index when ``unannotated='ignore'``."""
        if self.unannotated != 'ignore' or len(annotated) == len(self.class_set.lesion_codes):
            return lut
        lut = lut.copy()
        for code in self.class_set.lesion_codes:
            if code not in annotated:
                lut[lut == self.class_set.index(code)] = IGNORE_INDEX
        return lut

    def _log_unannotated(self, root, split, data_list) -> None:
        """Say, per source and class, how many images do not annotate a selected class
        and what their labels hold for it."""
        gaps = {}
        for d in data_list:
            for code in self.class_set.lesion_codes:
                if code not in d['annotated']:
                    filled = code == 'OD' and d['od_source'] in ('drawn', 'predicted')
                    key = (d['dataset'], code, d['od_source'] if filled else '')
                    gaps[key] = gaps.get(key, 0) + 1
        for (dataset, code, filled), n in sorted(gaps.items()):
            if filled:
                what = ('its pixels are ignored (255)' if self.unannotated == 'ignore'
                        else f'its {filled} disc is kept as OD')
            else:
                what = (f'any {code} there is labelled RET (nothing marks where it is); '
                        f'metrics skip {code} on these images')
            print_log(f'FundusDataset({root}, split={split}): {n} {dataset} image(s) do not '
                      f'annotate {code}{" (disc " + filled + ")" if filled else ""}: {what}',
                      logger='current')

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info['seg_fields'] = []  # fresh list per fetch: transforms append to it
        return info

    @property
    def grade_list(self) -> list[int]:
        return [self.get_data_info(i)['grade'] for i in range(len(self))]

    def __repr__(self):
        return (f'FundusDataset(root={self.data_root}, split={self.split}, '
                f'classes={list(self.class_set.codes)}, n={len(self)})')

