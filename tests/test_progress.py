"""Progress bars of the tools that loop over many files or samples: what each bar counts
(description, final n/n) on stderr with ``progress=True``, nothing on stderr with
``progress=False`` or ``--no-progress``, and the same files either way."""
import json
import sys

import pytest
import torch

from fundus_plugins.apis import (init_model, synthesize_pairs, translate_layout,
                                 write_label_samples)
from fundus_plugins.config import load_config
from fundus_plugins.datasets import read_meta
from fundus_plugins.evaluation.synthetic_quality import measure_synthetic

from conftest import REPO
# The tiny SPADE and ACGAN runs of test_spade.py (3 and 1 iterations on a 10-image
# phantom) and the stand-in Inception network of test_synthetic_quality.py.
from test_spade import acgan_trained, spade_trained  # noqa: F401
from test_synthetic_quality import _FakeInception

sys.path.insert(0, str(REPO / 'tools'))
import balance  # noqa: E402
import measure_synthetic as measure_tool  # noqa: E402
import sample_labels  # noqa: E402
import synthesize  # noqa: E402
import translate  # noqa: E402


def same_files(a, b):
    """Whether two prepared layouts hold the same meta rows and the same image and label
    bytes."""
    rows = read_meta(a)
    if [r.name for r in rows] != [r.name for r in read_meta(b)]:
        return False
    for sub in ('images', 'labels'):
        for r in rows:
            if (a / sub / f'{r.name}.png').exists() != (b / sub / f'{r.name}.png').exists():
                return False
            if (a / sub / f'{r.name}.png').exists() and \
                    (a / sub / f'{r.name}.png').read_bytes() != \
                    (b / sub / f'{r.name}.png').read_bytes():
                return False
    return True


def bar_line(err: str, desc: str) -> str:
    """The last state of the bar described by ``desc`` in captured stderr (tqdm redraws a
    bar with carriage returns)."""
    states = [s for s in err.replace('\n', '\r').split('\r') if s.startswith(f'{desc}:')]
    assert states, f'no bar {desc!r} in {err!r}'
    return states[-1]


@pytest.fixture(scope='module')
def models(spade_trained, acgan_trained):  # noqa: F811
    root, work, spade_config = spade_trained
    acgan_config, acgan_ckpt = acgan_trained
    spade = init_model(load_config(str(spade_config)), str(work / 'iter_3.pth'))
    acgan = init_model(load_config(str(acgan_config)), str(acgan_ckpt))
    return root, spade, acgan


def test_translate_layout_counts_the_images(models, tmp_path, capsys):
    root, spade, _ = models
    capsys.readouterr()
    rows = translate_layout(spade, root, tmp_path / 'on', batch_size=4)
    err = capsys.readouterr().err
    assert len(rows) == 10
    last = bar_line(err, 'translating')
    assert '10/10' in last and 'img' in last
    again = translate_layout(spade, root, tmp_path / 'off', batch_size=4, progress=False)
    assert again == rows
    assert capsys.readouterr().err == ''
    assert same_files(tmp_path / 'on', tmp_path / 'off')


def test_synthesize_pairs_counts_maps_then_pairs(models, tmp_path, capsys):
    _, spade, acgan = models
    counts = {0: 2, 3: 1, 4: 0}
    capsys.readouterr()
    rows = synthesize_pairs(acgan, spade, counts, tmp_path / 'on', seed=2, batch_size=2)
    err = capsys.readouterr().err
    assert len(rows) == 3
    maps, pairs = bar_line(err, 'label maps'), bar_line(err, 'synthesizing')
    assert '3/3' in maps and 'map' in maps and '3/3' in pairs and 'pair' in pairs
    # one bar per phase, not one per grade or batch
    assert err.index('label maps:') < err.index('synthesizing:')
    assert err.count('label maps:   0%') == 1 and err.count('synthesizing:   0%') == 1
    assert synthesize_pairs(acgan, spade, counts, tmp_path / 'off', seed=2, batch_size=2,
                            progress=False) == rows
    assert capsys.readouterr().err == ''
    assert same_files(tmp_path / 'on', tmp_path / 'off')


def test_label_samples_one_bar_over_grades_and_batches(models, tmp_path, capsys):
    _, _, acgan = models
    capsys.readouterr()
    rows = write_label_samples(acgan, [1, 2], 3, tmp_path / 'on', scale=1.0, batch_size=2)
    err = capsys.readouterr().err
    assert len(rows) == 6 and '6/6' in bar_line(err, 'label maps')
    assert err.count('label maps:   0%') == 1
    write_label_samples(acgan, [1, 2], 3, tmp_path / 'off', scale=1.0, batch_size=2,
                        progress=False)
    assert capsys.readouterr().err == ''
    assert same_files(tmp_path / 'on', tmp_path / 'off')


def test_measure_synthetic_bars_per_set_and_step(seg_trained, phantom_root, tmp_path,
                                                 capsys):
    config, checkpoint, _ = seg_trained
    net = tmp_path / 'incep.pt'
    torch.jit.script(_FakeInception()).save(str(net))
    cfg = load_config(str(config))
    capsys.readouterr()
    on = measure_synthetic(cfg, str(checkpoint), str(phantom_root), str(phantom_root),
                           str(net), batch_size=4)
    err = capsys.readouterr().err
    # 20 phantom images in all, 4 of them in the test split
    for desc, n in [('segmenting synthetic', 20), ('segmenting real test', 4),
                    ('reading synthetic', 20), ('reading real test', 4),
                    ('Inception synthetic', 20), ('Inception real test', 4)]:
        assert f'{n}/{n}' in bar_line(err, desc), desc
        assert err.count(f'{desc}:   0%') == 1, desc  # one bar each
    off = measure_synthetic(cfg, str(checkpoint), str(phantom_root), str(phantom_root),
                            str(net), batch_size=4, progress=False)
    assert capsys.readouterr().err == ''
    assert json.dumps(off, sort_keys=True) == json.dumps(on, sort_keys=True)  # NaN too
    # Without the network no features are computed, so no Inception bar.
    measure_synthetic(cfg, str(checkpoint), str(phantom_root), str(phantom_root), None,
                      batch_size=4)
    err = capsys.readouterr().err
    assert '20/20' in bar_line(err, 'reading synthetic') and 'Inception' not in err


def test_tools_pass_no_progress_through(spade_trained, acgan_trained,  # noqa: F811
                                        seg_trained, phantom_root, tmp_path, capsys):
    root, work, spade_config = spade_trained
    acgan_config, acgan_ckpt = acgan_trained
    seg_config, seg_ckpt, _ = seg_trained
    pair = ['--label-config', str(acgan_config), '--label-checkpoint', str(acgan_ckpt),
            '--spade-config', str(spade_config),
            '--spade-checkpoint', str(work / 'iter_3.pth')]
    runs = {
        'translate': (translate, [str(spade_config), str(work / 'iter_3.pth'), '--labels',
                                  str(root), '--out', str(tmp_path / 't')]),
        'sample_labels': (sample_labels, [str(acgan_config), str(acgan_ckpt),
                                          '--num-per-grade', '1', '--fov', 'generated',
                                          '--out', str(tmp_path / 's')]),
        'synthesize': (synthesize, pair + ['--num-per-grade', '1', '--grades', '2', '3',
                                           '--fov', 'generated',
                                           '--out', str(tmp_path / 'y')]),
        'balance': (balance, pair + ['--real', str(root), '--target', '3', '--out',
                                     str(tmp_path / 'b')]),
        'measure_synthetic': (measure_tool, [str(seg_config), str(seg_ckpt), '--synthetic',
                                             str(phantom_root), '--real', str(phantom_root),
                                             '--out', str(tmp_path / 'q')]),
    }
    capsys.readouterr()
    for name, (tool, argv) in runs.items():
        assert tool.main(argv + ['--no-progress']) == 0, name
        captured = capsys.readouterr()
        # no bar (every tqdm bar draws '%|'); stderr may still carry the libraries'
        # warnings when pytest does not record them
        assert '%|' not in captured.err, (name, captured.err)
        assert captured.out  # the tool's own summary still goes to stdout
    # without the flag the bar is there (the library's default)
    assert translate.main(runs['translate'][1] + ['--overwrite']) == 0
    assert '10/10' in bar_line(capsys.readouterr().err, 'translating')
