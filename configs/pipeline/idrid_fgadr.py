# The paper's setting on IDRiD + FGADR (download them yourself; nothing is fetched):
#
#   python tools/run_pipeline.py configs/pipeline/idrid_fgadr.py \
#       --cfg-options data.idrid=/data/IDRiD data.fgadr=/data/FGADR
#
# Sized for GPUs (see the README for what a run needs): label ACGAN at 256 px, SPADE and
# segmentation at 512 px, three seeds per synthetic fraction.
work_dir = 'work_dirs/pipeline_idrid_fgadr'
lesion_classes = ['OD', 'MA', 'HE', 'EX', 'SE']
image_size = 512

data = dict(source='prepare', idrid='data/raw/IDRiD', fgadr='data/raw/FGADR',
            fgadr_exclude=None, size=image_size, seed=0, workers=4)
grades = dict(seed=0, size=256)
# The paper's largest synthetic share: 2214 synthetic for 738 real; 450 per grade = 2250.
labels = dict(config='configs/acgan_labels.py', num_per_grade=450, seed=0)
images = dict(config='configs/spade_fundus.py', batch_size=8, amp=True, device='cuda')
segmentation = dict(config='configs/seg/unet_fundus_real.py',
                    fractions=[0, 0.25, 0.5, 0.75], seeds=[0, 1, 2])
report = dict(examples_per_grade=2, inception_path='data/weights/inception-2015-12-05.pt',
              device='cuda')
