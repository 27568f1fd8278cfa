# The demo U-Net with 25 % synthetic training images.
_base_ = ['./unet_fundus_demo.py']
synthetic_fraction = 0.25
