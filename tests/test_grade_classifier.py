"""The lesion-load grade classifier with a feature that is constant in training."""
import numpy as np
import pytest

from fundus_plugins.evaluation.label_stats import GradeClassifier, MapSet

GRADES = np.arange(5)


def lesion_maps(per_grade: int, seed: int, with_od: bool) -> MapSet:
    """Features of maps with an OD and three lesion classes, lesion load rising with the
    grade; the OD load is 0 in every map (a source without disc masks) unless
    ``with_od``."""
    rng = np.random.default_rng(seed)
    grades = np.repeat(GRADES, per_grade)
    n, k = len(grades), 4
    fraction, comps = np.zeros((n, k)), np.zeros((n, k))
    for j in range(1, k):
        load = grades * 0.002 * j * rng.lognormal(0, 0.3, n)
        fraction[:, j] = np.where(grades > 0, load, 0)
        comps[:, j] = np.where(grades > 0, rng.poisson(3 * grades * j), 0)
    if with_od:
        fraction[:, 0] = 0.02 * rng.lognormal(0, 0.1, n)
        comps[:, 0] = 1
    return MapSet(np.zeros((n, 1, 1), np.uint8), grades, fraction, comps)


@pytest.mark.parametrize('weight_decay', [1e-3, 0.0])
def test_feature_constant_in_training_leaves_predictions_alone(weight_decay):
    train = lesion_maps(20, seed=0, with_od=False)          # OD features constant
    without_od = lesion_maps(20, seed=1, with_od=False)
    with_od = lesion_maps(20, seed=1, with_od=True)         # same maps, now with a disc
    clf = GradeClassifier(weight_decay=weight_decay).fit(train)
    od_cols = [0, 4]  # log pixel fraction and log count of OD
    assert np.allclose(clf.std[od_cols], clf.min_std)       # 0 floored to 0.1
    scores = clf.scores(with_od)
    assert scores.shape == (100, 5) and np.isfinite(scores).all()
    assert np.abs(scores).max() < 100
    # The disc was never seen in training: the grades are those of the same maps without
    # it, and they follow the lesion load.
    assert np.allclose(scores, clf.scores(without_od))
    pred = clf.predict(with_od)
    assert np.array_equal(pred, clf.predict(without_od))
    assert np.mean(pred == with_od.grades) >= 0.8


def test_without_floor_and_clip_the_constant_feature_decides():
    """The failure the floor and the clip prevent (weights that weight decay does not
    shrink to 0 meet a feature divided by ~0)."""
    train = lesion_maps(20, seed=0, with_od=False)
    clf = GradeClassifier(weight_decay=0.0, min_std=1e-6, clip=False).fit(train)
    scores = clf.scores(lesion_maps(20, seed=1, with_od=True))
    assert np.abs(scores).max() > 1e4
    assert np.mean(scores.argmax(1) == np.repeat(GRADES, 20)) < 0.5


def test_floor_keeps_varying_features_and_checks_its_argument():
    train = lesion_maps(20, seed=0, with_od=True)
    clf = GradeClassifier().fit(train)
    raw = train.features().std(0)
    assert (raw[[1, 2, 3]] > 0.1).all()
    assert np.allclose(clf.std[[1, 2, 3]], raw[[1, 2, 3]])   # untouched above the floor
    with pytest.raises(ValueError, match='min_std must be > 0'):
        GradeClassifier(min_std=0)
    with pytest.raises(RuntimeError, match='before fit'):
        GradeClassifier().scores(train)
