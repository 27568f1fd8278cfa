"""One work dir, one run: a second run on a folder another live process holds is refused
at once, naming that process; a lock left by a killed process (kill -9) blocks nothing."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _tool import run_tool
from fundus_plugins.errors import FolderLocked
from fundus_plugins.locks import LOCK_NAME, folder_lock, held_here, output_lock_file

from conftest import REPO, child_options

sys.path.insert(0, str(REPO / 'tools'))
import make_phantom  # noqa: E402
import run_pipeline  # noqa: E402
import synthetic_ablation  # noqa: E402
import train  # noqa: E402

# A process that holds a folder's lock until killed. It loads fundus_plugins.locks without
# the package's __init__ (which imports the whole stack: seconds), so it starts at once.
HOLDER = """
import sys, time, types
pkg = types.ModuleType('fundus_plugins')
pkg.__path__ = [sys.argv[1]]
sys.modules['fundus_plugins'] = pkg
from fundus_plugins.locks import folder_lock
lock_file = (sys.argv[3] if len(sys.argv) > 3 else '') or None
with folder_lock(sys.argv[2], 'the holder', lock_file=lock_file):
    for extra in sys.argv[4:]:  # files it is writing, e.g. a .partial folder's
        __import__('os').makedirs(extra, exist_ok=True)
    print('held', flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder():
    """holder(folder, lock_file=None, *make) -> Popen of a live process holding the lock."""
    procs = []

    def start(folder, lock_file=None, *make):
        proc = subprocess.Popen([sys.executable, '-c', HOLDER, str(REPO / 'fundus_plugins'),
                                 str(folder), str(lock_file or ''), *map(str, make)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                **child_options(signalled=True))
        procs.append(proc)
        assert proc.stdout.readline().strip() == 'held', proc.stderr.read()
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _kill9(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _refusal(err: str, folder, proc) -> str:
    """The one error line, which names the folder and the holder."""
    assert 'Traceback' not in err, err[-3000:]
    line = [ln for ln in err.splitlines() if ln.startswith('error: ')][-1]
    assert line.startswith(f'error: {folder}: in use by another run (process {proc.pid} on '
                           f'{socket.gethostname()}, started 20'), line
    assert 'command: ' in line and '-c' in line and 'choose another folder' in line
    return line


def _call(monkeypatch, capsys, module, argv, kind):
    monkeypatch.setattr(sys, 'argv', [module.__file__, *argv])
    capsys.readouterr()
    code = run_tool(lambda: module.main(argv), kind)
    return code, capsys.readouterr().err


def test_a_second_pipeline_on_a_locked_work_dir_is_refused(holder, tmp_path, monkeypatch,
                                                           capsys):
    work = tmp_path / 'pipe'
    proc = holder(work)
    t0 = time.time()
    code, err = _call(monkeypatch, capsys, run_pipeline,
                      [str(REPO / 'configs/pipeline/demo.py'), '--work-dir', str(work)],
                      'pipeline')
    assert code == 2 and time.time() - t0 < 30
    _refusal(err, work, proc)
    assert sorted(p.name for p in work.iterdir()) == [LOCK_NAME]  # nothing written
    info = json.loads((work / LOCK_NAME).read_text())
    assert info['pid'] == proc.pid and info['host'] == socket.gethostname()


def test_a_second_training_is_refused_and_a_killed_holder_blocks_nothing(
        holder, tmp_path, monkeypatch, capsys):
    work = tmp_path / 'train'
    argv = [str(REPO / 'configs/acgan_labels_demo.py'), '--work-dir', str(work)]
    proc = holder(work)
    code, err = _call(monkeypatch, capsys, train, argv, 'train')
    assert code == 2
    _refusal(err, work, proc)
    # kill -9: no cleanup ran, the lock file is still there; the OS freed the lock.
    _kill9(proc)
    assert (work / LOCK_NAME).is_file()
    import fundus_plugins.config as config

    class Started(Exception):
        pass

    def build_runner(cfg):
        assert held_here(work)  # the training holds its work dir
        raise Started(cfg.work_dir)

    monkeypatch.setattr(config, 'build_runner', build_runner)
    with pytest.raises(Started):
        train.main(argv)
    assert not (work / LOCK_NAME).exists()  # released and removed


def test_a_second_ablation_and_a_held_run_folder_are_refused(holder, tmp_path, monkeypatch,
                                                              capsys, synthetic_root):
    work = tmp_path / 'abl'
    argv = [str(REPO / 'configs/seg/unet_fundus_demo.py'), '--work-dir', str(work),
            '--fractions', '0', '--seeds', '0', '--cfg-options',
            f'synthetic_root={synthetic_root}']
    proc = holder(work)
    code, err = _call(monkeypatch, capsys, synthetic_ablation, argv, 'ablation')
    assert code == 2
    _refusal(err, work, proc)
    _kill9(proc)
    # A run's folder held by another process (as a parallel worker holds its own).
    run = work / 'p00_s0'
    proc = holder(run)
    code, err = _call(monkeypatch, capsys, synthetic_ablation, argv, 'ablation')
    assert code == 2
    _refusal(err, run, proc)
    assert not (run / 'metrics.json').exists()


def test_two_writers_of_one_output_and_a_killed_ones_partial(holder, tmp_path, monkeypatch,
                                                             capsys):
    out = tmp_path / 'ph'
    partial = tmp_path / '.ph.partial'
    # A live run writing `out`: it holds the lock beside it and is filling .ph.partial.
    proc = holder(out, output_lock_file(out), partial / 'images')
    argv = ['--num', '4', '--size', '32', '--out', str(out), '--no-preview']
    code, err = _call(monkeypatch, capsys, make_phantom, argv, 'atomic')
    assert code == 2
    _refusal(err, out, proc)
    assert (partial / 'images').is_dir()  # the live run's work is not deleted
    assert not out.exists()
    # Killed: its partial folder is removed as an interrupted run's, and the run goes on.
    _kill9(proc)
    code, err = _call(monkeypatch, capsys, make_phantom, argv, 'atomic')
    assert code == 0, err[-3000:]
    assert not partial.exists() and (out / 'meta.csv').is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ph']  # no lock file left


def test_the_lock_is_reentrant_in_a_process_and_the_file_goes_with_it(tmp_path):
    folder = tmp_path / 'w'
    with folder_lock(folder, 'outer'):
        with folder_lock(folder, 'inner'):  # the same process: no refusal
            assert held_here(folder)
        assert held_here(folder) and (folder / LOCK_NAME).is_file()
        info = json.loads((folder / LOCK_NAME).read_text())
        assert info['pid'] == os.getpid() and info['command'].startswith(sys.executable)
    assert not held_here(folder) and not (folder / LOCK_NAME).exists()
    with pytest.raises(FolderLocked):  # and a live holder elsewhere is refused
        proc = subprocess.Popen([sys.executable, '-c', HOLDER, str(REPO / 'fundus_plugins'),
                                 str(folder)], stdout=subprocess.PIPE, text=True,
                                **child_options())
        try:
            assert proc.stdout.readline().strip() == 'held'
            with folder_lock(folder):
                pass
        finally:
            proc.kill()
            proc.wait()
    with folder_lock(Path(folder)):  # free again
        pass
