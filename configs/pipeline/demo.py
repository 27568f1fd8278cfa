# The main job on the embedded phantom, sized to finish within about 15 minutes on a
# 2-core CPU (after set-up): `make demo`, or
#
#   python tools/run_pipeline.py configs/pipeline/demo.py
#
# Every stage uses a demo config with a shorter schedule (max_iters / max_epochs here);
# the demo configs alone, run in full, give the figures in the README.
work_dir = 'work_dirs/pipeline_demo'
lesion_classes = ['OD', 'MA', 'HE', 'EX', 'SE']
image_size = 128  # translator and segmentation size; label maps are upsampled to it

# 1. Real data: the phantom, with 20 % of the training images' grades hidden (like
#    IDRiD's segmentation images) so that the grade step has work to do.
data = dict(source='phantom', num=120, size=image_size, seed=0, ungraded_fraction=0.2)
# 2. Grades for ungraded images (classifier on lesion-load features of the label maps).
grades = dict(seed=0, size=64)
# 3. Label ACGAN, then N maps per grade (uniform over grades 0-4). 'auto': enough for the
#    largest fraction, worked out before anything trains (75 % of 96 real: 288 pairs).
labels = dict(config='configs/acgan_labels_demo.py', max_iters=600, num_per_grade='auto',
              seed=0)
# 4. SPADE, trained on the real training pairs, translates the sampled maps.
#    Trained at batch 8 (the demo config's own runs use batch 4 for 4000 iterations);
#    batch_size is the translation batch.
images = dict(config='configs/spade_fundus_demo.py', max_iters=250, batch_size=8,
              cfg_options={'train_dataloader.batch_size': 8})
# 5. Segmentation at each synthetic fraction (synthetic / (real + synthetic)) under two
#    protocols, side by side in the report: the paper's (a fixed number of epochs, so
#    larger training sets also get more updates) and the equal-updates control (epochs x
#    (1 - p)). Batch 2 (48 updates per epoch) at a constant learning rate of 2e-2: the
#    real-only U-Net learns HE and EX only after a few hundred updates, which the cosine
#    decay at batch 4 (240 updates) never gave it (schedules compared in the README, "The
#    main job").
segmentation = dict(config='configs/seg/unet_fundus_demo.py',
                    fractions=[0, 0.25, 0.5, 0.75], seeds=[0], max_epochs=6,
                    protocols=['fixed_epochs', 'equal_updates'],
                    cfg_options=dict(train_dataloader=dict(batch_size=2),
                                     optim_wrapper=dict(optimizer=dict(lr=2e-2)),
                                     param_scheduler=[]))
# Quality gates after the labels stage and after the images (the gates stage trains the
# real-only segmenter of the first seed and scores the synthetic images with it). The
# demo's short generators fail some of them; 'warn' shows that in the report and goes
# on, since the demo checks the machinery. FID / KID need a local Inception file (none
# in the demo). Thresholds: fundus_plugins/pipeline/gates.py (DEFAULTS).
gates = dict(on_fail='warn', inception_path=None)
# 6. The report.
report = dict(examples_per_grade=2)
