# The main job on the embedded phantom, sized to finish within about 15 minutes on a
# 2-core CPU (after set-up): `make demo`, or
#
#   python tools/run_pipeline.py configs/pipeline/demo.py
#
# A check of the machinery, not a measurement: short generators (their quality gates
# fail, and the report says so), one segmentation seed. Its verdicts carry intervals over
# the 200 test images only (one seed: training noise is not in them). The measurement is
# the phantom benchmark (configs/pipeline/phantom_benchmark.py, `make benchmark`), which
# shares this config's design at a size that answers the question.
# Everything runs at 64 x 64 pixels (the paper: 512), as the benchmark does, so that
# the whole mission fits the budget; the phantom draws its lesions at that size.
work_dir = 'work_dirs/pipeline_demo'
lesion_classes = ['OD', 'MA', 'HE', 'EX', 'SE']
image_size = 64  # translator and segmentation size; label maps are drawn at 64

# 1. Real data: the phantom, 120 training and 200 held-out test images (intervals over
#    fewer than about 50 test images are unreliable), with 20 % of the training images'
#    grades hidden (like IDRiD's segmentation images) so that the grade step has work.
data = dict(source='phantom', num=320, test_fraction=0.625, size=image_size, seed=0,
            ungraded_fraction=0.2)
# 2. Grades for ungraded images (classifier on lesion-load features of the label maps).
grades = dict(seed=0, size=64)
# 3. Label ACGAN, then N maps per grade (uniform over grades 0-4). 'auto': enough for the
#    largest fraction, worked out before anything trains (75 % of 120 real: 360 pairs).
#    Sampled from the generator's last weights (see phantom_benchmark.py).
labels = dict(config='configs/acgan_labels_demo.py', max_iters=500, num_per_grade='auto',
              seed=0, sample_model='orig')
# 4. SPADE, trained on the real training pairs at batch 8, translates the sampled maps;
#    batch_size is the translation batch.
images = dict(config='configs/spade_fundus_demo.py', max_iters=400, batch_size=16,
              cfg_options={'train_dataloader.batch_size': 8})
# Quality gates after the labels stage and after the images (the gates stage trains the
# real-only segmenter of the first seed and scores the synthetic images with it). The
# demo's short generators fail some of them; 'warn' shows that in the report and goes
# on, since the demo checks the machinery. FID / KID need a local Inception file (none
# in the demo). Thresholds: fundus_plugins/pipeline/gates.py (DEFAULTS).
gates = dict(on_fail='warn', inception_path=None)
# 5. Segmentation at each synthetic fraction (synthetic / (real + synthetic)) under two
#    protocols, side by side in the report: the paper's (a fixed number of epochs, so
#    larger training sets also get more updates) and the equal-updates control (epochs x
#    (1 - p)). Batch 4 at 2e-2 with the config's cosine decay, 10 epochs of the 120 real
#    images (300 updates for real only): the benchmark's schedule cut to what 15 minutes
#    allow. The U-Net is not at its plateau there (about 750 updates: docs/results.md,
#    "The phantom benchmark"), so seeds differ by many points; the report's intervals
#    over test images do not include that (one seed), the README's ranges do.
segmentation = dict(config='configs/seg/unet_fundus_demo.py',
                    fractions=[0, 0.25, 0.5, 0.75], seeds=[0], max_epochs=10,
                    protocols=['fixed_epochs', 'equal_updates'],
                    # 2 torch threads on any machine: a run's sums (so its figures) depend
                    # on its thread count; pinned, the segmentation differs across machines
                    # only by their CPUs' kernels.
                    threads=2,
                    cfg_options=dict(train_dataloader=dict(batch_size=4),
                                     optim_wrapper=dict(optimizer=dict(lr=2e-2))))
# 6. The report.
report = dict(examples_per_grade=2)
