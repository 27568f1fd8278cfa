# The translator: SPADE (Park et al. 2019) from lesion label maps to 512 x 512 fundus
# images, the paper's setting, with NVlabs SPADE's defaults: ngf 64, 'normal' upsampling
# (5 doublings from 16 x 16), multiscale PatchGAN (num_D 2, n_layers_D 4, ndf 64,
# spectral-instance norm), hinge + feature matching (10) + VGG19 (10) losses, Adam with
# TTUR (G 1e-4, D 4e-4, betas 0, 0.9), EMA generator. Trains on (image, label) pairs of
# the train split of the prepared real data. Sized for GPUs; spade_fundus_demo.py runs on
# a CPU.
#
#   python tools/train.py configs/spade_fundus.py --cfg-options data_root=data/idrid_fgadr
_base_ = ['./_base_/gan_runtime.py']
work_dir = 'work_dirs/spade_fundus'

# The run's classes, data and image size: the one place they are set; this file writes
# them into the model, dataset and pipeline (a config that inherits and changes one
# writes it again, as spade_fundus_demo.py does; our tools' --cfg-options also carry
# them to every component that held the old value, fundus_plugins/config.py).
lesion_classes = ['OD', 'MA', 'HE', 'EX', 'SE']
data_root = 'data/idrid_fgadr'
image_size = 512
batch_size = 4  # per process (SPADE used 1 per GPU at 512 x 512 on its data sets)
# VGG19 weights of the perceptual loss (SPADE's, weight 10). 'torchvision': torchvision's
# ImageNet VGG19 (vgg19-dcbb9e9d.pth) from torch hub's cache
# (torch.hub.get_dir()/checkpoints, i.e. $TORCH_HOME/hub/checkpoints, by default
# ~/.cache/torch/hub/checkpoints), downloaded there when absent and online: the file any
# torchvision user already has. Offline, copy the file there, or set vgg_weights to a local
# path. If the weights cannot be had, building the model stops with an error that says so,
# before training; model.loss_config.lambda_vgg=0 (or vgg_weights=None) trains without
# the term.
vgg_weights = 'torchvision'

model = dict(
    type='SPADEGAN',
    classes=lesion_classes,  # label channels: BG, RET, then these
    vgg_weights=vgg_weights,
    use_od_edge=True,
    generator=dict(type='SPADEGenerator', out_size=image_size, ngf=64,
                   num_upsampling_layers='normal', use_vae=False, norm='batch'),
    discriminator=dict(type='MultiscaleDiscriminator', num_D=2, n_layers_D=4, ndf=64),
    ema_config=dict(type='ExponentialMovingAverage', momentum=0.001),
    loss_config=dict(lambda_feat=10.0, lambda_vgg=10.0))

pair_pipeline = [
    dict(type='LoadFundusPair'),
    dict(type='ResizeFundus', size=image_size),
    dict(type='RandomFlipFundus', prob=0.5),
    dict(type='LabelToOneHot'),
    dict(type='PackFundusGenInputs', inputs=dict(img='img', label='label_onehot'),
         with_grade=False),
]
train_dataloader = dict(
    batch_size=batch_size, num_workers=4, persistent_workers=True, drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='FundusDataset', data_root=data_root, classes=lesion_classes,
                 split='train', pipeline=pair_pipeline))

# Mixed precision: 'auto' = bf16 autocast on a CUDA device that supports it, fp32
# elsewhere (a CPU run is unchanged); 'fp32' / 'bf16' / 'fp16' force one
# (PrecisionOptimWrapper, fundus_plugins/engine/precision.py): --cfg-options precision=fp32.
precision = 'auto'
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(type='PrecisionOptimWrapper', precision=precision,
                   optimizer=dict(type='Adam', lr=1e-4, betas=(0.0, 0.9))),
    discriminator=dict(type='PrecisionOptimWrapper', precision=precision,
                       optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.9))))

# In a distributed run the batch norms of the SPADE layers and the generator synchronise
# their statistics across GPUs, as NVlabs SPADE does (mmengine converts them; a single
# process keeps plain batch norm; CPU processes cannot synchronise and keep it too).
sync_bn = 'torch'

# Resuming skips the trained batches by their indices (mmengine's loop loads them).
train_cfg = dict(type='FastResumeIterBasedTrainLoop', max_iters=100000)
val_cfg = None
val_dataloader = None
val_evaluator = None

default_hooks = dict(checkpoint=dict(interval=5000))
custom_hooks = [dict(type='TranslationGridHook', interval=2000, num_samples=6)]
