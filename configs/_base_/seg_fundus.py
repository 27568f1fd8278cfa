# Data, metrics and schedule of the lesion-segmentation experiment, shared by every
# segmentation model (configs/_base_/models/*). The top-level keys below are the one
# place to change a run's classes, data, image size and synthetic share: the tools fill
# them into the datasets and transforms (fundus_plugins/runtime.py), so a config that
# inherits from this one changes them in one line.
_base_ = ['./seg_runtime.py']

lesion_classes = ['OD', 'MA', 'HE', 'EX', 'SE']
data_root = 'data/idrid_fgadr'
image_size = 512
# Synthetic pairs (tools/synthesize.py) and their share of the training set, in [0, 1):
# synthetic / (real + synthetic). 0: real only. The test split is always real.
synthetic_root = 'data/synthetic'
synthetic_fraction = 0.0
synthetic_seed = 0
max_epochs = 40  # the paper's

train_pipeline = [
    dict(type='LoadFundusPair'),
    dict(type='ResizeFundus'),  # size: image_size
    dict(type='RandomFlipFundus', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [  # labels stay at their size: predictions are resized back to it
    dict(type='LoadFundusPair'),
    dict(type='ResizeFundus', resize_label=False),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='FundusSegDataset', split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='FundusSegDataset', split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
# pixel_*: pixels pooled over the test split (with mmseg's mIoU / mFscore); image_*: the
# paper's per-image scores, averaged. See fundus_plugins/segmentation/metrics.py.
val_evaluator = [dict(type='LesionPixelMetric'), dict(type='LesionImageMetric')]
test_evaluator = val_evaluator

optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
                        eta_min=1e-5)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
