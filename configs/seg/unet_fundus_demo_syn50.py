# The demo U-Net with 50 % synthetic training images.
_base_ = ['./unet_fundus_demo.py']
work_dir = 'work_dirs/unet_fundus_demo_syn50'
synthetic_fraction = 0.50
train_dataloader = dict(dataset=dict(synthetic_fraction=synthetic_fraction))
