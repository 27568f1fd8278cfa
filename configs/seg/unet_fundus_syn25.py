# The U-Net of unet_fundus_real.py with 25 % synthetic training images (synthetic /
# (real + synthetic) = 0.25), drawn by synthetic_seed from synthetic_root; the test split
# stays real.
_base_ = ['./unet_fundus_real.py']
synthetic_fraction = 0.25
