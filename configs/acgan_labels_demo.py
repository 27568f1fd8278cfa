# The label ACGAN of configs/acgan_labels.py, tiny: 64 x 64 phantom label maps, small
# networks, trainable on a 2-core CPU in a few minutes. Data: `make phantom` writes the
# phantom to work_dirs/demo/phantom (or: tools/make_phantom.py --num 200 --size 256 ...).
#
#   python tools/train.py configs/acgan_labels_demo.py
_base_ = ['./acgan_labels.py']
work_dir = 'work_dirs/acgan_labels_demo'

data_root = 'work_dirs/demo/phantom'
label_size = 64
batch_size = 16

model = dict(
    generator=dict(out_size=label_size, base_channels=128, embed_dim=32, min_channels=16),
    discriminator=dict(in_size=label_size, base_channels=32, max_channels=128))

label_pipeline = [
    dict(type='LoadFundusPair', with_image=False),
    dict(type='ResizeFundus', size=label_size),
    dict(type='AlignOpticDisc', side='right'),
    dict(type='LabelToOneHot'),
    dict(type='PackFundusGenInputs', inputs=dict(img='label_onehot')),
]
train_dataloader = dict(
    batch_size=batch_size, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=label_pipeline))
val_dataloader = dict(batch_size=batch_size,
                      dataset=dict(data_root=data_root, pipeline=label_pipeline))
test_dataloader = val_dataloader

max_iters = 3000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = dict(
    generator=dict(begin=max_iters // 2, end=max_iters),
    discriminator=dict(begin=max_iters // 2, end=max_iters))
label_metrics = [dict(type='LabelMapMetric', real_root=data_root,
                      classes=_base_.lesion_classes, fake_nums=250, sample_model='ema')]
val_evaluator = dict(metrics=label_metrics)
test_evaluator = val_evaluator

default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=500))
custom_hooks = [
    dict(type='GANStepRatioHook', generator_steps=2, discriminator_steps=1),
    # A small dataset: let p move faster than in the paper config.
    dict(type='AdaHook', target=0.6, interval=4, ada_kimg=20),
    dict(type='LabelGridHook', interval=500, num_per_grade=8),
]
