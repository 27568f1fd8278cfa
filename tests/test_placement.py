"""Lesion maps placed on a real healthy image (fundus_plugins.inpaint.placement)."""
import shutil

import cv2
import numpy as np
import pytest

from fundus_plugins.classes import DEFAULT_CLASSES, ClassSet
from fundus_plugins.datasets.layout import image_path, label_path, read_meta
from fundus_plugins.datasets.prepare import read_image
from fundus_plugins.datasets.transforms import AlignOpticDisc
from fundus_plugins.inpaint import (DEFAULT_PLACEMENT_RULES, disc_side, place_lesions,
                                    place_on_healthy, real_lesion_maps, sampled_lesion_maps)
from fundus_plugins.inpaint.placement import _derangement
from fundus_plugins.phantom import PHANTOM_CLASSES, write_phantom_dataset

CS = ClassSet(DEFAULT_CLASSES)          # BG RET OD MA HE EX SE
BG, RET, OD, MA, HE, EX, SE = range(7)


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    """20 phantom images at 64 px in the default classes: 4 per grade, 4 of them healthy."""
    out = tmp_path_factory.mktemp('placement') / 'phantom'
    write_phantom_dataset(out, num=20, size=64, seed=5, classes=CS, progress=False)
    return out


def _label(root, name):
    return cv2.imread(str(label_path(root, name)), cv2.IMREAD_UNCHANGED)


def _healthy(root):
    return sorted(r.name for r in read_meta(root) if r.grade == 0)


def _synthetic(size=64, disc_x=None, blobs=()):
    """A label map: a centred circular field of view, a disc of radius 5 at column
    ``disc_x`` (none when None) and square blobs ``(class, x, y, half side)``."""
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    label = np.where((yy - c) ** 2 + (xx - c) ** 2 <= (0.47 * size) ** 2, RET, BG)
    if disc_x is not None:
        label[(yy - c) ** 2 + (xx - disc_x) ** 2 <= 25] = OD
    for cls, x, y, r in blobs:
        label[y - r:y + r + 1, x - r:x + r + 1] = cls
    return label.astype(np.uint8)


# ----------------------------------------------------------------------------------------
# disc_side
def test_disc_side_left_right_none_and_as_align_optic_disc_decides(root):
    assert disc_side(_synthetic(disc_x=14), CS) == 'left'
    assert disc_side(_synthetic(disc_x=50), CS) == 'right'
    assert disc_side(_synthetic(), CS) is None
    assert disc_side(_synthetic(disc_x=14), ClassSet(['MA', 'HE', 'EX', 'SE', 'IRMA'])) \
        is None  # no OD class
    # Relative to the field of view, not the frame: a field shifted right moves the centre.
    shifted = np.zeros((64, 96), np.uint8)
    shifted[:, 32:] = _synthetic(disc_x=40)  # disc at column 72, right of the frame's centre
    assert disc_side(shifted, CS) == 'right'
    shifted[:, 32:] = _synthetic(disc_x=24)  # column 56: right of the frame's centre (47.5),
    assert disc_side(shifted, CS) == 'left'  # left of its field of view's (63.5)
    # On prepared (field-of-view-centred) maps it decides as AlignOpticDisc does.
    align = AlignOpticDisc(side='right', od_index=OD)
    sides = set()
    for row in read_meta(root):
        label = _label(root, row.name)
        side = disc_side(label, CS)
        sides.add(side)
        flipped = align.transform({'gt_seg_map': label})['od_aligned_flip']
        assert flipped == (side == 'left'), row.name
    assert sides == {'left', 'right'}


# ----------------------------------------------------------------------------------------
# place_lesions
def test_composite_keeps_field_of_view_and_disc_and_lesions_land_only_on_retina(root):
    for name in _healthy(root):
        real = _label(root, name)
        assert set(np.unique(real)) == {BG, RET, OD}
        for cls in (MA, HE, EX, SE):
            everywhere = np.full((40, 40), cls, np.uint8)  # also over BG and the disc
            label, mask, _ = place_lesions(real, everywhere, CS)
            np.testing.assert_array_equal(label == BG, real == BG)
            np.testing.assert_array_equal(label == OD, real == OD)
            # Every retina pixel and nothing else took the lesion.
            np.testing.assert_array_equal(mask, real == RET)
            np.testing.assert_array_equal(label[mask], cls)
            np.testing.assert_array_equal(label[~mask], real[~mask])


def test_real_lesion_maps_on_healthy_keep_disc_and_field_of_view_exactly(root):
    for grade in (2, 3, 4):
        maps = real_lesion_maps(root, CS, grade, seed=0)
        for name in _healthy(root):
            real = _label(root, name)
            for lesions in maps:
                label, mask, _ = place_lesions(real, lesions, CS)
                np.testing.assert_array_equal(label == BG, real == BG)
                np.testing.assert_array_equal(label == OD, real == OD)
                np.testing.assert_array_equal(mask, label != real)
                assert not (mask & (real != RET)).any()
                assert set(np.unique(label[mask])) <= {MA, HE, EX, SE}
                assert mask.sum() > 0


def test_rules_decide_what_may_lie_on_the_disc():
    real = _synthetic(disc_x=14)
    all_ma = np.full_like(real, MA)
    label, mask, _ = place_lesions(real, all_ma, CS)
    assert not mask[real == OD].any()
    # Configurable: MA allowed on the disc.
    label, mask, _ = place_lesions(real, all_ma, CS, rules={'MA': ()})
    assert (label[real == OD] == MA).all() and (label[real == BG] == BG).all()
    # NV (not in the default table) may lie on the disc, as at a real disc (NVD); BG never.
    cs = ClassSet(PHANTOM_CLASSES)
    nv = cs.index('NV')
    label, mask, _ = place_lesions(real, np.full_like(real, nv), cs)
    np.testing.assert_array_equal(mask, real != BG)
    # ... unless the table says otherwise.
    rules = dict(DEFAULT_PLACEMENT_RULES, NV=('OD',))
    label, mask, _ = place_lesions(real, np.full_like(real, nv), cs, rules=rules)
    np.testing.assert_array_equal(mask, real == RET)


def test_lesion_classes_selects_what_is_placed():
    real = _synthetic(disc_x=14)
    lesions = _synthetic(disc_x=14, blobs=[(MA, 30, 20, 2), (EX, 40, 40, 3)])
    label, mask, _ = place_lesions(real, lesions, CS, lesion_classes=['EX'])
    assert (label == EX).sum() == 49 and not (label == MA).any()
    label, mask, _ = place_lesions(real, lesions, CS)
    assert (label == EX).sum() == 49 and (label == MA).sum() == 25 and mask.sum() == 74


def test_overlap_with_real_lesions_follows_class_priority():
    # Real: EX (priority 3) blob. Placed: MA (7) over its left half, HE (2) over its right.
    real = _synthetic(disc_x=14, blobs=[(EX, 40, 32, 4)])
    lesions = _synthetic(disc_x=14)
    lesions[28:37, 36:41] = MA
    lesions[28:37, 41:45] = HE
    lesions[28:37, 45:48] = HE  # beyond the EX blob: on retina
    label, mask, _ = place_lesions(real, lesions, CS)
    assert (label[28:37, 36:41] == MA).all()      # MA outranks EX
    assert (label[28:37, 41:45] == EX).all()      # EX outranks HE: the real one stays
    assert (label[28:37, 45:48] == HE).all()
    np.testing.assert_array_equal(mask, label != real)
    assert not mask[28:37, 41:45].any()
    assert mask.sum() == 9 * 5 + 9 * 3


def test_a_map_whose_disc_is_on_the_other_side_is_mirrored():
    # The lesion map's disc is right (column 50) with a haemorrhage just left of it
    # (column 42, towards the macula); the real disc is left (column 14).
    real = _synthetic(disc_x=14)
    lesions = _synthetic(disc_x=50, blobs=[(HE, 42, 31, 2)])
    label, mask, mirrored = place_lesions(real, lesions, CS)
    assert mirrored
    ys, xs = np.nonzero(label == HE)
    assert xs.size == 25
    assert abs(xs.mean() - (63 - 42)) < 1e-9 and abs(ys.mean() - 31) < 1e-9
    assert abs(xs.mean() - 14) < 8          # next to the real disc, on its macula side
    # Same sides: not mirrored; align_disc=False: never.
    label, _, mirrored = place_lesions(_synthetic(disc_x=50), lesions, CS)
    assert not mirrored and np.nonzero(label == HE)[1].mean() == 42
    label, _, mirrored = place_lesions(real, lesions, CS, align_disc=False)
    assert not mirrored and np.nonzero(label == HE)[1].mean() == 42
    # A lesion map without a disc is placed as it is.
    label, _, mirrored = place_lesions(real, _synthetic(blobs=[(HE, 42, 31, 2)]), CS)
    assert not mirrored and np.nonzero(label == HE)[1].mean() == 42


def test_lesion_map_of_another_size_is_resized_nearest():
    real = _synthetic(size=64, disc_x=14)
    small = _synthetic(size=32, disc_x=7, blobs=[(SE, 20, 10, 1)])  # 3x3 at 32 px
    label, mask, mirrored = place_lesions(real, small, CS)
    assert not mirrored
    up = cv2.resize(small, (64, 64), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(label == SE, (up == SE) & (real == RET))
    assert (label == SE).sum() == 36


def test_place_lesions_errors_name_what_is_wrong():
    real = _synthetic(disc_x=14)
    with pytest.raises(ValueError, match=r'lesion map: label value 9 outside 0\.\.6'):
        place_lesions(real, np.full((8, 8), 9, np.uint8), CS)
    with pytest.raises(ValueError, match='real label map: no field of view'):
        place_lesions(np.zeros_like(real), real, CS)
    with pytest.raises(ValueError, match='real label map: no optic disc'):
        place_lesions(_synthetic(), real, CS)
    with pytest.raises(ValueError, match='lesion map: expected a 2-D'):
        place_lesions(real, np.zeros((4, 4, 3), np.uint8), CS)
    with pytest.raises(ValueError, match='OD is anatomy'):
        place_lesions(real, real, CS, lesion_classes=['OD'])
    with pytest.raises(KeyError, match="'IRMA' is not in this class set"):
        place_lesions(real, real, CS, lesion_classes=['IRMA'])
    with pytest.raises(KeyError, match="unknown lesion class 'Od'"):
        place_lesions(real, real, CS, rules={'MA': ['Od']})
    with pytest.raises(TypeError, match=r"rules\['MA'\]: expected a list"):
        place_lesions(real, real, CS, rules={'MA': 'OD'})


# ----------------------------------------------------------------------------------------
# Lesion sources
def test_sampled_lesion_maps_group_by_grade_as_sample_label_maps_yields():
    a, b, c = (_synthetic(disc_x=50, blobs=[(MA, 30, 30, k)]) for k in (1, 2, 3))
    out = sampled_lesion_maps([(2, 0, a), (3, 0, b), (2, 1, c)], CS)
    assert sorted(out) == [2, 3] and len(out[2]) == 2 and len(out[3]) == 1
    np.testing.assert_array_equal(out[2][1], c)
    assert len(sampled_lesion_maps(iter([(1, a)]))[1]) == 1  # (grade, map) pairs too
    with pytest.raises(ValueError, match='lesion sample 1: grade 7 is outside 0-4'):
        sampled_lesion_maps([(1, a), (7, a)])
    with pytest.raises(ValueError, match=r'lesion sample 0 \(grade 1\): label value 12'):
        sampled_lesion_maps([(1, np.full((4, 4), 12, np.uint8))], CS)


def test_derangement_never_keeps_an_item_in_place():
    for n in (2, 3, 5):
        for seed in range(30):
            perm = _derangement(n, np.random.default_rng(seed))
            assert sorted(perm) == list(range(n)) and (perm != np.arange(n)).all()
    assert list(_derangement(1, np.random.default_rng(0))) == [0]


def test_real_lesion_maps_are_shuffled_between_images_of_the_grade(root):
    rows = read_meta(root)
    orders = set()
    for grade in range(1, 5):
        names = sorted(r.name for r in rows if r.grade == grade)
        maps = real_lesion_maps(root, CS, grade, seed=0)
        assert maps.targets == tuple(names) and len(maps) == len(names) >= 2
        assert sorted(maps.sources) == names
        assert all(s != t for s, t in maps.assignment().items())
        for i, source in enumerate(maps.sources):
            np.testing.assert_array_equal(maps[i], _label(root, source))
        assert real_lesion_maps(root, CS, grade, seed=0).sources == maps.sources
        for seed in range(6):
            orders.add((grade, real_lesion_maps(root, CS, grade, seed=seed).sources))
    assert len(orders) > 4  # the seed changes the shuffle
    test = [r.name for r in rows if r.grade == 3 and r.split == 'test']
    assert list(real_lesion_maps(root, CS, 3, split='test').targets) == sorted(test)


def test_real_lesion_maps_remap_to_the_requested_classes(phantom_root):
    # phantom_root (conftest) is in PHANTOM_CLASSES: IRMA and NV become retina.
    stored = ClassSet(PHANTOM_CLASSES)
    maps = real_lesion_maps(phantom_root, CS, 4, seed=1)
    for i, source in enumerate(maps.sources):
        raw = _label(phantom_root, source)
        expected = CS.remap_from(stored)[raw]
        np.testing.assert_array_equal(maps[i], expected)
        assert int(maps[i].max()) < len(CS)
    assert any((_label(phantom_root, n) >= len(CS)).any() for n in maps.sources)


def test_real_lesion_maps_errors(root):
    with pytest.raises(ValueError, match=r"classes\.json: lacks \['IRMA'\]"):
        real_lesion_maps(root, ClassSet(['OD', 'IRMA']), 1)
    with pytest.raises(ValueError, match=r"no images of grade 2 in split 'val'"):
        real_lesion_maps(root, CS, 2, split='val')
    with pytest.raises(ValueError, match='grade 5 is outside 0-4'):
        real_lesion_maps(root, CS, 5)


# ----------------------------------------------------------------------------------------
# Composites on healthy images
def _collect(root, seed, **kw):
    maps = {g: real_lesion_maps(root, CS, g, seed=seed) for g in range(1, 5)}
    return list(place_on_healthy(root, maps, CS, seed=seed, **kw))


def test_place_on_healthy_pairs_every_healthy_image_with_a_grade_and_a_map(root):
    healthy = _healthy(root)
    out = _collect(root, seed=0)
    assert [s.healthy for s in out] == healthy
    assert sorted(s.grade for s in out) == [1, 2, 3, 4]  # 4 images, 4 grades: one each
    for s in out:
        assert s.name == f'{s.healthy}_g{s.grade}'
        np.testing.assert_array_equal(s.image, read_image(image_path(root, s.healthy)))
        real = _label(root, s.healthy)
        np.testing.assert_array_equal(s.label == BG, real == BG)
        np.testing.assert_array_equal(s.label == OD, real == OD)
        np.testing.assert_array_equal(s.mask, s.label != real)
        assert s.mask.any()
        # The placed lesions are those of the dealt map (mirrored where its disc differs).
        maps = real_lesion_maps(root, CS, s.grade, seed=0)
        expected = place_lesions(real, maps[s.lesion_index], CS)
        np.testing.assert_array_equal(s.label, expected.label)
        assert s.mirrored == expected.mirrored
    twice = _collect(root, seed=0, per_image=2)
    assert len(twice) == 8
    assert [s.name for s in twice] == [f'{h}_{k}_g{s.grade}' for s, (h, k) in
                                       zip(twice, [(h, k) for h in healthy for k in (0, 1)])]


def test_place_on_healthy_is_seeded(root):
    def key(samples):
        return [(s.name, s.lesion_index, s.label.tobytes(), s.mask.tobytes())
                for s in samples]
    a, b = _collect(root, seed=3), _collect(root, seed=3)
    assert key(a) == key(b)
    others = {tuple(key(_collect(root, seed=s))) for s in (4, 5, 6)}
    assert any(o != tuple(key(a)) for o in others)


def test_place_on_healthy_with_sampled_maps_and_grades(root):
    maps = sampled_lesion_maps([(2, _synthetic(disc_x=50, blobs=[(HE, 42, 31, 2)]))], CS)
    out = list(place_on_healthy(root, maps, seed=0))  # classes from the root
    assert len(out) == 4 and {s.grade for s in out} == {2}
    for s in out:
        real = _label(root, s.healthy)
        xs = np.nonzero(s.label == HE)[1]
        od = np.nonzero(real == OD)[1].mean()
        assert s.mirrored == (disc_side(real, CS) == 'left')
        assert xs.size and abs(xs.mean() - od) < 20  # beside the real disc either way


def test_place_on_healthy_errors_name_what_is_wrong(root, tmp_path):
    maps = {1: [_synthetic(disc_x=50, blobs=[(MA, 40, 30, 1)])]}
    sick = tmp_path / 'sick'
    write_phantom_dataset(sick, num=4, size=64, seed=0, classes=CS,
                          distribution=[0, 1, 1, 1, 1], progress=False)
    with pytest.raises(ValueError, match=r'meta\.csv: no grade-0 \(healthy\) images'):
        next(place_on_healthy(sick, maps, CS))
    with pytest.raises(ValueError, match='no lesion maps of grade 3'):
        next(place_on_healthy(root, maps, CS, grades=[1, 3]))
    with pytest.raises(ValueError, match='per_image must be at least 1'):
        next(place_on_healthy(root, maps, CS, per_image=0))
    with pytest.raises(ValueError, match=r"classes\.json: lacks \['IRMA'\]"):
        next(place_on_healthy(root, maps, ClassSet(['OD', 'IRMA'])))
    # A healthy image whose label has no field of view.
    broken = tmp_path / 'broken'
    shutil.copytree(root, broken)
    first = _healthy(broken)[0]
    path = label_path(broken, first)
    cv2.imwrite(str(path), np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match=f'{path}: the label has no field of view'):
        list(place_on_healthy(broken, maps, CS))
    # ... or no disc.
    real = _label(root, first)
    cv2.imwrite(str(path), np.where(real == OD, RET, real).astype(np.uint8))
    with pytest.raises(ValueError, match=f'{path} with lesion map 0 of grade 1: real '
                                         f'label map: no optic disc'):
        list(place_on_healthy(broken, maps, CS))
