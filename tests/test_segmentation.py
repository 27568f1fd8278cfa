"""The mmseg side: mixed real + synthetic data, the two metrics, the configs."""
import dataclasses

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData

from fundus_plugins.config import build_model, load_config
from fundus_plugins.datasets import read_meta, write_meta
from fundus_plugins.segmentation import (FundusSegDataset, LesionImageMetric,
                                         LesionPixelMetric, PaperLesionMetric,
                                         synthetic_count)

from conftest import REPO


def _seg(root, **kw):
    with DefaultScope.overwrite_default_scope('mmseg'):
        return FundusSegDataset(str(root), pipeline=[], **kw)


def test_synthetic_counts_of_the_paper():
    assert [synthetic_count(738, p) for p in (0, 0.25, 0.5, 0.75)] == [0, 246, 738, 2214]
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
        synthetic_count(10, 1.0)


def test_mixing_draws_the_right_count_by_seed(phantom_root, synthetic_root):
    real = _seg(phantom_root)
    assert len(real) == 16 and real.num_synthetic == 0
    mixed = _seg(phantom_root, synthetic_root=str(synthetic_root), synthetic_fraction=0.5,
                 synthetic_seed=1)
    assert len(mixed) == 32 and mixed.num_synthetic == 16

    def picked(seed):
        ds = _seg(phantom_root, synthetic_root=str(synthetic_root), synthetic_fraction=0.25,
                  synthetic_seed=seed)
        return [ds.get_data_info(i)['name'] for i in range(len(ds))
                if ds.get_data_info(i)['synthetic']]
    assert len(picked(0)) == round(16 * 0.25 / 0.75) == 5
    assert picked(0) == picked(0) and picked(0) != picked(1)


def test_a_fraction_the_folder_cannot_supply_is_an_error(phantom_root, synthetic_root):
    with pytest.raises(ValueError, match=r'needs 48 synthetic images; .* has 30'):
        _seg(phantom_root, synthetic_root=str(synthetic_root), synthetic_fraction=0.75)
    with pytest.raises(ValueError, match='synthetic_root is not set'):
        _seg(phantom_root, synthetic_fraction=0.5)


def test_the_test_split_stays_real(phantom_root, synthetic_root, tmp_path):
    with pytest.raises(ValueError, match='training split only'):
        _seg(phantom_root, split='test', synthetic_root=str(synthetic_root),
             synthetic_fraction=0.5)
    test = _seg(phantom_root, split='test')
    assert len(test) == 4 and test.num_synthetic == 0
    # A real root whose test rows claim to be synthetic is refused.
    import shutil
    bad = tmp_path / 'bad'
    shutil.copytree(phantom_root, bad)
    write_meta(bad, [dataclasses.replace(r, grade_source='synthetic') for r in read_meta(bad)])
    with pytest.raises(ValueError, match='must be real data only'):
        _seg(bad, split='test')


def test_real_data_cannot_enter_as_synthetic(phantom_root, synthetic_root, tmp_path):
    """The paths to leakage: the real root itself, a copy of it marked synthetic, rows not
    marked synthetic."""
    import shutil
    with pytest.raises(ValueError, match='is the real data_root'):
        _seg(phantom_root, synthetic_root=str(phantom_root), synthetic_fraction=0.25)
    copy = tmp_path / 'copy'
    shutil.copytree(phantom_root, copy)
    write_meta(copy, [dataclasses.replace(r, grade_source='synthetic', split='train')
                      for r in read_meta(copy)])
    with pytest.raises(ValueError, match=r"shares 20 image name\(s\) with the real data_root"):
        _seg(phantom_root, synthetic_root=str(copy), synthetic_fraction=0.25)
    mixed = tmp_path / 'mixed'
    shutil.copytree(synthetic_root, mixed)
    rows = read_meta(mixed)
    write_meta(mixed, [dataclasses.replace(rows[0], grade_source='annotated')] + rows[1:])
    with pytest.raises(ValueError, match=rf"1 row\(s\) are not grade_source=synthetic "
                                         rf"\(e.g. '{rows[0].name}'\)"):
        _seg(phantom_root, synthetic_root=str(mixed), synthetic_fraction=0.25)


def _sample(truth, pred, annotated=None, logits=None):
    s = SegDataSample()
    s.gt_sem_seg = PixelData(data=torch.as_tensor(truth)[None])
    s.pred_sem_seg = PixelData(data=torch.as_tensor(pred)[None])
    if logits is not None:
        s.seg_logits = PixelData(data=torch.as_tensor(logits))
    if annotated is not None:
        s.set_metainfo(dict(annotated=annotated))
    return s.to_dict()


# Classes BG, RET, OD, EX. Image 1: OD found half; EX: 2 true, 1 hit, 1 false positive.
# Image 2: no OD either side (a correct "absent"); EX: 2 predicted, none true.
IMG1 = (np.array([[2, 2, 3, 3], [1, 1, 1, 0]]), np.array([[2, 1, 3, 1], [3, 1, 1, 0]]))
IMG2 = (np.array([[1, 1, 1, 1], [1, 1, 1, 0]]), np.array([[1, 1, 3, 3], [1, 1, 1, 0]]))


def _run(metric, samples=None, classes=('BG', 'RET', 'OD', 'EX')):
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, samples or [_sample(*IMG1), _sample(*IMG2)])
    return metric.compute_metrics(metric.results)


def test_pixel_metric_pools_pixels_and_reports_the_disc_on_its_own():
    m = _run(LesionPixelMetric())
    # OD: tp 1, fp 0, fn 1. EX: tp 1, fp 1 + 2, fn 1.
    assert m['pixel_precision/OD'] == 100 and m['pixel_recall/OD'] == 50
    assert m['pixel_f1/OD'] == pytest.approx(66.67)
    assert m['pixel_precision/EX'] == 25 and m['pixel_recall/EX'] == 50
    assert m['pixel_f1/EX'] == pytest.approx(33.33)
    assert m['pixel_iou/EX'] == 20
    assert m['pixel_lesion_mean_f1'] == pytest.approx(33.33)  # EX only: OD is separate
    assert m['pixel_images/OD'] == 2 and 'pixel_f1/RET' not in m
    assert 'mIoU' in m and m['aAcc'] == pytest.approx(100 * 11 / 16, abs=0.01)
    # With the disc among the lesions, as before the split: the mean of OD and EX.
    m = _run(LesionPixelMetric(separate_classes=()))
    assert m['pixel_lesion_mean_f1'] == pytest.approx(50.0)


def test_image_metric_averages_images_with_the_empty_rule():
    m = _run(LesionImageMetric())
    # OD only counts image 1 (image 2 has neither truth nor prediction).
    assert m['image_precision/OD'] == 100 and m['image_recall/OD'] == 50
    assert m['image_images/OD'] == 1 and m['image_images/EX'] == 2
    # EX: image 1 P 0.5 R 0.5 F1 0.5; image 2 P 0 (prediction, no truth), R undefined, F1 0.
    assert m['image_precision/EX'] == 25 and m['image_recall/EX'] == 50
    assert m['image_f1/EX'] == 25
    assert m['image_lesion_mean_f1'] == 25
    assert m['image_count'] == 2


def test_metrics_score_a_class_only_where_the_source_annotates_it():
    # Image 1's source does not annotate OD (FGADR): its disc prediction and truth are
    # not scored; image 2 annotates everything.
    samples = [_sample(*IMG1, annotated=('EX',)), _sample(*IMG2, annotated=('OD', 'EX'))]
    pix = _run(LesionPixelMetric(), samples)
    assert pix['pixel_images/OD'] == 1 and np.isnan(pix['pixel_f1/OD'])
    assert pix['pixel_f1/EX'] == pytest.approx(33.33)  # EX scored on both
    img = _run(LesionImageMetric(), [_sample(*IMG1, annotated=('EX',)),
                                     _sample(*IMG2, annotated=('OD', 'EX'))])
    assert img['image_images/OD'] == 0 and np.isnan(img['image_f1/OD'])


# Son et al.'s measure, worked out by hand. Classes BG 0, RET 1, OD 2, MA 3, EX 4; the
# lesions MA and EX are pooled, OD is separate.
PAPER_CLASSES = ('BG', 'RET', 'OD', 'MA', 'EX')
# A: (MA,MA) TP, (MA,RET) FN, (EX,EX) TP, (EX,MA) counts nowhere, (RET,EX) FP:
#    tp 2, fp 1, fn 1 -> P = R = F1 = 2/3. With the class-0 bug MA is "no lesion":
#    tp 1 (EX), fp 1, fn 1 (EX predicted MA) -> 1/2 each.
PA = (np.array([[3, 3, 4, 4], [1, 1, 2, 0]]), np.array([[3, 1, 4, 3], [4, 1, 2, 0]]))
# B: no lesion in truth or prediction -> 1, 1, 1 (bug: the same).
PB = (np.array([[1, 1, 1, 1], [1, 1, 2, 0]]), np.array([[1, 1, 1, 1], [1, 1, 2, 0]]))
# C: one FP (MA) and one FN (EX), no TP -> 0, 0, 0 (bug: fn 1, no TP -> 0, 0, 0).
PC = (np.array([[1, 4, 1, 1], [1, 1, 1, 0]]), np.array([[3, 1, 1, 1], [1, 1, 1, 0]]))
# D: MA tp 1, fn 1 -> P 1, R 1/2, F1 2/3 (bug: no lesion left -> 1, 1, 1).
PD = (np.array([[3, 3, 1, 1], [1, 1, 1, 0]]), np.array([[3, 1, 1, 1], [1, 1, 1, 0]]))


@pytest.mark.parametrize('bug, expect', [
    (False, ((2 / 3 + 1 + 0 + 1) / 4, (2 / 3 + 1 + 0 + .5) / 4, (2 / 3 + 1 + 0 + 2 / 3) / 4)),
    (True, ((.5 + 1 + 0 + 1) / 4,) * 3)])
def test_paper_metric_by_hand(bug, expect):
    m = _run(PaperLesionMetric(threshold=None, class0_bug=bug),
             [_sample(*x) for x in (PA, PB, PC, PD)], PAPER_CLASSES)
    for key, value in zip(('paper_precision', 'paper_recall', 'paper_f1'), expect):
        assert m[key] == pytest.approx(100 * value, abs=0.01), key
    assert m['paper_images'] == 4 and m['paper_class0_bug'] == int(bug)
    # The disc on its own, by the same rules: found on A and B, absent on C and D (1 each).
    assert m['paper_f1/OD'] == 100 and m['paper_images/OD'] == 4
    # EX alone (MA is then no lesion): A tp 1, fp 1, fn 1 (its EX predicted MA) -> 1/2;
    # B 1; C fn 1 -> 0; D nothing -> 1.
    assert m['paper_f1/EX'] == pytest.approx(100 * (.5 + 1 + 0 + 1) / 4, abs=0.01)


def _paper(samples, classes, **kw):
    metric = PaperLesionMetric(threshold=None, **kw)
    m = _run(metric, samples, classes)
    return metric, [m[f'paper_{k}'] for k in ('precision', 'recall', 'f1')]


def test_class0_bug_loses_the_first_scored_class_in_the_papers_order_not_the_configs():
    # Classes listed EX, MA, HE (BG 0, RET 1, EX 2, MA 3, HE 4): the paper's code loses MA
    # (its order is MA, HE, EX), not EX, the first in the config.
    classes = ('BG', 'RET', 'EX', 'MA', 'HE')
    # R1: (EX,EX) TP, (EX,RET) FN, (MA,MA) TP, (HE,RET) FN, (RET,HE) FP.
    #   pooled EX, MA, HE: tp 2, fp 1, fn 2 -> P 2/3, R 1/2, F1 4/7;
    #   MA lost (counts as no lesion): tp 1, fp 1, fn 2 -> P 1/2, R 1/3, F1 2/5.
    r1 = (np.array([[2, 2, 3, 4], [1, 1, 1, 0]]), np.array([[2, 1, 3, 1], [1, 4, 1, 0]]))
    # R2: MA only, half found: tp 1, fn 1 -> 1, 1/2, 2/3; MA lost: nothing -> 1, 1, 1.
    r2 = (np.array([[3, 3, 1, 1], [1, 1, 1, 0]]), np.array([[3, 1, 1, 1], [1, 1, 1, 0]]))
    samples = [_sample(*r1), _sample(*r2)]
    metric, bug = _paper(samples, classes, class0_bug=True)
    assert metric.dropped_class() == 'MA'
    assert bug == pytest.approx([100 * (1 / 2 + 1) / 2, 100 * (1 / 3 + 1) / 2,
                                 100 * (2 / 5 + 1) / 2], abs=0.01)
    _, plain = _paper(samples, classes)
    assert plain == pytest.approx([100 * (2 / 3 + 1) / 2, 100 * (1 / 2 + 1 / 2) / 2,
                                   100 * (4 / 7 + 2 / 3) / 2], abs=0.01)
    # The same images with the classes in the paper's order give the same numbers.
    order = {0: 0, 1: 1, 2: 4, 3: 2, 4: 3}  # EX, MA, HE -> MA, HE, EX
    moved = [_sample(np.vectorize(order.get)(t), np.vectorize(order.get)(p))
             for t, p in (r1, r2)]
    assert _paper(moved, ('BG', 'RET', 'MA', 'HE', 'EX'), class0_bug=True)[1] == \
        pytest.approx(bug, abs=0.01)


@pytest.mark.parametrize('classes', [('BG', 'RET', 'OD', 'EX'), ('BG', 'RET', 'EX', 'OD')])
def test_class0_bug_with_the_disc_pooled_loses_the_disc(classes):
    # OD + EX, in either config order. IMG1: OD tp 1, fn 1; EX tp 1, fp 1, fn 1. IMG2: EX
    # fp 2, no OD. The disc pooled with the lesions (no separate classes): without the
    # bug IMG1 tp 2, fp 1, fn 2 -> 2/3, 1/2, 4/7 and IMG2 0. With it the paper's code
    # loses OD (its first pooled class, whatever the config's order): EX alone, IMG1 1/2
    # each, IMG2 0 -> 25 each.
    swap = classes[2] == 'EX'
    imgs = [tuple(np.where(a == 2, 3, np.where(a == 3, 2, a)) if swap else a for a in img)
            for img in (IMG1, IMG2)]
    samples = [_sample(*img) for img in imgs]
    _, pooled = _paper(samples, classes, separate_classes=())
    assert pooled == pytest.approx([100 / 3, 25, 100 * 2 / 7], abs=0.01)
    metric, bug = _paper(samples, classes, separate_classes=(), class0_bug=True)
    assert metric.dropped_class() == 'OD' and not metric.pooled_mask()[classes.index('OD')]
    assert bug == pytest.approx([25, 25, 25], abs=0.01)
    # The disc reported on its own (the default) is not pooled, as in the paper's lesion
    # score: EX alone is pooled and is the class lost, so no image has a lesion left
    # (every image scores 1).
    metric, bug = _paper(samples, classes, class0_bug=True)
    assert metric.dropped_class() == 'EX'
    assert bug == pytest.approx([100, 100, 100], abs=0.01)
    assert _paper(samples, classes)[1] == pytest.approx([25, 25, 25], abs=0.01)


def test_paper_metric_scores_at_a_given_size_with_labels_resized_nearest():
    classes = ('BG', 'RET', 'OD', 'EX')
    # A one-pixel EX at (1, 1) of a 4 x 4 label, missed: at label size tp 0, fn 1 -> 0.
    truth = np.ones((4, 4), np.int64)
    truth[1, 1] = 3
    pred = np.ones((4, 4), np.int64)
    assert _paper([_sample(truth, pred)], classes)[1] == [0, 0, 0]
    # At 2 x 2, nearest-neighbour keeps pixels (0, 0), (0, 2), (2, 0), (2, 2): the lesion
    # is not there, and an image with neither lesion nor prediction scores 1, 1, 1.
    metric, scores = _paper([_sample(truth, pred)], classes, score_size=2)
    assert scores == [100, 100, 100]
    # With logits (constant per class: EX at probability about 0.9 everywhere) the logits
    # are resized and thresholded: at 4 x 4 from a 2 x 2 label with EX at (0, 0) (its
    # top-left 2 x 2 block after resizing): tp 4, fp 12 -> P 1/4, R 1, F1 2/5.
    truth = np.array([[3, 1], [1, 1]])
    logits = np.zeros((4, 2, 2))
    logits[3] = 3.0
    m = _run(PaperLesionMetric(score_size=4), [_sample(truth, np.full((2, 2), 3),
                                                       logits=logits)], classes)
    assert [m['paper_precision'], m['paper_recall'], m['paper_f1']] == \
        pytest.approx([25, 100, 40], abs=0.01)
    assert m['paper_score_size'] == 4
    with pytest.raises(ValueError, match='score_size must be a whole number'):
        PaperLesionMetric(score_size=0)


def test_paper_metric_skips_unannotated_classes_and_thresholds_probabilities():
    # MA predicted where the truth is retina: an FP where the source annotates MA, nothing
    # where it does not.
    img = (np.array([[4, 1, 1, 1], [1, 1, 1, 0]]), np.array([[4, 3, 1, 1], [1, 1, 1, 0]]))
    full = _run(PaperLesionMetric(threshold=None), [_sample(*img)], PAPER_CLASSES)
    assert full['paper_precision'] == 50 and full['paper_recall'] == 100
    part = _run(PaperLesionMetric(threshold=None),
                [_sample(*img, annotated=('OD', 'EX'))], PAPER_CLASSES)
    assert part['paper_f1'] == 100 and part['paper_images/MA'] == 0
    # A lesion counts as predicted only where its probability exceeds 0.5: the argmax MA
    # at 0.4 becomes "no lesion", so only the EX pixel (0.9) is predicted.
    logits = np.full((5, 2, 4), -5.0)
    logits[1] = 0.0                                        # RET elsewhere
    logits[4, 0, 0], logits[1, 0, 0] = 3.0, -1.0           # EX, prob about 0.9
    logits[3, 0, 1], logits[1, 0, 1], logits[0, 0, 1] = 1.0, 0.7, 0.6   # MA 0.4 < 0.5
    probs = torch.as_tensor(logits).softmax(0)
    assert 0.3 < probs[3, 0, 1] < 0.5 and probs[4, 0, 0] > 0.5
    m = _run(PaperLesionMetric(), [_sample(*img, logits=logits)], PAPER_CLASSES)
    assert m['paper_f1'] == 100  # the MA false positive is gone


@pytest.mark.parametrize('name', ['unet_fundus_syn25', 'unet_fundus_syn50',
                                  'unet_fundus_syn75', 'unet_fundus_demo_syn50'])
def test_fraction_configs_inherit_and_fill_the_training_set_only(name):
    cfg = load_config(str(REPO / 'configs' / 'seg' / f'{name}.py'))
    frac = int(name[-2:]) / 100
    train = cfg.train_dataloader.dataset
    assert train.synthetic_fraction == frac and train.synthetic_root == cfg.synthetic_root
    assert 'synthetic_fraction' not in cfg.test_dataloader.dataset
    base = 'unet_fundus_demo' if 'demo' in name else 'unet_fundus_real'
    base_cfg = load_config(str(REPO / 'configs' / 'seg' / f'{base}.py'))
    assert cfg.model == base_cfg.model


@pytest.mark.parametrize('name', ['unet_fundus_demo', 'deeplabv3plus_fundus_demo',
                                  'pspnet_fundus_demo', 'deeplabv3plus_fundus_real',
                                  'pspnet_fundus_real'])
def test_backbone_swaps_build_and_segment(name):
    cfg = load_config(str(REPO / 'configs' / 'seg' / f'{name}.py'),
                      {'lesion_classes': ['OD', 'EX']})
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 64), mode='tensor')
    assert out.shape[1] == 4  # BG, RET, OD, EX
    assert cfg.test_dataloader.dataset.pipeline[1]['size'] == cfg.image_size


def test_class_dice_weighs_small_classes_like_large_ones():
    from fundus_plugins.segmentation import ClassDiceLoss
    target = torch.ones(1, 8, 8, dtype=torch.long)
    target[0, 0, 0] = 2  # one pixel of a small class
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 20
    missed = perfect.clone()
    missed[0, :, 0, 0] = torch.tensor([0., 20., 0.])  # the small class not predicted
    loss = ClassDiceLoss()  # smooth 1: an absent class predicted absent costs nothing
    assert float(loss(perfect, target)) == pytest.approx(0, abs=1e-4)
    # Missing the single pixel of a class costs (1 - 1/2) / 3 (its Dice is 1/2 with
    # smoothing, one class of three), where a Dice pooled over classes would barely move.
    assert float(loss(missed, target)) == pytest.approx(0.5 / 3, abs=0.01)
    target[0, 1, 1] = 255  # ignored pixels do not count
    assert float(loss(perfect, target)) == pytest.approx(0, abs=1e-4)
    assert ClassDiceLoss(loss_name='loss_x').loss_name == 'loss_x'
