"""Grades for ungraded images, from their label maps.

Some sources give lesion masks without a DR grade (IDRiD's segmentation images are not
in its grading set). Both GANs are conditioned on the grade, so the pipeline grades them
with the grade classifier of :mod:`.label_stats` (lesion-load features of the label
maps, the measure that scores generated maps), trained on the graded training images.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path

import numpy as np

from ..classes import ClassSet
from ..datasets.layout import read_classes, read_meta, write_meta
from .label_stats import GradeClassifier, load_maps


def predict_grades(src: Path, out: Path, seed: int = 0, size: int = 128) -> dict:
    """Train a grade classifier on the graded (annotated) training images of ``src`` and
    grade its ungraded images; write ``out`` as ``src`` with those grades (meta.csv rows
    marked ``predicted``; images and labels linked, not copied).

    Returns ``ungraded`` (how many) and, when there were some, ``train_images``,
    ``test_accuracy`` (on the graded test split; None without one),
    ``predicted_per_grade`` and, where ``src/true_grades.csv`` holds the grades the
    phantom hid, ``hidden_grade_accuracy``. ``size``: the side the maps are resized to.
    """
    src, out = Path(src), Path(out)
    classes: ClassSet = read_classes(src)
    rows = read_meta(src)
    out.mkdir(parents=True, exist_ok=True)
    for sub in ('images', 'labels'):
        link = out / sub
        if not link.exists():
            os.symlink(os.path.relpath(src / sub, out), link)
    (out / 'classes.json').write_text((src / 'classes.json').read_text())
    ungraded = [r for r in rows if r.grade is None]
    result = {'ungraded': len(ungraded)}
    if not ungraded:
        write_meta(out, rows)
        return result
    train = load_maps(src, classes, size, split='train')  # graded rows only
    clf = GradeClassifier(seed=seed).fit(train)
    result['train_images'] = len(train)
    try:
        test = load_maps(src, classes, size, split='test')
        result['test_accuracy'] = float(np.mean(clf.predict(test) == test.grades))
    except ValueError:  # no graded test maps
        result['test_accuracy'] = None
    every = load_maps(src, classes, size, grades_required=False)  # meta order, grade -1
    pred = clf.predict(every.subset(every.grades == -1))          # = the ungraded rows
    grade_of = {r.name: int(g) for r, g in zip(ungraded, pred)}
    write_meta(out, [dataclasses.replace(r, grade=grade_of[r.name], grade_source='predicted')
                     if r.name in grade_of else r for r in rows])
    result['predicted_per_grade'] = {g: int(np.sum(pred == g)) for g in range(5)}
    truth_file = src / 'true_grades.csv'
    if truth_file.is_file():  # the phantom knows the grades it hid
        with open(truth_file) as f:
            truth = {row['name']: int(row['grade']) for row in csv.DictReader(f)}
        hits = [grade_of[n] == g for n, g in truth.items() if n in grade_of]
        result['hidden_grade_accuracy'] = float(np.mean(hits)) if hits else None
    return result
