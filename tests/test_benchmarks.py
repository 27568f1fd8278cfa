"""benchmarks/gpu_speed.py runs on the CPU (its --quick smoke run) and prints its table:
the eager fp32 baseline, the defaults and their ratio; GPU-only variants are skipped,
saying so."""
import json
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / 'benchmarks'))
import gpu_speed  # noqa: E402


def test_gpu_speed_quick_on_the_cpu(tmp_path, capsys):
    assert gpu_speed.main(['--quick', '--iters', '1', '--only', 'unet', '--variants',
                           'eager fp32', 'bf16', 'defaults', '--out',
                           str(tmp_path / 'speed')]) == 0
    out = capsys.readouterr().out
    assert 'unet: bf16: skipped (needs a CUDA device)' in out
    assert '| unet | configs/seg/unet_fundus_demo.py | 4 | eager fp32 |' in out
    assert '| 1.00x |' in out
    rows = json.loads((tmp_path / 'speed.json').read_text())['rows']
    assert [r['variant'] for r in rows] == ['eager fp32', 'defaults']
    assert all(r['img_s'] > 0 for r in rows)


def test_gpu_speed_runner_overhead_row(capsys):
    assert gpu_speed.main(['--quick', '--iters', '2', '--only', 'runner']) == 0
    out = capsys.readouterr().out
    assert '| runner | configs/spade_fundus_demo.py | 2 | tools/train.py Runner vs bare ' \
           'train_step |' in out
    assert 'bare ' in out and 'it/s:' in out


def test_gpu_speed_profiles_a_task(capsys):
    assert gpu_speed.main(['--quick', '--profile', 'translate']) == 0
    out = capsys.readouterr().out
    assert 'Self CPU' in out and 'aten::' in out  # torch.profiler's table of ops


def test_tool_help_benchmark_prints_its_table(capsys):
    import tool_help
    tool_help.main(['--repeat', '1'])
    out = capsys.readouterr().out
    assert '| tools/train.py --help |' in out and '| python -c pass |' in out
    assert 'tools answer --help in under 2 s' in out
