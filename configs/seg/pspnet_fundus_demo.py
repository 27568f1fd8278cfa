# PSPNet in place of the demo U-Net: a ResNet-18 (V1c) backbone, narrow head.
_base_ = ['../_base_/models/pspnet_r50.py', '../_base_/seg_fundus_demo.py']

model = dict(backbone=dict(depth=18), decode_head=dict(in_channels=512, channels=64))
