"""Outputs are written whole or not at all: --overwrite never destroys the old data before
the new is complete, a stopped run leaves the old output as it was, and a folder that is
not one of ours is refused unless the user says so."""
import sys
from pathlib import Path

import pytest

from fundus_plugins.datasets.layout import image_path, read_meta
from fundus_plugins.datasets.prepare import atomic_root
from fundus_plugins.phantom import write_phantom_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tools'))
import make_phantom  # noqa: E402
import prepare_data  # noqa: E402


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*'))
            if p.is_file()}


def _no_partials(parent: Path):
    assert not [p.name for p in parent.iterdir() if p.name.startswith('.')]


def test_prepare_overwrite_with_a_corrupt_input_keeps_the_old_dataset(fgadr_tree, tmp_path):
    fgadr, truth = fgadr_tree
    od_file = tmp_path / 'discs.csv'
    od_file.write_text('image,cx,cy,rx,ry,angle\n' + ''.join(
        f'{name},40,48,9,11,0\n' for name in truth))
    out = tmp_path / 'prepared'
    args = ['--fgadr', str(fgadr), '--out', str(out), '--size', '64', '--od-file', str(od_file)]
    assert prepare_data.main(args) == 0
    before = _snapshot(out)
    bad = fgadr / 'Seg-set' / 'Original_Images' / '0003_C.png'
    bad.write_bytes(b'not an image')
    with pytest.raises(Exception, match='0003_C.png'):
        prepare_data.main(args + ['--overwrite'])
    assert _snapshot(out) == before  # every old file as it was
    assert len(read_meta(out)) == 6
    _no_partials(tmp_path)


def test_make_phantom_overwrite_with_a_bad_size_keeps_the_old_dataset(tmp_path):
    out = tmp_path / 'ph'
    assert make_phantom.main(['--num', '6', '--size', '32', '--out', str(out),
                              '--no-preview']) == 0
    before = _snapshot(out)
    with pytest.raises(ValueError, match='size must be at least 16 pixels, got 8'):
        make_phantom.main(['--num', '6', '--size', '8', '--out', str(out), '--overwrite'])
    with pytest.raises(SystemExit):  # argparse: "argument --size: must be at least 1, got 0"
        make_phantom.main(['--num', '6', '--size', '0', '--out', str(out), '--overwrite'])
    assert _snapshot(out) == before
    _no_partials(tmp_path)


def test_a_folder_of_other_files_is_refused_and_overwrite_replaces_it_whole(tmp_path):
    out = tmp_path / 'mine'
    (out / 'images').mkdir(parents=True)
    (out / 'images' / 'holiday.png').write_bytes(b'x')
    with pytest.raises(FileExistsError, match=r"is not empty \(1 entries, e.g. 'images'\) "
                                              r"and is not a prepared dataset"):
        write_phantom_dataset(out, num=5, size=32, progress=False)
    assert (out / 'images' / 'holiday.png').exists()
    rows = write_phantom_dataset(out, num=5, size=32, progress=False, overwrite=True)
    # The old files are gone, not mixed with the new ones.
    assert sorted(p.stem for p in (out / 'images').iterdir()) == sorted(r.name for r in rows)
    # A second overwrite with fewer images leaves no stale ones behind either.
    rows = write_phantom_dataset(out, num=3, size=32, progress=False, overwrite=True)
    assert len(list((out / 'images').iterdir())) == 3 == len(read_meta(out))
    assert all(image_path(out, r.name).is_file() for r in rows)
    _no_partials(tmp_path)


def test_a_stopped_write_leaves_the_old_output_and_the_next_run_cleans_up(tmp_path):
    out = tmp_path / 'root'
    write_phantom_dataset(out, num=4, size=32, progress=False)
    before = _snapshot(out)
    with pytest.raises(KeyboardInterrupt):
        with atomic_root(out, overwrite=True) as tmp:
            (tmp / 'half.txt').write_text('half')
            raise KeyboardInterrupt
    assert _snapshot(out) == before
    _no_partials(tmp_path)
    # A partial folder left by a killed process (no cleanup ran) is removed, and said so.
    stale = tmp_path / '.root.partial'
    stale.mkdir()
    (stale / 'junk').write_text('junk')
    said = []
    with atomic_root(out, overwrite=True, log=said.append) as tmp:
        (tmp / 'meta.csv').write_text('name\n')
    assert said and 'interrupted run' in said[0]
    assert sorted(p.name for p in out.iterdir()) == ['meta.csv']
    _no_partials(tmp_path)
