"""The time plan's arithmetic (fundus_plugins/pipeline/plan.py): each stage's estimate
from hand-made probe measurements, the segmentation runs and their updates, and their
spread over parallel lanes and Slurm arrays. The probe itself and --plan run in
test_pipeline.py::test_whole_pipeline_on_a_micro_config."""
import pytest
from mmengine.config import Config

from fundus_plugins.pipeline.plan import estimate, format_plan, makespan, seg_runs

from conftest import REPO

# A probe of 8 iterations per model (2 warm-up), 20 maps, 40 training phantom images.
M = dict(
    wall_s=60.0, device='CPU (2 torch threads)',
    counts=dict(phantom=67, maps=20, train=40, test=27, iters=8),
    steps={'data': {'1': 0.5, '2': 0.17, 'total': 0.67},
           'grades': {'1': 2.0, 'total': 2.0},
           'labels': {'1': 10.0, '2': 1.0, '3': 3.0, 'total': 14.0},
           'images': {'1': 9.0, '2': 2.0, 'total': 11.0},
           'gates': {'1': 8.0, '2': 1.0, 'total': 9.0}},
    models={'label ACGAN': dict(iter_s=0.5, iters=8, peak_mem_mb=None),
            'SPADE': dict(iter_s=1.0, iters=8, peak_mem_mb=2048.0),
            'U-Net': dict(iter_s=0.1, iters=10, peak_mem_mb=1024.0,
                          test_s_per_image=0.05, test_s=1.35)})


def _cfg(**seg):
    cfg = Config.fromfile(str(REPO / 'configs/pipeline/demo.py'))
    cfg.data.update(num=300, test_fraction=0.6)  # 120 real training, 180 test
    cfg.labels.update(max_iters=500, num_per_grade=10)
    cfg.images.update(max_iters=400)
    cfg.segmentation.update(dict(fractions=[0, 0.5], seeds=[0, 1], max_epochs=10,
                                 protocols=['fixed_epochs', 'equal_updates']), **seg)
    return cfg


def test_each_stage_is_its_measured_rates_times_its_work():
    plan = estimate(_cfg(), M, real=120, test=180)
    assert plan['data']['seconds'] == pytest.approx(0.67 / 67 * 300)
    assert plan['grades']['seconds'] == pytest.approx(2.0)
    # labels: fixed 10 - 8 x 0.5 = 6 s, 500 x 0.5 s, (1 + 3) s / 20 maps x 50 maps
    assert plan['labels']['seconds'] == pytest.approx(6 + 250 + 10)
    # images: fixed 9 - 8 = 1 s, 400 x 1 s, 2 s / 20 maps x 50
    assert plan['images']['seconds'] == pytest.approx(1 + 400 + 5)
    assert plan['images']['peak_mem_mb'] == 2048.0
    # The U-Net (demo config: batch 4 at these options): the probe's epoch of 40 images
    # is 10 updates; fixed 8 - 10 x 0.1 - 1.35 = 5.65 s; 180 test images x 0.05 s = 9 s.
    real_only = 5.65 + 0.1 * 30 * 10 + 9
    # Label consistency: the probe's 1.0 s is less than its 20 pairs + 27 test images at
    # 0.05 s, so no fixed cost; here 50 pairs + 180 test images.
    assert plan['gates']['seconds'] == pytest.approx(real_only + (50 + 180) * 0.05)
    m = dict(M, steps=dict(M['steps'], gates={'1': 8.0, '2': 4.0, 'total': 12.0}))
    assert estimate(_cfg(), m, 120, 180)['gates']['seconds'] == pytest.approx(
        real_only + (4.0 - 47 * 0.05) + (50 + 180) * 0.05)
    # Runs of the segmentation stage: fixed epochs p=0.5 (240 images, 60 updates x 10
    # epochs) for seeds 0 and 1, equal updates p=0.5 (5 epochs) for both, and the
    # real-only run of seed 1 (seed 0's is the gates stage's), one after another.
    runs = seg_runs(_cfg(), 120)
    assert sorted((p, f, s, n, e) for _, p, f, s, n, e in runs) == [
        ('equal_updates', 0.5, 0, 240, 5), ('equal_updates', 0.5, 1, 240, 5),
        ('fixed_epochs', 0.0, 1, 120, 10),
        ('fixed_epochs', 0.5, 0, 240, 10), ('fixed_epochs', 0.5, 1, 240, 10)]
    each = 5.65 + 9
    assert plan['segmentation']['seconds'] == pytest.approx(
        5 * each + 0.1 * (600 * 2 + 300 * 2 + 300))
    assert '5 U-Net runs (2100 updates in all' in plan['segmentation']['work']
    assert not plan['report']['probed']
    table = format_plan(dict(device='cpu', probe_s=60, real=120, test=180, stages=plan,
                             total_s=sum(s['seconds'] for s in plan.values())),
                        {'labels': 300.0})
    assert '| labels | 500 iterations; 50 maps sampled and compared | 4 min 26 s | - | ' \
           '5 min 00 s | 1.13 |' in table
    assert '| images | SPADE 400 iterations, 50 translations | 6 min 46 s | 2.0 GiB |' in table


def test_parallel_lanes_and_slurm_arrays_shorten_the_segmentation_stage():
    assert makespan([10, 10, 10, 10], 2) == 20
    assert makespan([30, 10, 10, 10], 2) == 30  # the longest run bounds it
    assert makespan([5, 4, 3], 1) == 12
    one = estimate(_cfg(), M, 120, 180)['segmentation']
    two = estimate(_cfg(parallel=2), M, 120, 180)['segmentation']
    array = estimate(_cfg(launcher='slurm', slurm=dict(partition='gpu')), M, 120,
                     180)['segmentation']
    capped = estimate(_cfg(launcher='slurm', slurm=dict(partition='gpu', max_running=3)),
                      M, 120, 180)['segmentation']
    longest = 5.65 + 9 + 0.1 * 600
    assert array['seconds'] == pytest.approx(longest)
    assert two['seconds'] < one['seconds'] and two['seconds'] >= one['seconds'] / 2
    assert array['seconds'] <= capped['seconds'] <= two['seconds']
    assert '2 at a time' in two['work'] and 'no limit on tasks at once' in array['work']


def test_gan_stages_on_several_processes_divide_their_iterations():
    cfg = _cfg()
    cfg.labels.gpus = 2
    plan = estimate(cfg, M, 120, 180)
    assert plan['labels']['seconds'] == pytest.approx(6 + 250 / 2 + 10)
    assert '500 iterations on 2 processes (probe rate / 2)' in plan['labels']['work']
    assert plan['images']['seconds'] == pytest.approx(1 + 400 + 5)  # images.gpus unset
    # images.gpus = 4 on CUDA: SPADE trains on 4 processes and translates on 4 devices
    cfg.images.update(gpus=4, device='cuda')
    plan = estimate(cfg, M, 120, 180)
    assert plan['images']['seconds'] == pytest.approx(1 + 400 / 4 + 5 / 4)
    assert '50 translations on 4 devices' in plan['images']['work']
    # on the CPU the processes train, but translation stays on the one device
    cfg.images.device = 'cpu'
    assert estimate(cfg, M, 120, 180)['images']['seconds'] == pytest.approx(1 + 400 / 4 + 5)
    cfg.images.translate_devices = ['cpu', 'cpu']  # named: spread even there
    assert estimate(cfg, M, 120, 180)['images']['seconds'] == pytest.approx(
        1 + 400 / 4 + 5 / 2)


def test_translation_devices_and_the_images_fingerprint():
    from fundus_plugins.pipeline.stages import images_hashed, translation_devices
    cfg = _cfg()
    assert translation_devices(cfg.images) == ['cpu']
    cfg.images.update(device='cuda', gpus=3)
    assert translation_devices(cfg.images) == ['cuda:0', 'cuda:1', 'cuda:2']
    before = images_hashed(cfg)
    cfg.images.translate_devices = ['cuda:1', 'cuda:3']
    assert translation_devices(cfg.images) == ['cuda:1', 'cuda:3']
    # where translation runs changes nothing it makes: the stage is not run again
    assert images_hashed(cfg) == before and 'translate_devices' not in images_hashed(cfg)
    assert images_hashed(cfg).config == cfg.images.config  # attribute access, as before
    cfg.images.translate_devices = []
    with pytest.raises(ValueError, match=r'images.translate_devices: \[\]; expected'):
        translation_devices(cfg.images)


def test_a_recording_finds_a_run_by_a_relative_work_dir(tmp_path, monkeypatch):
    """mmengine makes a runner's work dir absolute; the pipeline's may be relative."""
    from fundus_plugins.engine.timing import Recording
    monkeypatch.chdir(tmp_path)
    rec = Recording()
    rec.runs.append(dict(work_dir=str(tmp_path / 'w/.plan_probe/label_gan')))
    rec.runs.append(dict(work_dir=str(tmp_path / 'w/.plan_probe/gates/real_only/p00_s0')))
    assert rec.find('w/.plan_probe/label_gan') is rec.runs[0]
    assert rec.find('w/.plan_probe/gates/real_only') is rec.runs[1]
    assert rec.find('w/.plan_probe/translator') is None


def test_a_models_rate_is_the_median_after_the_warm_up():
    """The last probe iteration also saves the checkpoint: the median leaves it out."""
    from fundus_plugins.pipeline.plan import _model_timing
    t = _model_timing(dict(iter_s=[3.0, 1.0, 0.5, 0.6, 0.5, 0.6, 0.5, 4.0], peak_mem_mb=None))
    assert t['iter_s'] == pytest.approx(0.55) and t['iters'] == 8
    assert t['train_s'] == pytest.approx(10.7)


def test_the_unet_probe_runs_several_epochs_and_times_the_second_half():
    from fundus_plugins.pipeline.plan import _model_timing
    # 40 probe updates (4 epochs of 10): the fixed cost is 8 - 40 x 0.1 - 1.35 s.
    m = dict(M, counts=dict(M['counts'], seg_epochs=4))
    real_only = (8 - 4 - 1.35) + 0.1 * 300 + 9
    assert estimate(_cfg(), m, 120, 180)['gates']['seconds'] == pytest.approx(
        real_only + (50 + 180) * 0.05)
    slow_start = [0.12] * 20 + [0.08] * 20
    assert _model_timing(dict(iter_s=slow_start), warmup=20)['iter_s'] == pytest.approx(0.08)
