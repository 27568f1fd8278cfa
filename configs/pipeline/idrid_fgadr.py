# The paper's setting on IDRiD + FGADR (download them yourself; nothing is fetched):
#
#   python tools/run_pipeline.py configs/pipeline/idrid_fgadr.py \
#       --cfg-options data.idrid=/data/IDRiD data.fgadr=/data/FGADR
#
# Add --plan first: a timing probe, then each stage's work and estimated time on this
# machine at the parallelism set below, and nothing trained.
#
# Sized for GPUs (see docs/pipeline.md for what a run needs): label ACGAN at 256 px, SPADE and
# segmentation at 512 px, three seeds per synthetic fraction.
work_dir = 'work_dirs/pipeline_idrid_fgadr'
lesion_classes = ['OD', 'MA', 'HE', 'EX', 'SE']
image_size = 512

# FGADR has no optic-disc masks: its discs are drawn from od_file (CSV image,cx,cy,rx,ry,
# angle in the original image's pixels, as the paper drew ellipses) where it lists the
# image, else predicted by a small disc model trained on IDRiD's training split (its
# Dice on IDRiD's held-out discs is in data/summary.md). od_model: options of
# fundus_plugins.datasets.optic_disc.train_od_model, or dict(path=...) of a saved model.
data = dict(source='prepare', idrid='data/raw/IDRiD', fgadr='data/raw/FGADR',
            fgadr_exclude=None, od_file=None, od_model=dict(), size=image_size, seed=0,
            workers=4)
grades = dict(seed=0, size=256)
# 'auto': enough label maps for the largest synthetic fraction, worked out from the real
# training count before anything trains (the paper: 2214 for 738 real; IDRiD + FGADR
# without its exclusion list give about 1,540 real, so about 4,600 for 75 %).
# gpus=N: data-parallel training on N processes (torchrun, one per GPU), the config's
# batch split over them (docs/many_gpus.md).
labels = dict(config='configs/acgan_labels.py', num_per_grade='auto', seed=0, gpus=1)
# mode: 'full' (SPADE translates the maps into whole photographs, the paper), 'inpaint'
# (the maps' lesions painted into real healthy training images by the inpainting
# translator, configs/inpaint_fundus.py; beyond the paper), or ['full', 'inpaint']: both,
# side by side in the report at the same synthetic counts.
images = dict(config='configs/spade_fundus.py', batch_size='auto', amp=True, device='cuda',
              mode='full', inpaint=dict(config='configs/inpaint_fundus.py', seed=0), gpus=1)
# Where the runs go (not part of the stage's settings: changing it retrains nothing):
# parallel=N trains N runs at once, one per GPU; launcher='slurm' submits them as one
# Slurm job array, e.g. slurm=dict(partition='gpu', cpus_per_task=8,
# sbatch_args='--time=2:00:00') (docs/many_gpus.md).
segmentation = dict(config='configs/seg/unet_fundus_real.py',
                    fractions=[0, 0.25, 0.5, 0.75], seeds=[0, 1, 2], parallel=1)
# Quality gates: nobody should spend hours of U-Net training on synthetic data that
# failed them, so a failed gate stops the run after its stage (labels, or the gates
# stage's label consistency and FID / KID), naming what to change. Thresholds:
# fundus_plugins/pipeline/gates.py (DEFAULTS).
gates = dict(on_fail='stop', inception_path='auto', device='cuda')
report = dict(examples_per_grade=2)
