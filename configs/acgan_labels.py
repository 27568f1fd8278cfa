# The label generator: a grade-conditioned ACGAN over lesion label maps (Son et al. 2021),
# with the paper's 256 x 256 maps, batch 64, two generator updates per discriminator
# update, hinge loss, auxiliary grade loss and adaptive discriminator augmentation;
# plus the measured improvements of docs/label_acgan.md.
# Trains on the prepared layout of real data (tools/prepare_data.py; ungraded images need
# predicted grades first). Sized for GPUs; configs/acgan_labels_demo.py runs on a CPU.
#
#   python tools/train.py configs/acgan_labels.py [--cfg-options data_root=...]
#   tools/dist_train.sh configs/acgan_labels.py 8
#
# Our default, not the paper's: configs/acgan_labels_paper.py reproduces the defaults of
# their public code and explains each departure. In short (theirs -> ours):
#   lr G / D 5e-4 / 1e-4, Adam (0.5, 0.999), constant -> 2e-4 / 4e-4, (0, 0.9), decay;
#   D gradient norm clipped at 0.01 -> not clipped (spectral norm instead);
#   label smoothing: their flag had no effect -> real term 0.9 relu(1 - D) + 0.1 relu(1 + D);
#   aux grade loss of D on real + generated maps -> real maps only; none for G -> weight 1;
#   ADA p +-0.01 every iteration -> StyleGAN2-ADA rule (ada_kimg 100), other operations;
#   discriminator 3x3 + BN, 8-128 ch. -> 4x4, spectral norm, 64-512 ch., minibatch std;
#   random h/v flips -> disc aligned right + sample_flip; added: EMA, disc_temperature
#   0.25, mode seeking 0.02; classes OD..SE (theirs also NV, IRMA); 20k iterations.
_base_ = ['./_base_/gan_runtime.py']
work_dir = 'work_dirs/acgan_labels'

# The run's classes, data and map size: the one place they are set. This file writes
# them into the model, datasets, pipeline and metric; a config that inherits and changes
# one writes it into those again (acgan_labels_demo.py). Our tools' --cfg-options
# "lesion_classes=['OD','EX']" or data_root=... also reach every component that held the
# old value (fundus_plugins/config.py). Channel counts follow from the classes (BG and
# RET first).
lesion_classes = ['OD', 'MA', 'HE', 'EX', 'SE']
data_root = 'data/idrid_fgadr'
label_size = 256
batch_size = 64  # per process

model = dict(
    type='LabelACGAN',
    classes=lesion_classes,  # label channels: BG, RET, then these
    num_classes=5,  # DR grades 0-4
    generator=dict(type='LabelMapGenerator', out_size=label_size, noise_size=128,
                   embed_dim=128, base_channels=512, min_channels=16, conditional_bn=True,
                   padding_mode='reflect'),
    discriminator=dict(type='LabelMapDiscriminator', in_size=label_size, base_channels=64,
                       max_channels=512, spectral_norm=True, minibatch_std_group=4),
    ema_config=dict(type='ExponentialMovingAverage', momentum=0.005),
    # Hinge loss; one-sided label smoothing that acts under it; the auxiliary grade loss
    # on the generator (the paper's code drops it) with the classifier trained on real
    # maps only; a small mode-seeking term against within-grade collapse.
    loss_config=dict(adv_loss='hinge', real_target=0.9, aux_weight_d=1.0, aux_weight_g=1.0,
                     aux_on_fake_d=False, mode_seeking_weight=0.02),
    # Training maps have the disc on the right (AlignOpticDisc); sampled maps are
    # mirrored back at random.
    sample_flip=True,
    # The discriminator sees generated maps sharpened towards their argmax.
    disc_temperature=0.25,
    # ADA: every geometric augmentation, plus probability noise; p starts at 0.
    augment=dict(kind='label', background_channel=0, p=0.0, noise_prob=1.0, noise_std=0.05))

label_pipeline = [
    dict(type='LoadFundusPair', with_image=False),
    dict(type='ResizeFundus', size=label_size),
    dict(type='AlignOpticDisc', side='right'),
    dict(type='LabelToOneHot'),
    dict(type='PackFundusGenInputs', inputs=dict(img='label_onehot')),
]
train_dataloader = dict(
    batch_size=batch_size, num_workers=4, persistent_workers=True, drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='FundusDataset', data_root=data_root, classes=lesion_classes,
                 split='train', ungraded='error',
                 with_images=False, pipeline=label_pipeline))
# The val loop generates maps; its dataloader only gives the batch size and metainfo.
val_dataloader = dict(
    batch_size=batch_size, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='FundusDataset', data_root=data_root, classes=lesion_classes,
                 split='test', ungraded='skip',
                 with_images=False, pipeline=label_pipeline))
test_dataloader = val_dataloader

# Mixed precision: 'auto' = bf16 autocast on a CUDA device that supports it, fp32
# elsewhere (a CPU run is unchanged); 'fp32' / 'bf16' / 'fp16' force one
# (PrecisionOptimWrapper, fundus_plugins/engine/precision.py): --cfg-options precision=fp32.
precision = 'auto'
# TTUR (the discriminator learns twice as fast), Adam betas (0, 0.9); both learning rates
# decay linearly to 0 over the second half of training.
max_iters = 20000
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(type='PrecisionOptimWrapper', precision=precision,
                   optimizer=dict(type='Adam', lr=2e-4, betas=(0.0, 0.9))),
    discriminator=dict(type='PrecisionOptimWrapper', precision=precision,
                       optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.9))))
param_scheduler = dict(
    generator=dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
                   begin=max_iters // 2, end=max_iters),
    discriminator=dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
                       begin=max_iters // 2, end=max_iters))

# Resuming skips the trained batches by their indices (mmengine's loop loads them).
train_cfg = dict(type='FastResumeIterBasedTrainLoop', max_iters=max_iters, val_begin=1,
                 val_interval=2000)
val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')
label_metrics = [dict(type='LabelMapMetric', real_root=data_root, classes=lesion_classes,
                      fake_nums=500, sample_model='ema')]
val_evaluator = dict(type='Evaluator', metrics=label_metrics)
test_evaluator = val_evaluator

custom_hooks = [
    dict(type='GANStepRatioHook', generator_steps=2, discriminator_steps=1),
    dict(type='AdaHook', target=0.6, interval=4, ada_kimg=100),
    dict(type='LabelGridHook', interval=1000, num_per_grade=8),
]
