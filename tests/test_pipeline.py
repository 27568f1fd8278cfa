"""tools/run_pipeline.py: stage skipping, re-running on change, resumption, the grade
step, and a smoke run of the whole pipeline on a micro config."""
import csv
import json
import sys

import pytest
from mmengine.config import Config

from fundus_plugins.datasets import read_meta
from fundus_plugins.pipeline import PipelineRunner, Stage, predict_grades

from conftest import REPO

sys.path.insert(0, str(REPO / 'tools'))
import run_pipeline  # noqa: E402


def _toy_stages(calls, fail_in=None):
    def make(name):
        def run(ctx):
            calls.append(name)
            if fail_in == name:
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C
            ctx.path(name).mkdir(exist_ok=True)
            (ctx.path(name) / 'out.txt').write_text(str(ctx.section.get('value')))
            return {'value': ctx.section.get('value')}
        return Stage(name, f'toy {name}', [name], run, lambda cfg: 1)
    return [make(n) for n in ('a', 'b', 'c')]


def _cfg(**values):
    return Config(dict(a=dict(value=values.get('a', 1)), b=dict(value=values.get('b', 1)),
                       c=dict(value=values.get('c', 1))))


def test_done_stages_are_skipped_and_a_change_reruns_it_and_what_follows(tmp_path):
    calls = []
    PipelineRunner(_cfg(), _toy_stages(calls), tmp_path, log=lambda s: None).run()
    assert calls == ['a', 'b', 'c']
    calls.clear()
    PipelineRunner(_cfg(), _toy_stages(calls), tmp_path, log=lambda s: None).run()
    assert calls == []  # everything done with these settings
    PipelineRunner(_cfg(b=2), _toy_stages(calls), tmp_path, log=lambda s: None).run()
    assert calls == ['b', 'c'] and (tmp_path / 'b' / 'out.txt').read_text() == '2'
    calls.clear()
    PipelineRunner(_cfg(b=2), _toy_stages(calls), tmp_path, force=['c'],
                   log=lambda s: None).run()
    assert calls == ['c']
    calls.clear()
    # A stage whose outputs were removed runs again (and what follows).
    import shutil
    shutil.rmtree(tmp_path / 'b')
    PipelineRunner(_cfg(b=2), _toy_stages(calls), tmp_path, log=lambda s: None).run()
    assert calls == ['b', 'c']
    with pytest.raises(KeyError, match="unknown stage"):
        PipelineRunner(_cfg(), _toy_stages(calls), tmp_path, force=['x'])


def test_an_interrupted_stage_resumes_and_keeps_its_outputs(tmp_path):
    calls = []
    with pytest.raises(KeyboardInterrupt):
        PipelineRunner(_cfg(), _toy_stages(calls, fail_in='b'), tmp_path,
                       log=lambda s: None).run()
    state = json.loads((tmp_path / '.stages' / 'b.json').read_text())
    assert state['status'] == 'running'
    (tmp_path / 'b').mkdir()
    (tmp_path / 'b' / 'checkpoint').write_text('partial work')
    calls.clear()
    log = []
    PipelineRunner(_cfg(), _toy_stages(calls), tmp_path, log=log.append).run()
    assert calls == ['b', 'c']  # a skipped, b resumed
    assert (tmp_path / 'b' / 'checkpoint').is_file()  # not wiped on resume
    assert any('resuming' in line for line in log)


def test_grade_step_predicts_the_hidden_grades(tmp_path):
    import dataclasses

    from fundus_plugins.datasets import write_meta
    from fundus_plugins.phantom import write_phantom_dataset
    src = tmp_path / 'data'
    write_phantom_dataset(src, num=60, size=64, seed=4, progress=False)
    rows = read_meta(src)
    hidden = {r.name: r.grade for r in [r for r in rows if r.split == 'train'][:8]}
    write_meta(src, [dataclasses.replace(r, grade=None, grade_source='ungraded')
                     if r.name in hidden else r for r in rows])
    with open(src / 'true_grades.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['name', 'grade'])
        w.writerows(hidden.items())
    res = predict_grades(src, tmp_path / 'real', size=64)
    out = read_meta(tmp_path / 'real')
    assert res['ungraded'] == 8 and sum(res['predicted_per_grade'].values()) == 8
    assert all(r.grade is not None for r in out)
    assert {r.grade_source for r in out if r.name in hidden} == {'predicted'}
    assert res['hidden_grade_accuracy'] >= 0.5  # phantom grades follow lesion load
    assert (tmp_path / 'real' / 'images').is_symlink()


MICRO = """
_base_ = ['{repo}/configs/pipeline/demo.py']
work_dir = '{work}'
image_size = 64
data = dict(num=30, size=64)
grades = dict(size=32)
labels = dict(max_iters=2, num_per_grade=6)
images = dict(max_iters=2)
segmentation = dict(fractions=[0, 0.5], max_epochs=1)
"""


def test_whole_pipeline_on_a_micro_config(tmp_path, capsys):
    config = tmp_path / 'micro.py'
    work = tmp_path / 'work'
    config.write_text(MICRO.format(repo=REPO, work=work))
    assert run_pipeline.main([str(config)]) == 0
    report = (work / 'report.md').read_text()
    for part in ('report/figure1.png', 'Grade accuracy', 'Label consistency',
                 'FID / KID: not computed', '| 50 % | 24 + 24 | 1 |', '| segmentation |'):
        assert part in report, part
    assert (work / 'report' / 'figure1.png').is_file()
    assert len(read_meta(work / 'synthetic')) == 30
    capsys.readouterr()
    # Everything done: a second run skips all six stages.
    assert run_pipeline.main([str(config)]) == 0
    assert capsys.readouterr().out.count('skipped') == 6
