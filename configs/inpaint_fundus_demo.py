# The lesion inpainting translator of configs/inpaint_fundus.py, tiny: 128 x 128 phantom
# pairs, small networks (ngf 8, 4 downsamplings to 8 x 8, channels capped at 64, one
# SPADE block at the bottleneck, SPADE hidden 16: 0.6M parameters; D ndf 16, 3 layers),
# lesion regions dilated by 4 pixels, batch 4, 600 iterations: 6 minutes on a 2-core CPU
# (0.59 s per iteration). The painted lesions take shape (exudates, haemorrhages) from
# about iteration 400. The VGG perceptual term is off (lambda_vgg=0, vgg_weights=None:
# nothing is loaded, so the demo and the tests run offline); `--cfg-options
# model.loss_config.lambda_vgg=10 model.vgg_weights=torchvision` turns it back on. Data:
# `make phantom` writes the phantom to work_dirs/demo/phantom (its grade-0 images, which
# have no lesions, train on random lesion-shaped holes).
#
#   python tools/train.py configs/inpaint_fundus_demo.py
_base_ = ['./inpaint_fundus.py']
work_dir = 'work_dirs/inpaint_fundus_demo'

data_root = 'work_dirs/demo/phantom'
image_size = 128
batch_size = 4
vgg_weights = None

model = dict(
    vgg_weights=vgg_weights,
    # 4 pixels at 128 px: with 2 the painted lesions' rims reached the hole's edge (seam
    # ratio 1.85 against 1.03 with 4, same maps and 600 iterations; docs/inpainting.md).
    margin=4,
    generator=dict(ngf=8, num_down=4, max_channels=64, num_middle=1, spade_hidden=16),
    discriminator=dict(ndf=16, n_layers_D=3),
    ema_config=dict(momentum=0.01),
    loss_config=dict(lambda_vgg=0.0, d_context=16))
optim_wrapper = dict(generator=dict(optimizer=dict(lr=2e-4)))

pair_pipeline = [
    dict(type='LoadFundusPair'),
    dict(type='ResizeFundus', size=image_size),
    dict(type='RandomFlipFundus', prob=0.5),
    dict(type='LabelToOneHot'),
    dict(type='PackFundusGenInputs', inputs=dict(img='img', label='label_onehot'),
         with_grade=False),
]
train_dataloader = dict(batch_size=batch_size, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=pair_pipeline))

train_cfg = dict(max_iters=600)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=200))
custom_hooks = [dict(type='InpaintGridHook', interval=200, num_samples=6)]
