"""Quality gates (fundus_plugins/pipeline/gates.py): the checks on hand-made figures, and
their pass, warn and stop paths on a micro pipeline."""
import json
import sys

import pytest

from fundus_plugins.datasets import read_meta
from fundus_plugins.pipeline.gates import (GateFailed, Check, check_section, enforce,
                                           image_checks, label_checks)

from conftest import REPO
from test_pipeline import MICRO

sys.path.insert(0, str(REPO / 'tools'))
import run_pipeline  # noqa: E402


def _analysis(acc=0.6, ceiling=0.8, loads=None, one=0.95, diversity=(0.08, 0.1)):
    """The parts of label_stats.compare's result that the gates read."""
    loads = loads or {0: (0.0, 0.0), 1: (0.001, 0.001), 2: (0.01, 0.015), 3: (0.03, 0.04),
                      4: (0.05, 0.05)}
    lesion = {'OD': {'pixel_fraction': {str(g): {'generated_mean': 0.02, 'real_mean': 0.02}
                                        for g in range(5)}},
              'HE': {'pixel_fraction': {str(g): {'generated_mean': gen, 'real_mean': real}
                                        for g, (gen, real) in loads.items()}}}
    return {'grade_accuracy': {'generated': {'all': acc}, 'real_test_ceiling': {'all': ceiling},
                               'chance': 0.2},
            'lesion_load': lesion,
            'od_one_disc': {'generated': {'all': one}, 'real': {'all': 1.0}},
            'diversity': {'generated': {str(g): diversity[0] for g in range(5)},
                          'real': {str(g): diversity[1] for g in range(5)}}}


def test_label_checks_by_hand():
    t = check_section({})['labels']
    checks = {c.gate: c for c in label_checks(_analysis(), t, max_iters=600)}
    # 0.6 / 0.8 = 0.75 < 0.8
    assert checks['labels.grade_accuracy'].passed is False
    assert '0.75 of the real ceiling' in checks['labels.grade_accuracy'].figure
    assert 'labels.max_iters, now 600' in checks['labels.grade_accuracy'].advice
    # Grades 0 and 1: the real load is below min_load (0.2 % of the field of view).
    assert checks['labels.lesion_load.grade0'].passed is None
    assert checks['labels.lesion_load.grade1'].passed is None
    assert checks['labels.lesion_load.grade2'].passed is True  # 0.67x (the disc left out)
    assert checks['labels.lesion_load.grade3'].passed is True
    assert checks['labels.one_disc'].passed is True
    low = {c.gate: c for c in label_checks(_analysis(loads={2: (0.001, 0.015)}), t)}
    assert low['labels.lesion_load.grade2'].passed is False
    assert 'too little' in low['labels.lesion_load.grade2'].advice
    high = {c.gate: c for c in label_checks(_analysis(acc=0.8, one=0.5), t)}
    assert high['labels.grade_accuracy'].passed is True and high['labels.one_disc'].passed is False
    # Diversity: 0.08 / 0.1 = 0.8 >= 0.7; one layout per grade (0.05 / 0.1) fails.
    assert checks['labels.diversity'].passed is True
    assert 'grade 4 0.80' in checks['labels.diversity'].figure
    same = {c.gate: c for c in label_checks(_analysis(diversity=(0.05, 0.1)), t)}
    assert same['labels.diversity'].passed is False
    assert 'mode_seeking_weight' in same['labels.diversity'].advice


def _quality(syn, real):
    return {'label_consistency': {'synthetic': {c: {'f1': v} for c, v in syn.items()},
                                  'real_test': {c: {'f1': v} for c, v in real.items()}},
            'image': {'fid': None, 'note': 'not computed'}}


def test_image_checks_by_hand():
    t = check_section({'images': {'fid': 50}})['images']
    q = _quality({'OD': 0.9, 'MA': 0.0, 'HE': 0.2, 'EX': float('nan')},
                 {'OD': 0.95, 'MA': 0.1, 'HE': 0.8, 'EX': 0.9})
    checks = {c.gate: c for c in image_checks(q, 'full', t, ['OD', 'MA', 'HE', 'EX', 'SE'],
                                              max_iters=250)}
    assert checks['images.full.label_consistency.OD'].passed is True
    # MA: the ceiling 0.1 is below min_ceiling 0.3: not gated, and said so.
    assert checks['images.full.label_consistency.MA'].passed is None
    assert 'cannot judge' in checks['images.full.label_consistency.MA'].figure
    assert checks['images.full.label_consistency.HE'].passed is False  # 0.25 of 0.8
    assert 'images.max_iters, now 250' in checks['images.full.label_consistency.HE'].advice
    assert checks['images.full.label_consistency.EX'].passed is False  # never predicted
    assert checks['images.full.label_consistency.SE'].passed is None  # no score at all
    assert checks['images.full.fid'].passed is None  # asked for, not measured
    inpaint = image_checks(q, 'inpaint', t, ['HE'])
    assert inpaint[0].gate == 'images.inpaint.label_consistency.HE'
    assert 'images.inpaint.max_iters' in inpaint[0].advice


def test_the_gates_section_is_checked():
    assert check_section(None)['on_fail'] == 'warn'
    assert check_section({'labels': {'one_disc': 0.5}})['labels']['grade_accuracy'] == 0.8
    with pytest.raises(KeyError, match=r"gates.label: unknown key; the gates section takes"):
        check_section({'label': {}})
    with pytest.raises(KeyError, match=r'gates.images.consistency: unknown key'):
        check_section({'images': {'consistency': 0.5}})
    with pytest.raises(ValueError, match=r"gates.on_fail: 'halt'; expected one of"):
        check_section({'on_fail': 'halt'})
    with pytest.raises(ValueError, match='lesion_load'):
        check_section({'labels': {'lesion_load': (1.5, 2.0)}})


def test_enforce_warns_or_stops_naming_the_gate():
    checks = [Check('labels.grade_accuracy', 'grade accuracy 31.0 %, 0.34 of the ceiling',
                    '>= 0.80 of the ceiling', False, 'train the label ACGAN longer'),
              Check('labels.one_disc', 'one disc 99 %', '>= 90.0 %', True),
              Check('labels.lesion_load.grade0', 'below min_load', '', None)]
    said = []
    enforce(checks, 'warn', 'labels', said.append)
    assert said == ['warning: gate labels.grade_accuracy FAILED: grade accuracy 31.0 %, 0.34 '
                    'of the ceiling (needs >= 0.80 of the ceiling); train the label ACGAN '
                    'longer']
    with pytest.raises(GateFailed) as err:
        enforce(checks, 'stop', 'labels', said.append)
    msg = str(err.value)
    assert msg.startswith('stopped after the labels stage: 1 quality gate(s) failed')
    assert 'labels.grade_accuracy' in msg and '0.34' in msg and '>= 0.80' in msg
    assert 'train the label ACGAN longer' in msg and 'labels.one_disc' not in msg
    enforce(checks[1:], 'stop', 'labels')  # nothing failed: nothing happens


def test_gates_stop_warn_and_pass_on_a_micro_pipeline(tmp_path, capsys):
    """stop: the run ends after the labels stage with the message, exit 3, before any
    image or segmentation work; warn (same work dir): it goes on, the labels stage is
    not redone, and the report opens with verdicts and the failed gate; then a failing
    image gate with 'stop' ends the run before the segmentation stage's runs."""
    config = tmp_path / 'micro.py'
    work = tmp_path / 'work'
    base = MICRO.format(repo=REPO, work=work)
    impossible = "gates = dict(on_fail='{}', labels=dict(grade_accuracy=1e9))\n"
    config.write_text(base + impossible.format('stop'))
    assert run_pipeline.main([str(config)]) == 3
    err = capsys.readouterr().err
    assert 'stopped after the labels stage' in err and 'labels.grade_accuracy FAILED' in err
    assert 'needs >= 1000000000.00 of the ceiling' in err
    assert not (work / '.stages' / 'images.json').exists()
    assert not (work / 'segmentation').exists()
    gates = json.loads((work / 'gates.json').read_text())
    assert any(c['gate'] == 'labels.grade_accuracy' and c['passed'] is False
               for c in gates['labels'])

    config.write_text(base + impossible.format('warn'))
    assert run_pipeline.main([str(config)]) == 0
    out = capsys.readouterr().out
    assert 'warning: gate labels.grade_accuracy FAILED' in out
    assert '[stage 3/7: labels] done before' in out  # the thresholds are not its settings
    report = (work / 'report.md').read_text()
    assert report.index('## Verdicts') < report.index('## Quality gates') < \
        report.index('## Data')
    assert '| labels.grade_accuracy |' in report and '**failed**' in report
    assert '50 % synthetic: ' in report
    assert (work / 'gates' / 'real_only' / 'p00_s0' / 'metrics.json').is_file()
    # The segmentation stage took the gates stage's real-only run as it was.
    assert (work / 'segmentation' / 'p00_s0' / 'metrics.json').read_text() == \
        (work / 'gates' / 'real_only' / 'p00_s0' / 'metrics.json').read_text()

    # An image gate that fails, with 'stop': the gates stage is done (its measures are
    # kept), the check is applied afresh and ends the run before segmentation.
    quality = work / 'gates' / 'quality_full.json'
    q = json.loads(quality.read_text())
    for code, scores in q['label_consistency']['real_test'].items():
        scores['f1'] = 0.9 if code == 'EX' else 0.0  # only EX can be judged
    q['label_consistency']['synthetic']['EX']['f1'] = 0.1
    quality.write_text(json.dumps(q))
    config.write_text(base + "gates = dict(on_fail='stop', labels=dict(grade_accuracy=0, "
                      "one_disc=0, lesion_load=(0, 1e9), diversity=0))\n")
    assert run_pipeline.main([str(config), '--force', 'segmentation']) == 3
    captured = capsys.readouterr()
    assert 'stopped after the gates stage' in captured.err
    assert 'images.full.label_consistency.EX FAILED: EX: F1 0.100 on synthetic images' \
        in captured.err
    assert '[stage 5/7: gates] done before' in captured.out
    assert 'segmentation] segmentation at' not in captured.out
    assert len(read_meta(work / 'synthetic')) == 30
    images = json.loads((work / 'gates.json').read_text())['images']
    assert [c['gate'] for c in images if c['passed'] is False] == \
        ['images.full.label_consistency.EX']
