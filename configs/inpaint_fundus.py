# The lesion inpainting translator (issue 14; after Feng et al., MICCAI 2024, who keep the
# anatomy of a real healthy photograph and paint lesions into it): a real image with its
# lesion regions blanked (dilated by `margin` pixels), the hole mask and the label map go
# in; the image comes out with only the hole painted, the rest copied from the input bit
# for bit. SPADE sizes at 512 x 512: a U-Net generator (ngf 64, 5 downsamplings to
# 16 x 16, channels capped at 8 ngf = 512, 2 SPADE residual blocks at the bottleneck, SPADE
# residual blocks in the decoder conditioned on the label map + mask, SPADE hidden 128,
# batch norm, spectral norm: 63M parameters; SPADE's translator has 92M), SPADE's
# multiscale PatchGAN (num_D 2, n_layers_D 4, ndf 64) on the composite + label map + mask,
# hinge terms averaged over the patches within `d_context` pixels of the hole, feature
# matching (10), VGG19 (10) and L1 inside the hole (10), Adam with SPADE's TTUR (G 1e-4,
# D 4e-4, betas 0, 0.9), EMA generator. Trains on the train split of the prepared real
# data: images with lesions reconstruct their own lesion regions, lesion-free ones random
# lesion-shaped holes.
# Sized for GPUs; inpaint_fundus_demo.py runs on a CPU.
#
#   python tools/train.py configs/inpaint_fundus.py --cfg-options data_root=data/idrid_fgadr
_base_ = ['./_base_/gan_runtime.py']
work_dir = 'work_dirs/inpaint_fundus'

# The run's classes, data and image size: the one place they are set; this file writes
# them into the model, dataset and pipeline (a config that inherits and changes one
# writes it again, as inpaint_fundus_demo.py does).
lesion_classes = ['OD', 'MA', 'HE', 'EX', 'SE']
data_root = 'data/idrid_fgadr'
image_size = 512
batch_size = 4  # per process
# VGG19 weights of the perceptual loss, as in spade_fundus.py ('torchvision': torch hub's
# cache, downloaded there when absent and online; or a local path). Building the model
# stops with an error that says where to put the file when they cannot be had;
# model.loss_config.lambda_vgg=0 (or vgg_weights=None) trains without the term.
vgg_weights = 'torchvision'

model = dict(
    type='SPADEInpaintGAN',
    classes=lesion_classes,  # label channels: BG, RET, then these
    vgg_weights=vgg_weights,
    hole_classes=None,  # None: every lesion class but OD
    # Pixels the lesion regions are dilated by (at image_size). The demo measured 4 at
    # 128 px seamless and 2 not; at 512 px, 8 is not measured yet (16 is the demo's 4
    # scaled up).
    margin=8,
    # Lesion-free training images: another image's lesion hole (probability borrow_prob)
    # or 1-8 random ellipses with semi-axes of 1-4 % of the image side.
    random_hole=dict(borrow_prob=0.5, num_blobs=(1, 8), radius=(0.01, 0.04)),
    generator=dict(type='SPADEInpaintGenerator', ngf=64, num_down=5, max_channels=512,
                   num_middle=2, norm='batch', encoder_norm='none', spade_hidden=128),
    discriminator=dict(type='MultiscaleDiscriminator', num_D=2, n_layers_D=4, ndf=64),
    ema_config=dict(type='ExponentialMovingAverage', momentum=0.001),
    loss_config=dict(lambda_feat=10.0, lambda_vgg=10.0, lambda_l1=10.0, d_context=64))

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

# Mixed precision as in spade_fundus.py ('auto': bf16 on a CUDA device that supports it).
precision = 'auto'
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    generator=dict(type='PrecisionOptimWrapper', precision=precision,
                   optimizer=dict(type='Adam', lr=1e-4, betas=(0.0, 0.9))),
    discriminator=dict(type='PrecisionOptimWrapper', precision=precision,
                       optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.9))))
sync_bn = 'torch'

train_cfg = dict(type='FastResumeIterBasedTrainLoop', max_iters=100000)
val_cfg = None
val_dataloader = None
val_evaluator = None

default_hooks = dict(checkpoint=dict(interval=5000))
custom_hooks = [dict(type='InpaintGridHook', interval=2000, num_samples=6)]
