"""Translation that keeps the generator busy (translate_layout, synthesize_pairs and their
tools): label maps read ahead in threads, pairs written in threads, batch size 'auto'.
The files and rows are the same whatever the threads; a bad label file or a failed
write is still an error naming the file, and leaves no output folder."""
import re
import shutil
import sys

import cv2
import numpy as np
import pytest
import torch

import fundus_plugins.apis as apis
from fundus_plugins.apis import init_model, synthesize_pairs, translate_layout
from fundus_plugins.config import load_config
from fundus_plugins.datasets import read_meta
from fundus_plugins.datasets.layout import image_path, label_path
from fundus_plugins.models.spade import onehot_from_labels

from conftest import REPO
# The tiny SPADE and ACGAN runs of test_spade.py (3 and 1 iterations on a 10-image
# phantom).
from test_spade import acgan_trained, spade_trained  # noqa: F401
from test_progress import models  # noqa: F401  (root, SPADE and ACGAN models of those runs)

sys.path.insert(0, str(REPO / 'tools'))
import synthesize  # noqa: E402
import translate  # noqa: E402


def tree(root) -> dict:
    """Every file under ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*'))
            if p.is_file()}


def left_behind(out) -> list:
    """What is beside ``out`` of a run's output: the folder itself, its partial sibling
    (``atomic_root``'s), the old one moved aside."""
    return sorted(p.name for p in out.parent.iterdir()
                  if p.name in (out.name, f'.{out.name}.partial')
                  or p.name.startswith(f'.{out.name}.old-'))


def last_bar(err: str, desc: str) -> str:
    """The last state of the bar described by ``desc`` in captured stderr."""
    states = [s for s in err.replace('\n', '\r').split('\r') if s.startswith(f'{desc}:')]
    assert states, f'no bar {desc!r} in {err!r}'
    return states[-1]


def translate_calls(monkeypatch, model) -> list:
    """The batch sizes ``model.translate`` is called with from now on."""
    sizes, real = [], model.translate

    def spy(x, *args, **kwargs):
        sizes.append(len(x))
        return real(x, *args, **kwargs)
    monkeypatch.setattr(model, 'translate', spy)
    return sizes


def test_threads_write_the_same_files_and_rows(models, tmp_path, capsys):  # noqa: F811
    root, spade, _ = models
    rows = translate_layout(spade, root, tmp_path / 'seq', batch_size=4, workers=0,
                            writers=0, progress=False)
    assert [r.name for r in rows] == [r.name for r in read_meta(root)] and len(rows) == 10
    expected = tree(tmp_path / 'seq')
    assert len(expected) == 2 + 2 * 10  # meta.csv, classes.json, 10 images, 10 labels
    for workers, writers in [(2, 0), (0, 2), (2, 2), (1, 1)]:
        out = tmp_path / f'r{workers}w{writers}'
        capsys.readouterr()
        assert translate_layout(spade, root, out, batch_size=4, workers=workers,
                                writers=writers) == rows
        # the bar counts the pairs written, to the end, whatever the threads
        assert '10/10 ' in last_bar(capsys.readouterr().err, 'translating')
        assert tree(out) == expected, (workers, writers)
    # ... and they are the translations of the maps written beside them
    for r in rows[:3]:
        label = cv2.imread(str(label_path(tmp_path / 'seq', r.name)), cv2.IMREAD_UNCHANGED)
        image = cv2.imread(str(image_path(tmp_path / 'seq', r.name)))[..., ::-1]
        x = onehot_from_labels(torch.from_numpy(label[None]), len(spade.class_set))
        own = spade.translate(x).float().round().byte()[0].permute(1, 2, 0).numpy()
        # alone rather than in a batch of 4: equal up to float rounding
        assert np.abs(own.astype(int) - image).max() <= 1


def test_a_bad_label_mid_way_is_named_and_nothing_is_left(models, tmp_path):  # noqa: F811
    root, spade, _ = models
    src = tmp_path / 'src'
    shutil.copytree(root, src)
    names = [r.name for r in read_meta(src)]
    bad = label_path(src, names[5])  # in the second batch of 4
    bad.write_bytes(b'not a png')
    for workers, writers in [(0, 0), (2, 2)]:
        out = tmp_path / f'out{workers}'
        with pytest.raises(ValueError, match=rf'{bad.name}: missing or not a label map'):
            translate_layout(spade, src, out, batch_size=4, workers=workers,
                             writers=writers, progress=False)
        assert left_behind(out) == []
    # a value beyond the maps' classes, read by a thread: named, and an existing output
    # replaced with overwrite stays as it was
    label = cv2.imread(str(label_path(root, names[5])), cv2.IMREAD_UNCHANGED)
    label[3, 3] = 200
    assert cv2.imwrite(str(bad), label)
    out = tmp_path / 'kept'
    translate_layout(spade, root, out, batch_size=4, progress=False)
    before = tree(out)
    with pytest.raises(ValueError, match=rf'{bad.name}: label value 200 outside 0\.\.'):
        translate_layout(spade, src, out, batch_size=4, workers=2, writers=2,
                         overwrite=True, progress=False)
    assert tree(out) == before and left_behind(out) == ['kept']


def test_a_failed_write_is_raised_before_the_swap(models, tmp_path, monkeypatch):  # noqa: F811
    """A write that fails in a writer thread (a stand-in for a full disk) is raised by
    the call, naming its file, once no thread writes any more; no folder is left."""
    root, spade, acgan = models
    victim = read_meta(root)[6].name
    real = apis.write_pair

    def failing(out, name, image, label):
        if name in (victim, 'syn_g3_00000'):
            raise OSError(f'{label_path(out, name)}: No space left on device')
        real(out, name, image, label)
    monkeypatch.setattr(apis, 'write_pair', failing)
    out = tmp_path / 't'
    with pytest.raises(OSError, match=rf'{victim}.png: No space left'):
        translate_layout(spade, root, out, batch_size=2, workers=2, writers=2,
                         progress=False)
    assert left_behind(out) == []
    out = tmp_path / 's'
    with pytest.raises(OSError, match=r'syn_g3_00000.png: No space left'):
        synthesize_pairs(acgan, spade, {2: 3, 3: 2}, out, batch_size=2, writers=2,
                         progress=False)
    assert left_behind(out) == []


def test_auto_batch_size_and_bad_options(models, tmp_path, monkeypatch):  # noqa: F811
    root, spade, _ = models
    cpu, cuda = torch.device('cpu'), torch.device('cuda')
    assert apis._resolve_batch_size('auto', cpu) == 8
    assert apis._resolve_batch_size('auto', cuda) == 32
    assert apis._resolve_batch_size(np.int64(3), cpu) == 3
    assert apis._resolve_threads('auto', cpu, 'workers') == 0
    assert apis._resolve_threads('auto', cpu, 'writers') == 0
    assert 1 <= apis._resolve_threads('auto', cuda, 'workers') <= 4
    assert 2 <= apis._resolve_threads('auto', cuda, 'writers') <= 16
    # 'auto' on the CPU translates in batches of 8 (10 maps: 8 + 2)
    sizes = translate_calls(monkeypatch, spade)
    rows = translate_layout(spade, root, tmp_path / 'auto', progress=False)
    assert sizes == [8, 2]
    translate_layout(spade, root, tmp_path / 'eight', batch_size=8, progress=False)
    assert tree(tmp_path / 'auto') == tree(tmp_path / 'eight') and len(rows) == 10
    for bad in (0, -2, 2.5, True, 'big', None):
        with pytest.raises(ValueError, match=re.escape(
                f"batch_size must be a whole number >= 1 or 'auto', got {bad!r}")):
            translate_layout(spade, root, tmp_path / 'x', batch_size=bad, progress=False)
    with pytest.raises(ValueError, match=r"workers must be a whole number >= 0 or 'auto', "
                                         r'got -1'):
        translate_layout(spade, root, tmp_path / 'x', workers=-1, progress=False)
    with pytest.raises(ValueError, match=r"writers must be .* got 'many'"):
        synthesize_pairs(spade, spade, {1: 1}, tmp_path / 'x', writers='many',
                         progress=False)
    assert not (tmp_path / 'x').exists()


def test_tools_take_auto_and_name_bad_values(capsys):
    base = ['cfg.py', 'ckpt.pth', '--labels', 'in', '--out', 'out']
    args = translate.parse_args(base)
    assert (args.batch_size, args.workers, args.writers) == ('auto', 'auto', 'auto')
    args = translate.parse_args(base + ['--batch-size', '16', '--workers', '0',
                                        '--writers', '3'])
    assert (args.batch_size, args.workers, args.writers) == (16, 0, 3)
    pair = ['--label-config', 'a.py', '--label-checkpoint', 'a.pth', '--spade-config',
            's.py', '--spade-checkpoint', 's.pth', '--num-per-grade', '1', '--out', 'o']
    args = synthesize.parse_args(pair)
    assert (args.batch_size, args.writers) == ('auto', 'auto')
    assert synthesize.parse_args(pair + ['--batch-size', '4']).batch_size == 4
    for tool, argv, message in [
            (translate, base + ['--batch-size', 'big'],
             "argument --batch-size: expected 'auto' or a whole number, got 'big'"),
            (translate, base + ['--batch-size', '0'],
             'argument --batch-size: must be at least 1, got 0'),
            (translate, base + ['--workers', '-1'],
             'argument --workers: must be at least 0, got -1'),
            (synthesize, pair + ['--writers', 'x'],
             "argument --writers: expected 'auto' or a whole number, got 'x'"),
            (synthesize, pair + ['--batch-size', '-3'],
             'argument --batch-size: must be at least 1, got -3')]:
        with pytest.raises(SystemExit):
            tool.parse_args(argv)
        assert message in capsys.readouterr().err


def test_synthesize_pairs_same_files_with_writer_threads(models, tmp_path):  # noqa: F811
    _, spade, acgan = models
    counts = {0: 3, 2: 2, 4: 4}
    rows = synthesize_pairs(acgan, spade, counts, tmp_path / 'seq', seed=5, batch_size=2,
                            writers=0, progress=False)
    assert len(rows) == 9
    expected = tree(tmp_path / 'seq')
    assert 'grid.png' in expected and len(expected) == 3 + 2 * 9
    assert synthesize_pairs(acgan, spade, counts, tmp_path / 'thr', seed=5, batch_size=2,
                            writers=2, progress=False) == rows
    assert tree(tmp_path / 'thr') == expected
    # 'auto' is 8 on the CPU: the same files as 8 given
    auto = synthesize_pairs(acgan, spade, counts, tmp_path / 'auto', seed=5, writers=3,
                            progress=False)
    synthesize_pairs(acgan, spade, counts, tmp_path / 'eight', seed=5, batch_size=8,
                     writers=0, progress=False)
    assert auto == rows and tree(tmp_path / 'auto') == tree(tmp_path / 'eight')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_threads_write_the_same_files(spade_trained, tmp_path):  # noqa: F811
    """On CUDA (pinned copies, a batch in flight while the last one is written): the
    same files with the reading and writing threads ('auto') as without."""
    root, work, config = spade_trained
    spade = init_model(load_config(str(config)), str(work / 'iter_3.pth'), 'cuda')
    rows = translate_layout(spade, root, tmp_path / 'seq', batch_size=3, workers=0,
                            writers=0, progress=False)
    assert translate_layout(spade, root, tmp_path / 'thr', batch_size=3,
                            progress=False) == rows
    assert tree(tmp_path / 'thr') == tree(tmp_path / 'seq')


# ------------------------------------------------------------------ several devices
def test_shares_are_whole_batches_in_order():
    assert apis._shares(10, 2, 4) == [(0, 8), (8, 10)]       # 3 batches: 2 + 1
    assert apis._shares(10, 3, 4) == [(0, 4), (4, 8), (8, 10)]
    assert apis._shares(3, 4, 4) == [(0, 3)]                   # fewer batches than devices
    assert apis._shares(17, 4, 2) == [(0, 6), (6, 10), (10, 14), (14, 17)]


def test_spread_over_two_processes_writes_what_one_device_writes(models, spade_trained,
                                                                 tmp_path, capsys):  # noqa: F811
    """translate_layout_spread on two CPU 'devices' (two spawned processes) writes the
    same pairs and rows as translate_layout in this process; the bar counts them all."""
    root, spade, _ = models
    _, work, config = spade_trained
    cfg, ckpt = load_config(str(config)), str(work / 'iter_3.pth')
    rows = translate_layout(spade, root, tmp_path / 'one', batch_size=4, progress=False)
    capsys.readouterr()
    spread = apis.translate_layout_spread(cfg, ckpt, ['cpu', 'cpu'], root, tmp_path / 'two',
                                          batch_size=4)
    assert spread == rows
    assert '10/10 ' in last_bar(capsys.readouterr().err, 'translating on 2 devices')
    one, two = tree(tmp_path / 'one'), tree(tmp_path / 'two')
    assert sorted(one) == sorted(two)
    for name in one:
        if name.startswith('images/'):  # the same batches; allow a rounding step
            a = cv2.imdecode(np.frombuffer(one[name], np.uint8), cv2.IMREAD_COLOR)
            b = cv2.imdecode(np.frombuffer(two[name], np.uint8), cv2.IMREAD_COLOR)
            assert np.abs(a.astype(int) - b).max() <= 1, name
        else:
            assert one[name] == two[name], name
    # the tool's --devices does the same
    assert translate.main([str(config), ckpt, '--labels', str(root), '--out',
                           str(tmp_path / 'tool'), '--batch-size', '4', '--devices', 'cpu,cpu',
                           '--no-progress']) == 0
    assert [r.name for r in read_meta(tmp_path / 'tool')] == [r.name for r in rows]


def test_spread_names_a_bad_map_and_writes_nothing(spade_trained, tmp_path):  # noqa: F811
    root, work, config = spade_trained
    src = tmp_path / 'src'
    shutil.copytree(root, src)
    bad = label_path(src, read_meta(src)[-1].name)  # in the second process's share
    bad.write_bytes(b'not a png')
    out = tmp_path / 'out'
    with pytest.raises(Exception, match=re.escape(str(bad))):
        apis.translate_layout_spread(load_config(str(config)), str(work / 'iter_3.pth'),
                                     ['cpu', 'cpu'], src, out, batch_size=4, progress=False)
    assert left_behind(out) == []


def test_devices_are_checked():
    with pytest.raises(apis.UserValueError, match='no device'):
        apis.check_devices('')
    with pytest.raises(apis.UserValueError, match=r"'gpu:0' is not a device name"):
        apis.check_devices(['gpu:0'])
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(apis.UserValueError,
                       match=rf'cuda:{visible} asked for, but this process sees {visible} CUDA'):
        apis.check_devices(f'cpu,cuda:{visible}')
    assert apis.check_devices('cpu, cpu') == ['cpu', 'cpu']


def test_spread_processes_share_the_cpus():
    # 16 CPUs, 8 GPU processes: 2 readers and 2 writers each (one process alone: 4, 14)
    assert apis._spread_threads(16, 8, True, 'auto', 'auto') == (2, 2, 2)
    assert apis._spread_threads(16, 2, True, 'auto', 'auto') == (8, 4, 7)
    assert apis._spread_threads(16, 2, True, 1, 3) == (8, 1, 3)  # given: as they are
    # on the CPU: each process its share of torch threads, no reader or writer threads
    assert apis._spread_threads(2, 2, False, 'auto', 'auto') == (1, 'auto', 'auto')
