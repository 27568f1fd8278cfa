# unet_fundus_real.py with PSPNet (ResNet-50, from scratch) in place of the U-Net.
_base_ = ['../_base_/models/pspnet_r50.py', '../_base_/seg_fundus.py']
