# Data, metrics and schedule of the lesion-segmentation experiment, shared by every
# segmentation model (configs/_base_/models/*). The top-level keys below are the one
# place a run's classes, data, image size and synthetic share are set; this file writes
# them into the datasets and transforms, and the configs that combine it with a model
# write num_classes into the head (model=dict(decode_head=dict(num_classes=...))), so
# mmengine's own Runner reads the same run as our tools. A config that inherits and
# changes one of these keys writes it into the components again (see
# seg_fundus_demo.py); on the command line, our tools' --cfg-options data_root=...
# carries it to every component that held the old value (fundus_plugins/config.py).
_base_ = ['./seg_runtime.py']

lesion_classes = ['OD', 'MA', 'HE', 'EX', 'SE']
num_classes = len(lesion_classes) + 2  # label indices: BG, RET, then the lesion classes
data_root = 'data/idrid_fgadr'
image_size = 512
# Synthetic pairs (tools/synthesize.py) and their share of the training set, in [0, 1):
# synthetic / (real + synthetic). 0: real only. The test split is always real.
synthetic_root = 'data/synthetic'
synthetic_fraction = 0.0
synthetic_seed = 0
max_epochs = 40  # the paper's

# mmseg's meta keys plus the sample's name, source and annotated classes (the metrics
# score a class only on images whose source annotates it).
seg_meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                 'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label', 'name',
                 'dataset', 'annotated')
train_pipeline = [
    dict(type='LoadFundusPair'),
    dict(type='ResizeFundus', size=image_size),
    dict(type='RandomFlipFundus', prob=0.5),
    dict(type='PackSegInputs', meta_keys=seg_meta_keys),
]
test_pipeline = [  # labels stay at their size: predictions are resized back to it
    dict(type='LoadFundusPair'),
    dict(type='ResizeFundus', size=image_size, resize_label=False),
    dict(type='PackSegInputs', meta_keys=seg_meta_keys),
]
# Ben Graham preprocessing (Kaggle DR 2015; Son et al. fed their U-Net such images), off
# by default: configs/seg/*_bengraham.py use these pipelines, the ones above with
# BenGrahamFundus right after loading (img = 4 img - 4 GaussianBlur(sigma = side / 30)
# + 128, the field of view shrunk by a tenth of its radius, 128 outside; label unchanged).
ben_graham = dict(type='BenGrahamFundus', sigma=1 / 30, fov_margin=0.1, outside_value=128)
bengraham_train_pipeline = train_pipeline[:1] + [ben_graham] + train_pipeline[1:]
bengraham_test_pipeline = test_pipeline[:1] + [ben_graham] + test_pipeline[1:]
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='FundusSegDataset', data_root=data_root, classes=lesion_classes,
                 split='train', synthetic_root=synthetic_root,
                 synthetic_fraction=synthetic_fraction, synthetic_seed=synthetic_seed,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='FundusSegDataset', data_root=data_root, classes=lesion_classes,
                 split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
# Three measures (fundus_plugins/segmentation/metrics.py), the optic disc reported on its
# own and left out of the lesion scores:
#   paper_*  Son et al.'s measure (Table 1(c)): per image, lesions pooled, averaged over
#            images; class0_bug=True reproduces their code's loss of the first scored
#            class in their order (RET, OD, MA, ...), score_size=512 their scoring size;
#   image_*  per image and class, empty cases left out, averaged over images;
#   pixel_*  pixels pooled over the test split, per class.
val_evaluator = [dict(type='PaperLesionMetric', class0_bug=False),
                 dict(type='LesionImageMetric'), dict(type='LesionPixelMetric')]
test_evaluator = val_evaluator

# Mixed precision: 'auto' = bf16 autocast on a CUDA device that supports it, fp32
# elsewhere (a CPU run is unchanged); 'fp32' / 'bf16' / 'fp16' force one
# (PrecisionOptimWrapper, fundus_plugins/engine/precision.py): --cfg-options precision=fp32.
precision = 'auto'
optim_wrapper = dict(type='PrecisionOptimWrapper', precision=precision,
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
                        eta_min=1e-5)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
