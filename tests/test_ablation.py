"""tools/synthetic_ablation.py: runs, tables, plot, skipping finished runs."""
import csv
import sys

from conftest import REPO, tiny_seg_options, write_config

sys.path.insert(0, str(REPO / 'tools'))
import synthetic_ablation  # noqa: E402


def test_ablation_runs_every_fraction_and_seed_then_skips_them(phantom_root, synthetic_root,
                                                               tmp_path, capsys):
    config = write_config(REPO / 'configs/seg/unet_fundus_demo.py', tmp_path / 'seg.py',
                          tiny_seg_options(phantom_root))
    work = tmp_path / 'abl'
    # --equal-updates: fraction 0.5 trains half the epochs (2 -> 1) of the real-only run.
    argv = [str(config), '--fractions', '0', '0.5', '--seeds', '0', '1', '--work-dir',
            str(work), '--max-epochs', '2', '--equal-updates',
            '--cfg-options', f'synthetic_root={synthetic_root}']
    assert synthetic_ablation.main(argv) == 0
    out = capsys.readouterr().out
    assert '[run 1/4] fraction 0, seed 0' in out and '[run 4/4] fraction 0.5, seed 1' in out
    with open(work / 'results.csv') as f:
        table = list(csv.DictReader(f))
    rows = [r for r in table if r['row'] == 'run']
    summary = [r for r in table if r['row'] == 'summary']
    assert [(r['fraction'], r['seed']) for r in summary] == [('0.0', 'all'), ('0.5', 'all')]
    assert summary[1]['pixel_f1_verdict'] in ('better', 'worse', 'not distinguishable')
    assert summary[1]['pixel_f1_diff_combined_low'] != ''
    assert [(r['fraction'], r['seed'], r['num_synthetic']) for r in rows] == [
        ('0.0', '0', '0'), ('0.0', '1', '0'), ('0.5', '0', '16'), ('0.5', '1', '16')]
    assert all(r['num_real'] == '16' for r in rows)
    assert [r['epochs'] for r in rows] == ['2', '2', '1', '1']
    assert all(r['paper_f1'] != '' and r['image_lesion_mean_f1'] != ''
               and r['pixel_lesion_mean_f1'] != '' for r in rows)
    md = (work / 'results.md').read_text()
    assert '| 50 % | 16 + 16 | 1 | 2 |' in md and '| 0 % | 16 + 0 | 2 | 2 |' in md
    assert md.startswith('**Verdicts**') and '- 50 % synthetic: ' in md
    assert (work / 'p50_s1' / 'per_image_pixel.npz').is_file()
    assert (work / 'results.png').stat().st_size > 1000
    # A rerun trains nothing: every run is read back from its metrics.json.
    assert synthetic_ablation.main(argv) == 0
    assert capsys.readouterr().out.count('done before') == 4
