"""User mistakes end in one line, ``error: ...`` on stderr, exit code 2 and no traceback
(``--debug`` or FUNDUS_DEBUG=1 shows it); bugs keep their traceback."""
import errno
import os
import subprocess
import sys

import pytest
import torch

from _tool import run_tool
from fundus_plugins.config import build_model, load_config
from fundus_plugins.errors import UserError, WrongCheckpoint

from conftest import REPO, child_options

sys.path.insert(0, str(REPO / 'tools'))
import sample_labels  # noqa: E402
import test as test_tool  # noqa: E402
import train  # noqa: E402

ACGAN = str(REPO / 'configs/acgan_labels_demo.py')


def _tool(monkeypatch, capsys, module, argv, kind='atomic'):
    """Run a tool as its __main__ does; (exit code, stderr)."""
    monkeypatch.setattr(sys, 'argv', [module.__file__, *argv])
    capsys.readouterr()
    code = run_tool(lambda: module.main(argv), kind)
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    assert 'Traceback' not in err, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith('error: ')]
    assert len(errors) == 1 and lines[-1] == errors[0], err[-3000:]
    return errors[0]


def _sample_args(ckpt, tmp_path, *extra):
    return [ACGAN, str(ckpt), '--num-per-grade', '1', '--out', str(tmp_path / 'out'),
            '--no-progress', '--fov', 'fitted', *extra]


def test_a_checkpoint_of_another_model_is_named_as_such(seg_trained, tmp_path, monkeypatch,
                                                        capsys):
    _, seg_ckpt, _ = seg_trained  # a U-Net (mmseg EncoderDecoder) checkpoint
    code, err = _tool(monkeypatch, capsys, sample_labels, _sample_args(seg_ckpt, tmp_path))
    line = _one_line(err)
    assert code == 2
    assert f'{seg_ckpt}: the checkpoint is of another model: it holds an ' \
           f'EncoderDecoder (its meta says so), but {ACGAN} builds a LabelACGAN' in line
    assert 'Give a checkpoint of a LabelACGAN' in line
    assert 'unexpected key' not in err and 'missing keys' not in err  # no mmengine lists
    assert not (tmp_path / 'out').exists()
    # --debug: the same line, after the traceback.
    code, err = _tool(monkeypatch, capsys, sample_labels,
                      _sample_args(seg_ckpt, tmp_path, '--debug'))
    assert code == 2 and 'Traceback' in err and 'WrongCheckpoint' in err
    assert err.strip().splitlines()[-1] == line


def test_a_checkpoint_without_meta_or_with_other_settings(tmp_path, monkeypatch, capsys):
    cfg = load_config(ACGAN, {'lesion_classes': ['OD', 'EX']})
    other = tmp_path / 'two_classes.pth'
    torch.save({'meta': {'cfg': cfg.pretty_text}, 'state_dict': build_model(cfg).state_dict()},
               other)
    code, err = _tool(monkeypatch, capsys, sample_labels, _sample_args(other, tmp_path))
    line = _one_line(err)
    assert code == 2 and f'{other}: the checkpoint holds a LabelACGAN trained with other ' \
                         f'settings than {ACGAN}' in line
    assert 'differ in shape (e.g.' in line and 'Give the config it was trained with' in line
    # No meta: named from its weights.
    bare = tmp_path / 'bare.pth'
    torch.save({'state_dict': {'backbone.conv.weight': torch.zeros(2),
                               'decode_head.conv_seg.weight': torch.zeros(2)}}, bare)
    with pytest.raises(WrongCheckpoint, match=r'it holds the weights of another model '
                                              r'\(named backbone \(1\), decode_head \(1\)\)'):
        sample_labels.main(_sample_args(bare, tmp_path))


def test_tools_test_refuses_a_checkpoint_of_another_model(phantom_root, tmp_path, monkeypatch,
                                                         capsys):
    # mmengine alone would load it leniently (a warning) and test random weights.
    cfg = load_config(ACGAN)
    acgan = tmp_path / 'acgan.pth'
    torch.save({'meta': {'cfg': cfg.pretty_text}, 'state_dict': build_model(cfg).state_dict()},
               acgan)
    seg = str(REPO / 'configs/seg/unet_fundus_demo.py')
    code, err = _tool(monkeypatch, capsys, test_tool,
                      [seg, str(acgan), '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                       f'data_root={phantom_root}'], 'none')
    assert code == 2
    assert f'error: {acgan}: the checkpoint is of another model: it holds a LabelACGAN (its ' \
           f'meta says so), but {seg} builds an EncoderDecoder' in _one_line(err)


def test_an_empty_checkpoint_is_one_line_in_a_real_run(tmp_path):
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1')
    env.pop('FUNDUS_DEBUG', None)
    proc = subprocess.run([sys.executable, str(REPO / 'tools/sample_labels.py'),
                           *_sample_args(empty, tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, **child_options())
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert _one_line(proc.stderr) == (
        f'error: {empty}: cannot load the checkpoint: empty file; it was cut short or '
        f'damaged while being written or copied: copy it again, or use another checkpoint '
        f'of its work dir')


def test_a_truncated_checkpoint_is_one_line_and_debug_shows_the_traceback(
        seg_trained, tmp_path, monkeypatch, capsys):
    _, seg_ckpt, _ = seg_trained
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(seg_ckpt.read_bytes()[:5000])
    code, err = _tool(monkeypatch, capsys, sample_labels, _sample_args(cut, tmp_path))
    assert code == 2
    assert _one_line(err).startswith(f'error: {cut}: cannot load the checkpoint: not a '
                                     f'complete checkpoint archive')
    monkeypatch.setenv('FUNDUS_DEBUG', '1')
    code, err = _tool(monkeypatch, capsys, sample_labels, _sample_args(cut, tmp_path))
    assert code == 2 and 'Traceback' in err and err.strip().splitlines()[-1].startswith(
        f'error: {cut}: cannot load the checkpoint')


def test_a_mistyped_cfg_options_key_names_the_nearest_valid_ones(tmp_path, monkeypatch,
                                                                  capsys):
    argv = [ACGAN, '--work-dir', str(tmp_path / 'w'), '--cfg-options', 'randomness.seeed=0']
    code, err = _tool(monkeypatch, capsys, train, argv, 'train')
    assert code == 2
    assert _one_line(err) == (
        "error: --cfg-options randomness.seeed: randomness has no key 'seeed', and "
        "Runner.set_randomness does not take one of that name; did you mean 'seed'? "
        "Check the spelling (tools/print_config.py prints the config with its keys)")
    assert not (tmp_path / 'w').exists()  # refused before the run started
    code, err = _tool(monkeypatch, capsys, train, argv + ['--debug'], 'train')
    assert code == 2 and 'Traceback' in err and 'UserKeyError' in err
    # Under a component: the arguments it takes.
    with pytest.raises(KeyError, match=r"model.generator has no key 'noise_sizee', and "
                                        r"LabelMapGenerator does not take one of that name; "
                                        r"did you mean 'noise_size'\?"):
        load_config(ACGAN, {'model.generator.noise_sizee': 8})
    # A new key that looks like nothing the component takes is still allowed where the
    # component takes **kwargs; a value for a known key is, of course.
    load_config(ACGAN, {'randomness.seed': 3, 'train_cfg.max_iters': 5})


def test_a_bug_keeps_its_traceback_and_a_full_disk_is_named(monkeypatch, capsys):
    def bug():
        raise ZeroDivisionError('a bug')

    with pytest.raises(ZeroDivisionError):
        run_tool(bug, 'none')

    def full():
        raise OSError(errno.ENOSPC, 'No space left on device', '/data/out/x.png')

    assert run_tool(full, 'none') == 2
    assert _one_line(capsys.readouterr().err) == (
        'error: /data/out/x.png: the disk is full (no space left on the device); free some '
        'space or write to another disk, then run again')

    def refused():
        raise SystemExit('--fractions must be in [0, 1); got [1.5]')

    assert run_tool(refused, 'none') == 2
    assert _one_line(capsys.readouterr().err) == \
        'error: --fractions must be in [0, 1); got [1.5]'
    with pytest.raises(SystemExit) as exc:  # argparse's own exits are as they were
        run_tool(lambda: sys.exit(2), 'none')
    assert exc.value.code == 2
    assert issubclass(WrongCheckpoint, ValueError) and issubclass(WrongCheckpoint, UserError)
