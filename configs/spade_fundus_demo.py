# The SPADE translator of configs/spade_fundus.py, tiny: 128 x 128 phantom pairs, small
# networks (ngf 8, SPADE hidden 16), batch 4, 4000 iterations: 27 minutes on a 2-core
# CPU. Optic disc, macula and lesions are right within the first 800 iterations; the
# vessels, which no label map holds, come from the adversarial term alone and take the
# rest: a vessel tree out of the disc by 3200-4000 (docs/translator.md). The VGG perceptual
# term is off (lambda_vgg=0: no weights are loaded, so the demo and the tests run offline);
# instead an L1 term (weight 10, our addition; off in the paper config) and G lr 2e-4 get
# the coarse picture right early. `--cfg-options model.loss_config.lambda_vgg=10` turns
# VGG back on (torchvision's weights, see spade_fundus.py). Data: `make phantom` writes
# the phantom to work_dirs/demo/phantom.
#
#   python tools/train.py configs/spade_fundus_demo.py
#   python tools/train.py configs/spade_fundus_demo.py --cfg-options train_cfg.max_iters=800
_base_ = ['./spade_fundus.py']
work_dir = 'work_dirs/spade_fundus_demo'

data_root = 'work_dirs/demo/phantom'
image_size = 128
batch_size = 4

model = dict(
    generator=dict(out_size=image_size, ngf=8, spade_hidden=16),
    discriminator=dict(ndf=16, n_layers_D=3),
    ema_config=dict(momentum=0.01),
    loss_config=dict(lambda_l1=10.0, lambda_vgg=0.0))
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

train_cfg = dict(max_iters=4000)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=400))
custom_hooks = [dict(type='TranslationGridHook', interval=400, num_samples=6)]
