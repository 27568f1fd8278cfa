"""tools/sample_labels.py: memory flat in the count (the noise is drawn a batch at a time,
the same numbers as one draw), and a count whose maps cannot fit on the disk refused
before anything is written, in one line."""
import sys

import numpy as np
import pytest
import torch

import fundus_plugins.apis as apis
from fundus_plugins.apis import RandomRows, sample_label_maps
from _tool import run_tool
from fundus_plugins.config import build_model, load_config
from fundus_plugins.models.label_gan import maps_with_fov

from conftest import REPO

sys.path.insert(0, str(REPO / 'tools'))
import sample_labels  # noqa: E402

ACGAN = str(REPO / 'configs/acgan_labels_demo.py')


@pytest.mark.parametrize('width, n, chunk', [(128, 100, 32), (100, 37, 3), (7, 41, 5),
                                             (7, 3, 1), (None, 50, 7)])
def test_random_rows_are_one_draw_in_pieces(width, n, chunk):
    whole = torch.Generator().manual_seed(5)
    expect = torch.randn(n, width, generator=whole) if width else torch.rand(n, generator=whole)
    after = torch.rand(3, generator=whole)  # what the generator gives next
    rows = RandomRows(torch.Generator().manual_seed(5), n, width,
                      'normal' if width else 'uniform', chunk)
    got, left, sizes = [], n, [5, 1, 13, 2]
    while left:
        got.append(rows.take(min(sizes[len(got) % 4], left)))
        left -= len(got[-1])
    assert torch.equal(torch.cat(got), expect)
    assert torch.equal(torch.rand(3, generator=rows.generator_after()), after)
    with pytest.raises(ValueError, match='more than its'):
        rows.take(1)


@pytest.fixture(scope='module')
def acgan(tmp_path_factory):
    """The demo label ACGAN, untrained, and a checkpoint of it."""
    cfg = load_config(ACGAN)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    ckpt = tmp_path_factory.mktemp('acgan') / 'acgan.pth'
    torch.save({'meta': {'cfg': cfg.pretty_text}, 'state_dict': model.state_dict()}, ckpt)
    return model, ckpt


def test_maps_are_those_of_one_draw_and_memory_does_not_follow_the_count(acgan, monkeypatch):
    model, _ = acgan
    n, batch = 20, 6
    # What sample_label_maps drew before: all the grade's noise, then all its flips.
    gen = torch.Generator().manual_seed(7 * 1000 + 3)
    noise = torch.randn(n, model.noise_size, generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5
    rng = np.random.default_rng([7, 3])
    expect = []
    with torch.no_grad():
        for start in range(0, n, batch):
            probs = model.sample(torch.full((len(noise[start:start + batch]),), 3),
                                 noise=noise[start:start + batch],
                                 flips=flips[start:start + batch])
            expect += list(maps_with_fov(probs.float(), 1.0, 'fitted', None, rng).numpy())
    # Now with noise chunks of 4 rows, every torch draw recorded.
    drawn = []
    real_randn = torch.randn

    def randn(*size, **kw):
        drawn.append(size[0])
        return real_randn(*size, **kw)

    monkeypatch.setattr(apis, 'NOISE_CHUNK', 4)
    monkeypatch.setattr(apis.torch, 'randn', randn)
    with torch.no_grad():
        got = [m for _, _, m in sample_label_maps(model, [3], n, 1.0, 7, batch,
                                                  progress=False, fov='fitted')]
    assert len(got) == n and all((a == b).all() for a, b in zip(got, expect))
    assert max(drawn) <= 4  # never the whole count's noise at once
    monkeypatch.setattr(apis.torch, 'randn', real_randn)
    # The first maps of a count whose noise would need 512 GB (1e9 x 128 floats) come
    # without allocating it (the flips of such a count take long to reach: only its first
    # batch's noise is drawn here).
    rows = RandomRows(torch.Generator().manual_seed(0), 10 ** 9, model.noise_size, 'normal')
    assert rows.take(batch).shape == (batch, model.noise_size)


def test_a_count_that_cannot_fit_on_the_disk_is_refused_before_anything(acgan, tmp_path,
                                                                        monkeypatch, capsys):
    _, ckpt = acgan
    out = tmp_path / 'maps'
    argv = [ACGAN, str(ckpt), '--num-per-grade', str(10 ** 9), '--out', str(out),
            '--fov', 'fitted', '--no-progress']
    monkeypatch.setattr(sys, 'argv', ['tools/sample_labels.py', *argv])
    capsys.readouterr()
    assert run_tool(lambda: sample_labels.main(argv), 'atomic') == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err and 'allocate' not in err
    line = [ln for ln in err.splitlines() if ln.startswith('error: ')][-1]
    assert line.startswith(f'error: {out}: 5000000000 label maps of 128 x 128 px need about ')
    assert 'free; ask for fewer (--num-per-grade), or write to another disk (nothing was ' \
           'written)' in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # A count that fits is not refused (the small one of the demo).
    assert sample_labels.main([ACGAN, str(ckpt), '--num-per-grade', '2', '--out', str(out),
                               '--fov', 'fitted', '--no-progress', '--grades', '0', '4',
                               '--scale', '1']) == 0
    assert len(list((out / 'labels').iterdir())) == 4
