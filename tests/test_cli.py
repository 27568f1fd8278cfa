"""Ctrl-C ends a tool with one line: what was kept and the command that goes on."""
import os
import signal
import subprocess
import sys
import time

from _tool import resume_command, run_tool

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


# ------------------------------------------------------------ a quiet, quick start
TOOLS = sorted(p for p in (REPO / 'tools').glob('*.py') if not p.name.startswith('_'))

HELP_IMPORTS = """
import runpy, sys
tool = sys.argv[1]
sys.path.insert(0, sys.argv[2])
sys.argv = [tool, '--help']
try:
    runpy.run_path(tool, run_name='__main__')
except SystemExit as exc:
    code = exc.code
heavy = [m for m in ('torch', 'mmengine', 'mmcv', 'mmagic', 'mmseg', 'fundus_plugins', 'numpy')
         if m in sys.modules]
print('exit', code, 'heavy', heavy)
"""


def test_every_tools_help_imports_nothing_of_the_stack():
    """--help answers without importing torch, mmengine or fundus_plugins (so it takes a
    fraction of a second: benchmarks/tool_help.py times it)."""
    for tool in TOOLS:
        out = subprocess.run([sys.executable, '-c', HELP_IMPORTS, str(tool),
                              str(REPO / 'tools')], capture_output=True, text=True,
                             timeout=120, cwd=REPO)
        assert out.returncode == 0, (tool.name, out.stderr[-2000:])
        assert 'usage:' in out.stdout, tool.name
        assert out.stdout.strip().endswith('exit 0 heavy []'), (tool.name, out.stdout[-300:])


def test_the_tools_literal_choices_are_the_librarys():
    """What the tools write out for a light --help equals what the library defines."""
    import make_phantom
    import prepare_data
    from _tool import add_fov_arguments
    from fundus_plugins.classes import DEFAULT_CLASSES
    from fundus_plugins.models.label_gan import FOV_MODES
    from fundus_plugins.phantom import PHANTOM_CLASSES
    from fundus_plugins.phantom_raw import RAW_LAYOUTS
    assert make_phantom.RAW_LAYOUTS == tuple(RAW_LAYOUTS)
    assert make_phantom.PHANTOM_CLASSES == tuple(PHANTOM_CLASSES)
    assert list(prepare_data.DEFAULT_CLASSES) == list(DEFAULT_CLASSES)
    import argparse
    p = argparse.ArgumentParser()
    add_fov_arguments(p)
    [fov] = [a for a in p._actions if a.dest == 'fov']
    assert sorted(fov.choices) == sorted(('auto',) + tuple(FOV_MODES))


def test_cfg_options_parse_as_mmengine_parses_them():
    import argparse

    from mmengine.config import DictAction

    from _tool import CfgOptions
    ours, theirs = argparse.ArgumentParser(), argparse.ArgumentParser()
    ours.add_argument('--cfg-options', nargs='+', action=CfgOptions)
    theirs.add_argument('--cfg-options', nargs='+', action=DictAction)
    argv = ['--cfg-options', 'a.b=1', 'c=[1,2]', 'd=x', '--cfg-options', 'e=(3,4)']
    assert vars(ours.parse_args(argv)) == vars(theirs.parse_args(argv))
    assert ours.parse_args(argv).cfg_options == {'a.b': 1, 'c': [1, 2], 'd': 'x', 'e': (3, 4)}
    assert ours.parse_args([]).cfg_options is None


def test_a_tool_run_shows_no_notice_of_the_stack(tmp_path):
    """A tool that imports the whole stack (mmagic, diffusers, mmseg) prints no warning
    the user can do nothing about (_tool.STACK_NOTICES); the library's import alone does
    not hide them (test_resume.py checks that importing it leaves warnings as they were)."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}
    env.update(NO_ALBUMENTATIONS_UPDATE='1', HF_HUB_OFFLINE='1')
    out = subprocess.run([sys.executable, str(REPO / 'tools/print_config.py'),
                          str(REPO / 'configs/seg/unet_fundus_demo.py')], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'Warning' not in out.stderr, out.stderr[-2000:]
    # ... while the same import without the tool's start shows them
    raw = subprocess.run([sys.executable, '-c', 'import fundus_plugins, mmagic.models'],
                         capture_output=True, text=True, timeout=300, env=env)
    assert '_register_pytree_node' in raw.stderr, raw.stderr[-2000:]
