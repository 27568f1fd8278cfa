# The U-Net of unet_fundus_real.py with 50 % synthetic training images (synthetic /
# (real + synthetic) = 0.50), drawn by synthetic_seed from synthetic_root; the test split
# stays real.
_base_ = ['./unet_fundus_real.py']
work_dir = 'work_dirs/unet_fundus_syn50'
synthetic_fraction = 0.50
train_dataloader = dict(dataset=dict(synthetic_fraction=synthetic_fraction))
