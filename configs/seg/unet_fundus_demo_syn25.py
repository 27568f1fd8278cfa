# The demo U-Net with 25 % synthetic training images.
_base_ = ['./unet_fundus_demo.py']
work_dir = 'work_dirs/unet_fundus_demo_syn25'
synthetic_fraction = 0.25
train_dataloader = dict(dataset=dict(synthetic_fraction=synthetic_fraction))
