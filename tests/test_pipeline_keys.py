"""A pipeline config's section keys are checked before anything runs: a typo such as
``images.translate_device`` or ``segmentation.seed`` is an error naming the key, what the
section takes and the key meant, not a setting silently ignored. No training here."""
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from _tool import run_tool
from fundus_plugins.errors import UserKeyError
from fundus_plugins.pipeline import SECTION_KEYS, check_sections, run_pipeline

from conftest import REPO
from test_pipeline import MICRO

sys.path.insert(0, str(REPO / 'tools'))
import run_pipeline as run_pipeline_tool  # noqa: E402

PIPELINES = sorted((REPO / 'configs' / 'pipeline').glob('*.py'))

#: (config key with a typo, the key meant) for each checked section and sub-dict
TYPOS = [
    ('data.test_fration', 'test_fraction'),
    ('grades.sed', 'seed'),
    ('labels.num_per_grad', 'num_per_grade'),
    ('images.translate_device', 'translate_devices'),
    ('images.inpaint.max_iter', 'max_iters'),
    ('segmentation.seed', 'seeds'),
    ('segmentation.slurm.partiton', 'partition'),
    ('report.examples_per_grad', 'examples_per_grade'),
]


@pytest.fixture
def micro(tmp_path):
    config = tmp_path / 'micro.py'
    config.write_text(MICRO.format(repo=REPO, work=tmp_path / 'unused'))
    return str(config)


def _with(config: Path, options: dict):
    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(options)
    return cfg


@pytest.mark.parametrize('config', PIPELINES, ids=lambda p: p.stem)
def test_every_pipeline_config_passes_the_check(config):
    check_sections(Config.fromfile(str(config)), str(config))


def test_the_table_covers_every_section_and_sub_dict():
    assert sorted(SECTION_KEYS) == ['data', 'grades', 'images', 'images.inpaint', 'labels',
                                    'report', 'segmentation', 'segmentation.slurm']
    from fundus_plugins.segmentation.slurm import SLURM_KEYS
    assert SECTION_KEYS['segmentation.slurm'] == set(SLURM_KEYS)  # slurm.py's own table


@pytest.mark.parametrize('typo, meant', TYPOS, ids=[t for t, _ in TYPOS])
def test_a_typo_in_each_section_is_named_with_the_key_meant(typo, meant):
    config = REPO / 'configs' / 'pipeline' / 'demo_inpaint.py'
    section = typo.rsplit('.', 1)[0]
    cfg = _with(config, {typo: 1})
    with pytest.raises(KeyError) as err:
        check_sections(cfg, str(config))
    msg = str(err.value)
    assert isinstance(err.value, UserKeyError)
    assert msg.startswith(f'{config}: pipeline {typo}: unknown key; the {section} section '
                          f'takes {sorted(SECTION_KEYS[section])}'), msg
    assert msg.endswith(f"did you mean '{meant}'?"), msg


@pytest.mark.parametrize('typo, meant', [('gate', 'gates'), ('lesion_class', 'lesion_classes'),
                                         ('segmentaton', 'segmentation'), ('plans', 'plan')])
def test_a_misspelt_top_level_key_is_named_with_the_key_meant(typo, meant):
    cfg = _with(REPO / 'configs' / 'pipeline' / 'demo.py', {typo: {}})
    with pytest.raises(UserKeyError, match=rf"pipeline config key '{typo}': unknown; a "
                                           rf"pipeline config takes .*did you mean '{meant}'"):
        check_sections(cfg, 'demo.py')


def test_a_key_far_from_any_gets_no_suggestion():
    cfg = _with(REPO / 'configs' / 'pipeline' / 'demo.py', {'report.colour_scheme': 'x'})
    with pytest.raises(KeyError, match=r'report\.colour_scheme: unknown key') as err:
        check_sections(cfg, 'demo.py')
    assert 'did you mean' not in str(err.value)


def test_absent_sections_and_empty_sub_dicts_are_fine():
    cfg = Config(dict(image_size=64, data=dict(source='phantom', num=10),
                      images=dict(config='x.py', inpaint=None),
                      segmentation=dict(config='y.py', slurm=None)))
    check_sections(cfg, 'partial.py')


def test_cfg_options_contents_are_not_checked():
    cfg = _with(REPO / 'configs' / 'pipeline' / 'demo_inpaint.py',
                {'labels.cfg_options': {'model.generator.anything': 2},
                 'images.inpaint.cfg_options': {'whatever.key': 1},
                 'segmentation.cfg_options': {'train_dataloader.batch_size': 2}})
    check_sections(cfg, 'demo_inpaint.py')


def test_run_pipeline_refuses_a_typo_before_writing_anything(micro, tmp_path, monkeypatch,
                                                             capsys):
    work = tmp_path / 'work'
    for plan_only in (False, True):
        with pytest.raises(KeyError, match=r"micro\.py: pipeline segmentation\.seed: unknown "
                                           r"key; .*did you mean 'seeds'\?"):
            run_pipeline(micro, work_dir=work, cfg_options={'segmentation.seed': [0, 1]},
                         log=lambda *a: None, plan_only=plan_only)
        assert not work.exists()
    # the same from the tool: one line naming the key, exit code 2, nothing written
    argv = [micro, '--work-dir', str(work), '--plan', '--cfg-options',
            "images.translate_device=['cuda:1']"]
    monkeypatch.setattr(sys, 'argv', [run_pipeline_tool.__file__, *argv])
    capsys.readouterr()
    code = run_tool(lambda: run_pipeline_tool.main(argv), 'pipeline')
    err = capsys.readouterr().err
    assert code == 2
    assert "error: " in err and "pipeline images.translate_device: unknown key" in err
    assert "did you mean 'translate_devices'?" in err
    assert not work.exists() and not (tmp_path / 'unused').exists()
