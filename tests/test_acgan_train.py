"""Training the label ACGAN for a few iterations on CPU: update counts, logs, resume,
sampling and the label-map analysis."""
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from fundus_plugins.datasets.layout import read_classes, read_meta
from fundus_plugins.config import build_runner, load_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))
import analyze_labels  # noqa: E402
import sample_labels  # noqa: E402
import train  # noqa: E402


def demo_options(root, work_dir, iters=4, **extra):
    opts = {'data_root': str(root), 'train_cfg.max_iters': iters,
            'train_cfg.val_interval': iters, 'train_dataloader.batch_size': 4,
            'val_dataloader.batch_size': 5, 'val_evaluator.metrics.0.fake_nums': 10,
            'default_hooks.logger.interval': 1, 'default_hooks.checkpoint.interval': 2,
            'custom_hooks.2.interval': 2, 'work_dir': str(work_dir),
            # ADA: start at p = 0.3 and move fast, so that resume has a p to keep.
            'model.augment.p': 0.3, 'custom_hooks.1.ada_kimg': 0.1}
    opts.update(extra)
    return opts


def build(root, work_dir, config='configs/acgan_labels_demo.py', **kw):
    return load_config(str(REPO / config), demo_options(root, work_dir, **kw))


@pytest.fixture(scope='module')
def trained(phantom_root, tmp_path_factory):
    """4 iterations of the demo config, with checkpoints at 2 and 4."""
    work = tmp_path_factory.mktemp('acgan')
    cfg = build(phantom_root, work)
    runner = build_runner(cfg)
    runner.train()
    return runner, work


def test_two_generator_updates_per_discriminator_update(trained):
    runner, _ = trained
    model = runner.model
    assert int(model.num_d_updates) == 4 and int(model.num_g_updates) == 8
    # The optimizers agree: Adam's step count is the number of updates of each side.
    gen_state = runner.optim_wrapper['generator'].optimizer.state
    disc_state = runner.optim_wrapper['discriminator'].optimizer.state
    assert {int(s['step']) for s in gen_state.values()} == {8}
    assert {int(s['step']) for s in disc_state.values()} == {4}


def test_logs_losses_accuracy_and_ada(trained):
    _, work = trained
    log = next(work.rglob('vis_data/scalars.json')).read_text().splitlines()
    last_train = [json.loads(line) for line in log if 'loss_d_real' in line][-1]
    for key in ('loss_d_real', 'loss_d_fake', 'loss_d_aux_real', 'loss_g_adv', 'loss_g_aux',
                'd_acc_real', 'd_acc_fake', 'ada_p', 'ada_rt', 'g_steps_per_cycle'):
        assert key in last_train, key
    assert last_train['g_steps_per_cycle'] == 2
    val = [json.loads(line) for line in log if 'labels/grade_acc' in line][-1]
    assert 0 <= val['labels/grade_acc'] <= 1 and 0 <= val['labels/od_one'] <= 1
    assert (work / 'vis' / 'labels_iter_2.png').is_file()
    assert (work / 'vis' / 'labels_iter_4.png').is_file()


def test_ratio_schedule(phantom_root, tmp_path):
    cfg = build(phantom_root, tmp_path, iters=4, **{
        'custom_hooks.0.schedule': [dict(begin_iter=2, generator_steps=1)],
        'val_cfg': None, 'val_dataloader': None, 'val_evaluator': None})
    runner = build_runner(cfg)
    runner.train()
    assert int(runner.model.num_d_updates) == 4
    assert int(runner.model.num_g_updates) == 2 * 2 + 2 * 1


@HOOKS.register_module()
class _RecordStateHook(Hook):
    seen = {}

    def before_train(self, runner):
        m = runner.model
        _RecordStateHook.seen = dict(
            iter=runner.iter, p=float(m.augment.p),
            ema=[p.detach().clone() for p in m.generator_ema.parameters()],
            d_updates=int(m.num_d_updates))


def test_resume_keeps_ada_p_and_ema(trained, phantom_root):
    runner, work = trained
    ckpt = torch.load(work / 'iter_4.pth', weights_only=False)
    saved_p = float(ckpt['state_dict']['augment.p'])
    saved_ema = [v for k, v in ckpt['state_dict'].items()
                 if k.startswith('generator_ema.module.') and 'num_batches' not in k
                 and 'running' not in k and k.endswith(('weight', 'bias'))]
    cfg = build(phantom_root, work, iters=6)
    cfg.custom_hooks.append(dict(type='_RecordStateHook'))
    cfg.resume = True
    resumed = build_runner(cfg)
    from fundus_plugins.checkpoint import mmengine_checkpoint_globals
    with mmengine_checkpoint_globals():  # as tools/train.py resumes
        resumed.train()
    seen = _RecordStateHook.seen
    assert seen['iter'] == 4 and seen['d_updates'] == 4
    assert seen['p'] == pytest.approx(saved_p)
    assert saved_p != pytest.approx(0.3)  # ADA moved p from its start (ada_kimg is tiny)
    assert len(seen['ema']) == len(saved_ema)
    assert all(torch.equal(a, b) for a, b in zip(seen['ema'], saved_ema))
    assert int(resumed.model.num_g_updates) == 12


def test_train_tool_applies_classes_and_data_root(phantom_root, tmp_path):
    opts = demo_options(phantom_root, tmp_path, iters=2)
    opts.pop('work_dir')
    args = [str(REPO / 'configs/acgan_labels_demo.py'), '--work-dir', str(tmp_path), '--cfg-options',
            'lesion_classes=[OD,EX]'] + [f'{k}={v}' for k, v in opts.items()]
    assert train.main(args) == 0
    ckpt = torch.load(tmp_path / 'iter_2.pth', weights_only=False)
    assert ckpt['state_dict']['generator.to_logits.weight'].shape[0] == 4  # BG RET OD EX


def test_wrong_config_key_is_named(tmp_path):
    cfg = tmp_path / 'bad.py'
    cfg.write_text("_base_ = ['%s']\ntrain_dataloder = dict(batch_size=2)\n"
                   % (REPO / 'configs' / 'acgan_labels_demo.py'))
    with pytest.raises(KeyError, match="'train_dataloder'; did you mean 'train_dataloader'"):
        train.main([str(cfg)])


def test_sampling_is_seeded_and_writes_the_layout(trained, phantom_root, tmp_path):
    _, work = trained
    def run(seed, out):
        return sample_labels.main([str(REPO / 'configs/acgan_labels_demo.py'),
                                   str(work / 'iter_4.pth'), '--num-per-grade', '3',
                                   '--seed', str(seed), '--out', str(tmp_path / out),
                                   '--cfg-options', f'data_root={phantom_root}'])
    assert run(5, 'a') == 0 and run(5, 'b') == 0 and run(6, 'c') == 0
    rows = read_meta(tmp_path / 'a')
    assert len(rows) == 15 and {r.grade for r in rows} == {0, 1, 2, 3, 4}
    assert {r.grade_source for r in rows} == {'synthetic'}
    assert read_classes(tmp_path / 'a').codes == ('BG', 'RET', 'OD', 'MA', 'HE', 'EX', 'SE')
    assert (tmp_path / 'a' / 'grid.png').is_file()
    for r in rows:
        a = (tmp_path / 'a' / 'labels' / f'{r.name}.png').read_bytes()
        assert a == (tmp_path / 'b' / 'labels' / f'{r.name}.png').read_bytes()
        lab = cv2.imread(str(tmp_path / 'a' / 'labels' / f'{r.name}.png'), cv2.IMREAD_UNCHANGED)
        assert lab.shape == (128, 128) and lab.max() < 7   # 64 x 2
    differs = [(tmp_path / 'a' / 'labels' / f'{r.name}.png').read_bytes() !=
               (tmp_path / 'c' / 'labels' / f'{r.name}.png').read_bytes() for r in rows]
    assert any(differs)


def test_analysis_tool_on_real_maps_as_generated(phantom_root, tmp_path):
    """Real test maps passed off as generated: grade accuracy equals the ceiling and
    every map has one optic disc."""
    import shutil
    gen = tmp_path / 'gen'
    (gen / 'labels').mkdir(parents=True)
    shutil.copy(phantom_root / 'classes.json', gen)
    rows = [r for r in read_meta(phantom_root) if r.split == 'test']
    for r in rows:
        shutil.copy(phantom_root / 'labels' / f'{r.name}.png', gen / 'labels')
    (gen / 'meta.csv').write_text('name,grade,grade_source,dataset,split\n' + ''.join(
        f'{r.name},{r.grade},synthetic,x,train\n' for r in rows))
    assert analyze_labels.main([str(gen), '--real', str(phantom_root)]) == 0
    res = json.loads((gen / 'analysis.json').read_text())
    acc = res['grade_accuracy']
    assert acc['generated']['all'] == pytest.approx(acc['real_test_ceiling']['all'])
    assert res['od_one']['generated']['all'] == 1.0
    assert (gen / 'analysis.md').read_text().startswith('Maps compared at 64 x 64')
    assert np.isfinite(res['lesion_load']['HE']['pixel_fraction']['all']['w1'])
