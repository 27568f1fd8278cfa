"""Every config under configs/ is complete on its own: mmengine's own Runner builds it from
the file alone (``Runner.from_cfg(Config.fromfile(path))``), each demo config trains that
way, and our tools (fundus_plugins.config.load_config, tools/print_config.py) read the
same config; ``--cfg-options`` of a run setting reaches every component."""
import ast
import sys
import urllib.error
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from fundus_plugins.config import RUN_SETTINGS, check_run_settings, load_config
from fundus_plugins.phantom import write_phantom_dataset

from conftest import REPO, mark_synthetic

sys.path.insert(0, str(REPO / 'tools'))
import print_config  # noqa: E402

CONFIGS = REPO / 'configs'
#: Configs the Runner runs (the pipeline configs are read by tools/run_pipeline.py; the
#: _base_ files are fragments).
RUNNER_CONFIGS = sorted(str(p.relative_to(REPO)) for p in
                        list(CONFIGS.glob('*.py')) + list(CONFIGS.glob('seg/*.py')))
DEMO_CONFIGS = [c for c in RUNNER_CONFIGS if 'demo' in Path(c).stem]


def test_the_lists_cover_every_config_file():
    every = sorted(str(p.relative_to(REPO)) for p in CONFIGS.rglob('*.py'))
    others = [c for c in every if c not in RUNNER_CONFIGS]
    assert all(c.startswith(('configs/_base_/', 'configs/pipeline/')) for c in others)
    assert len(RUNNER_CONFIGS) >= 20 and len(DEMO_CONFIGS) >= 9


@pytest.fixture
def plain_env(vgg_file, tmp_path, monkeypatch):
    """Offline, in an empty working directory (the configs' relative paths land there)."""
    def fail(url, *args, **kwargs):
        raise urllib.error.URLError('offline (test)')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', fail)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', fail)
    monkeypatch.setenv('TORCH_HOME', str(vgg_file[0]))  # a torch hub cache with VGG19
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize('config', RUNNER_CONFIGS)
def test_plain_mmengine_builds_every_config(config, plain_env):
    runner = Runner.from_cfg(Config.fromfile(str(REPO / config)))
    cfg = runner.cfg
    assert type(runner.model).__name__ == cfg.model.type
    num_labels = len(cfg.lesion_classes) + 2  # BG, RET, the lesion classes
    if cfg.default_scope == 'mmseg':
        assert runner.model.decode_head.num_classes == num_labels
    else:
        assert len(runner.model.class_set) == num_labels
    assert Path(runner.work_dir) == plain_env / 'work_dirs' / Path(config).stem


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    """The demo configs' data where they look for it: a phantom (20 images, 16 training)
    in work_dirs/demo/phantom and 50 synthetic training pairs in work_dirs/demo/synthetic."""
    base = tmp_path_factory.mktemp('demo_cwd')
    write_phantom_dataset(base / 'work_dirs/demo/phantom', num=20, size=64, seed=0,
                          progress=False)
    syn = base / 'work_dirs/demo/synthetic'
    write_phantom_dataset(syn, num=50, size=64, seed=1, progress=False)
    mark_synthetic(syn)
    return base


@pytest.mark.parametrize('config', DEMO_CONFIGS)
def test_plain_mmengine_trains_every_demo_config(config, demo_data, monkeypatch, tmp_path):
    """One epoch (segmentation: 16 images at batch 8) or one iteration (GANs), as a user
    of mmengine would run it, with only the length and the work dir changed."""
    monkeypatch.chdir(demo_data)
    cfg = Config.fromfile(str(REPO / config))
    cfg.work_dir = str(tmp_path / 'work')
    if 'max_epochs' in cfg.train_cfg:
        cfg.merge_from_dict({'train_cfg.max_epochs': 1})
    else:
        cfg.merge_from_dict({'train_cfg.max_iters': 1})
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter >= 1
    assert list((tmp_path / 'work').glob('*.pth')), 'no checkpoint written'
    dataset = runner.train_dataloader.dataset
    assert str(dataset.data_root) == cfg.data_root
    if cfg.get('synthetic_fraction'):
        assert dataset.num_synthetic > 0


@pytest.mark.parametrize('config', RUNNER_CONFIGS)
def test_our_tools_read_what_mmengine_reads(config):
    plain = Config.fromfile(str(REPO / config)).to_dict()
    assert load_config(str(REPO / config)).to_dict() == plain
    assert check_run_settings(Config.fromfile(str(REPO / config))) == []


@pytest.mark.parametrize('config', RUNNER_CONFIGS)
def test_every_config_names_its_own_work_dir(config):
    tree = ast.parse((REPO / config).read_text())
    own = [n for n in tree.body if isinstance(n, ast.Assign)
           and any(getattr(t, 'id', None) == 'work_dir' for t in n.targets)]
    assert own, f'{config} sets no work_dir of its own'
    assert Config.fromfile(str(REPO / config)).work_dir == f'work_dirs/{Path(config).stem}'


def test_every_pipeline_and_base_config_loads():
    for path in sorted(CONFIGS.glob('_base_/**/*.py')):
        Config.fromfile(str(path))
    for path in sorted(CONFIGS.glob('pipeline/*.py')):
        cfg = Config.fromfile(str(path))
        for stage in ('labels', 'images', 'segmentation'):
            assert cfg[stage].config in RUNNER_CONFIGS, (path, stage)


def test_cfg_options_of_a_run_setting_reach_every_component(capsys):
    cfg = load_config(str(CONFIGS / 'seg/unet_fundus_demo_bengraham.py'),
                      {'lesion_classes': ['OD', 'EX'], 'data_root': '/data/x',
                       'image_size': 64})
    assert cfg.num_classes == cfg.model.decode_head.num_classes == 4  # BG RET OD EX
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert dataset.classes == ['OD', 'EX'] and dataset.data_root == '/data/x'
        sizes = [t['size'] for t in dataset.pipeline if t['type'] == 'ResizeFundus']
        assert sizes == [64]
    assert check_run_settings(cfg) == []
    # The GAN configs: the label size reaches generator, discriminator and pipelines.
    cfg = load_config(str(CONFIGS / 'acgan_labels_paper.py'),
                      {'lesion_classes': ['OD', 'EX'], 'label_size': 128})
    assert cfg.model.generator.out_size == cfg.model.discriminator.in_size == 128
    assert cfg.model.generator.min_channels == cfg.num_label_channels == 4
    assert cfg.model.classes == cfg.label_metrics[0].classes == ['OD', 'EX']
    assert check_run_settings(cfg) == []


def test_a_component_with_its_own_value_keeps_it(tmp_path):
    config = tmp_path / 'own.py'
    config.write_text(f"_base_ = ['{CONFIGS}/seg/unet_fundus_demo.py']\n"
                      "val_dataloader = dict(dataset=dict(data_root='/elsewhere'))\n"
                      "test_dataloader = val_dataloader\n")
    problems = check_run_settings(Config.fromfile(str(config)))
    assert problems == [
        "val_dataloader.dataset.data_root = '/elsewhere' differs from data_root = "
        "'work_dirs/demo/phantom'",
        "test_dataloader.dataset.data_root = '/elsewhere' differs from data_root = "
        "'work_dirs/demo/phantom'"]
    cfg = load_config(str(config), {'data_root': '/new'})
    assert cfg.train_dataloader.dataset.data_root == '/new'
    assert cfg.val_dataloader.dataset.data_root == '/elsewhere'


def test_a_run_setting_the_config_lacks_is_an_error():
    with pytest.raises(KeyError, match="no top-level 'image_size'.*'label_size'"):
        load_config(str(CONFIGS / 'acgan_labels_demo.py'), {'image_size': 64})


def test_a_child_that_changes_a_key_only_at_the_top_is_warned_about(tmp_path, capsys):
    config = tmp_path / 'child.py'
    config.write_text(f"_base_ = ['{CONFIGS}/spade_fundus_demo.py']\nimage_size = 64\n")
    logs = []
    cfg = load_config(str(config), log=lambda msg, **kw: logs.append(msg))
    assert any('model.generator.out_size = 128 differs from image_size = 64' in m
               for m in logs), logs
    # An inherited work_dir would mix two runs: the tools name the run after its file.
    assert cfg.work_dir == 'work_dirs/child'
    assert any('work_dirs/spade_fundus_demo is a base config' in m for m in logs), logs


def test_print_config_shows_the_config_as_the_tools_run_it(tmp_path, capsys):
    out = tmp_path / 'printed.py'
    assert print_config.main([str(CONFIGS / 'seg/unet_fundus_demo.py'), '--cfg-options',
                              'data_root=/data/y', '--work-dir', str(tmp_path / 'w'),
                              '--out', str(out)]) == 0
    text = capsys.readouterr().out
    assert "# data_root = '/data/y' also set in: train_dataloader.dataset.data_root" in text
    assert "data_root='/data/y'" in text
    printed = Config.fromfile(str(out))
    loaded = load_config(str(CONFIGS / 'seg/unet_fundus_demo.py'), {'data_root': '/data/y'},
                         work_dir=tmp_path / 'w', launcher='none')
    assert printed.to_dict() == loaded.to_dict()
    assert set(RUN_SETTINGS) >= {'lesion_classes', 'data_root', 'image_size'}
