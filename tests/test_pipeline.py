"""tools/run_pipeline.py: stage skipping, re-running on change, resumption, the grade
step, and a smoke run of the whole pipeline on a micro config."""
import copy
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
data = dict(num=30, size=64, test_fraction=0.2)
grades = dict(size=32)
labels = dict(max_iters=2, num_per_grade=6)
images = dict(max_iters=2)
segmentation = dict(fractions=[0, 0.5], max_epochs=1)
plan = dict(probe=False)  # the time plan's probe: test_whole_pipeline_on_a_micro_config
"""


def test_whole_pipeline_on_a_micro_config(tmp_path, capsys):
    config = tmp_path / 'micro.py'
    work = tmp_path / 'work'
    config.write_text(MICRO.format(repo=REPO, work=work))
    # The time plan first: it probes, prints every stage, and trains nothing in the
    # work dir (the probe's own folder is gone).
    assert run_pipeline.main([str(config), '--plan']) == 0
    out = capsys.readouterr().out
    assert 'timing probe' in out
    for stage in ('data', 'grades', 'labels', 'images', 'gates', 'segmentation', 'report'):
        assert f'| {stage} |' in out, stage
    assert '| segmentation | 2 U-Net runs' in out and 'one after another' in out
    assert sorted(p.name for p in work.iterdir()) == ['plan.json', 'plan_probe.log']
    # More GPUs re-plan from the same probe (it trains one process per model).
    assert run_pipeline.main([str(config), '--plan', '--cfg-options', 'labels.gpus=2',
                              'segmentation.parallel=2']) == 0
    out = capsys.readouterr().out
    assert 'timing probe' not in out and 'iterations on 2 processes' in out
    assert '2 at a time' in out
    # The run uses that plan (no second probe) for its time left, and the report sets
    # it beside the actual times.
    assert run_pipeline.main([str(config)]) == 0
    out = capsys.readouterr().out
    assert 'timing probe' not in out and 'left in the pipeline (time plan)' in out
    report = (work / 'report.md').read_text()
    for part in ('report/figure1.png', 'Grade accuracy', 'Label consistency',
                 'FID / KID: not computed', '| 50 % | 24 + 24 | 1 |', '| segmentation |',
                 '| actual | actual / estimate |'):
        assert part in report, part
    assert (work / 'report' / 'figure1.png').is_file()
    assert len(read_meta(work / 'synthetic')) == 30
    # Everything done: a second run skips all seven stages.
    assert run_pipeline.main([str(config)]) == 0
    assert capsys.readouterr().out.count('skipped') == 7


MICRO_BOTH = MICRO + """
images = dict(max_iters=2, mode=['full', 'inpaint'], translate_devices=['cpu', 'cpu'],
              inpaint=dict(max_iters=2, cfg_options={{'train_dataloader.batch_size': 2}}))
segmentation = dict(fractions=[0, 0.5], max_epochs=1, protocols=['fixed_epochs'])
"""


def test_pipeline_in_both_image_modes_on_a_micro_config(tmp_path, capsys):
    """images.mode ['full', 'inpaint'] (the demo_inpaint config, micro): the same sampled
    maps give whole synthetic images and lesions painted into the real healthy training
    images, the ablation runs on each (the real-only run once), and the report sets them
    side by side with the inpainting's figure, label consistency and seams. The
    translation is spread over two processes (images.translate_devices)."""
    config = tmp_path / 'micro.py'
    work = tmp_path / 'work'
    config.write_text(MICRO_BOTH.format(repo=REPO, work=work).replace(
        "configs/pipeline/demo.py", "configs/pipeline/demo_inpaint.py"))
    assert run_pipeline.main([str(config)]) == 0
    assert 'translating the sampled label maps on 2 devices (cpu, cpu)' in \
        capsys.readouterr().out
    full, inpainted = read_meta(work / 'synthetic'), read_meta(work / 'synthetic_inpaint')
    assert len(inpainted) == len(full) == 30
    # The same maps, grade for grade.
    assert sorted((r.name, r.grade) for r in full) == \
        sorted((r.name.split('_on_')[0], r.grade) for r in inpainted)
    healthy = {r.name for r in read_meta(work / 'real') if r.grade == 0 and r.split == 'train'}
    assert {n.split('_on_')[1] for n in (r.name for r in inpainted)} <= healthy
    seg_full, seg_inp = work / 'segmentation', work / 'segmentation' / 'inpaint' / 'fixed_epochs'
    assert (seg_inp / 'results.csv').is_file()
    real_only = 'p00_s0/metrics.json'
    assert (seg_inp / real_only).read_text() == (seg_full / real_only).read_text()
    report = (work / 'report.md').read_text()
    for part in ('report/figure1.png', 'report/inpaint_grid.png', 'Images (inpainting)',
                 'Whole-image synthesis beside inpainting', 'seam', 'Label consistency',
                 'report/results_inpaint.png'):
        assert part in report, part
    assert (work / 'report' / 'inpaint_grid.png').is_file()
    seams = json.loads((work / 'report' / 'quality_inpaint.json').read_text())['seams']
    # (a label ACGAN trained for 2 iterations may place no lesion: empty holes count apart)
    assert seams['images'] + seams['empty_holes'] == 30


def test_a_wrong_images_mode_fails_before_anything_runs(tmp_path):
    config = tmp_path / 'micro.py'
    work = tmp_path / 'work'
    config.write_text(MICRO.format(repo=REPO, work=work) + "images = dict(mode='both')\n")
    with pytest.raises(ValueError, match='images.mode'):
        run_pipeline.main([str(config)])
    config.write_text(MICRO.format(repo=REPO, work=work)
                      + "images = dict(mode='inpaint', inpaint=None)\n")
    with pytest.raises(ValueError, match='images.inpaint.config'):
        run_pipeline.main([str(config)])
    assert not (work / '.stages').exists()


def test_where_the_segmentation_runs_go_is_not_part_of_its_fingerprint(tmp_path):
    """More GPUs or Slurm for a finished ablation must not train it again; more seeds must."""
    from fundus_plugins.pipeline.stages import build_stages
    config = tmp_path / 'micro.py'
    config.write_text(MICRO.format(repo=REPO, work=tmp_path / 'w'))
    base = Config.fromfile(str(config))
    seg = next(s for s in build_stages() if s.name == 'segmentation')

    def fingerprint(**changes):
        cfg = copy.deepcopy(base)
        cfg.segmentation.update(changes)
        return PipelineRunner(cfg, build_stages(), tmp_path).fingerprint(seg, 'up')

    plain = fingerprint()
    assert fingerprint(parallel=8, launcher='slurm', slurm=dict(partition='gpu')) == plain
    assert fingerprint(seeds=[0, 1, 2]) != plain
    assert fingerprint(threads=1) != plain
