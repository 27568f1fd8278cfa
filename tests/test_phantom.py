import hashlib
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fundus_plugins.classes import ClassSet, register_lesion_class
from fundus_plugins.datasets.layout import read_meta
from fundus_plugins.phantom import (PHANTOM_CLASSES, draw_phantom, phantom_grades,
                                    write_phantom_dataset)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tools'))
import make_phantom  # noqa: E402

CS = ClassSet(PHANTOM_CLASSES)


def _digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


def test_same_seed_same_bytes_any_worker_count(tmp_path):
    write_phantom_dataset(tmp_path / 'a', num=6, size=64, seed=7, progress=False)
    write_phantom_dataset(tmp_path / 'b', num=6, size=64, seed=7, workers=2, progress=False)
    write_phantom_dataset(tmp_path / 'c', num=6, size=64, seed=8, progress=False)
    da, db, dc = _digest(tmp_path / 'a'), _digest(tmp_path / 'b'), _digest(tmp_path / 'c')
    assert len(da) == 6 * 2 + 2 and da == db
    assert da['images/phantom_00000.png'] != dc['images/phantom_00000.png']


@pytest.mark.parametrize('grade', range(5))
def test_labels_agree_with_the_drawing(grade):
    for seed in range(3):
        s = draw_phantom(grade, 128, seed=[seed, grade])
        od = (s.label == CS.index('OD')).astype(np.uint8)
        # OD pixels may be covered by lesions; the disc itself is one component.
        n, _ = cv2.connectedComponents(s.masks['OD'].astype(np.uint8))
        assert n - 1 == 1 and od.sum() > 0.5 * s.masks['OD'].sum()
        assert (s.label[~s.fov] == 0).all()           # nothing outside the field of view
        assert (s.label[s.fov] != 0).all()
        for code, mask in s.masks.items():              # every drawn pixel is labelled:
            on_top = s.label[mask]                      # its own class or one above it
            prio = {c: CS.priorities[CS.index(c)] for c in CS.lesion_codes}
            allowed = [CS.index(c) for c in CS.lesion_codes if prio[c] >= prio[code]]
            assert np.isin(on_top, allowed).all()
        if grade == 0:
            assert set(np.unique(s.label)) == {0, 1, CS.index('OD')}
        # The image is drawn where the label says: the OD is brighter than the retina.
        gray = s.image.mean(axis=2)
        assert gray[s.label == CS.index('OD')].mean() > gray[s.label == 1].mean() + 20


def test_lesion_load_grows_with_grade():
    load = []
    for grade in range(5):
        px = [(draw_phantom(grade, 128, seed=[s, 99]).label >= 3).sum() for s in range(8)]
        load.append(np.mean(px))
    assert load[0] == 0
    assert all(a < b for a, b in zip(load, load[1:])), load


def test_grades_balanced_or_by_distribution():
    g = phantom_grades(23, seed=0)
    assert np.bincount(g, minlength=5).tolist() == [5, 5, 5, 4, 4]
    g = phantom_grades(500, seed=0, distribution=[1, 0, 0, 0, 1])
    assert set(g) == {0, 4} and abs(g.count(0) - 250) < 50
    with pytest.raises(ValueError, match='5 non-negative weights'):
        phantom_grades(5, distribution=[1, 1])
    with pytest.raises(ValueError, match='grade must be one of 0-4'):
        draw_phantom(5)


def test_make_phantom_tool_writes_layout_and_preview(tmp_path, capsys):
    out = tmp_path / 'ph'
    assert make_phantom.main(['--num', '10', '--size', '64', '--out', str(out),
                              '--seed', '1']) == 0
    rows = read_meta(out)
    assert len(rows) == 10 and sum(r.split == 'test' for r in rows) == 2  # 20 %
    assert {r.grade_source for r in rows} == {'annotated'}
    assert (out / 'preview.png').is_file()
    assert 'img/s' in capsys.readouterr().out
    register_lesion_class('NOTDRAWN', 'not drawn', (1, 1, 1), 3)
    with pytest.raises(ValueError, match='does not draw'):
        make_phantom.main(['--num', '2', '--size', '64', '--out', str(tmp_path / 'x'),
                           '--classes', 'OD', 'NOTDRAWN'])
