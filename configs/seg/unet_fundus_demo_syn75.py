# The demo U-Net with 75 % synthetic training images.
_base_ = ['./unet_fundus_demo.py']
synthetic_fraction = 0.75
