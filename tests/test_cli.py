"""Ctrl-C ends a tool with one line: what was kept and the command that goes on."""
import os
import signal
import subprocess
import sys
import time

from fundus_plugins.cli import resume_command, run_tool

from conftest import REPO, child_options


def test_ctrl_c_in_make_phantom_is_one_line_and_leaves_nothing(tmp_path):
    out = tmp_path / 'ph'
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1')
    proc = subprocess.Popen([sys.executable, str(REPO / 'tools/make_phantom.py'), '--num',
                             '5000', '--size', '128', '--out', str(out), '--no-preview'],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **child_options(signalled=True))
    partial = tmp_path / '.ph.partial'
    deadline = time.time() + 120
    while not (partial / 'images').is_dir() or not any((partial / 'images').iterdir()):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert 'Traceback' not in err
    lines = [ln for ln in err.splitlines() if ln.startswith('interrupted:')]
    assert lines == [f'interrupted: nothing was written: the output folder is as it was '
                     f'before; to go on, run: python {REPO / "tools/make_phantom.py"} --num '
                     f'5000 --size 128 --out {out} --no-preview'], err[-2000:]
    assert not out.exists() and not partial.exists()


def test_an_interrupted_training_says_how_to_resume(monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['tools/train.py', 'configs/x.py', '--work-dir', 'w'])

    def main():
        raise KeyboardInterrupt

    assert run_tool(main, 'train', resume_flag='--resume') == 130
    err = capsys.readouterr().err
    assert err.strip() == ('interrupted: the checkpoints written so far are in the work dir; '
                           'to go on, run: python tools/train.py configs/x.py --work-dir w '
                           '--resume')
    assert resume_command(['a.py', '--resume'], '--resume') == 'python a.py --resume'
