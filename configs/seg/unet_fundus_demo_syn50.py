# The demo U-Net with 50 % synthetic training images.
_base_ = ['./unet_fundus_demo.py']
synthetic_fraction = 0.50
