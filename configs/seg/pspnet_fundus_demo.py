# PSPNet in place of the demo U-Net: a ResNet-18 (V1c) backbone, narrow head.
_base_ = ['../_base_/models/pspnet_r50.py', '../_base_/seg_fundus_demo.py']
work_dir = 'work_dirs/pspnet_fundus_demo'

# num_classes: the data config's label classes (BG, RET and lesion_classes)
model = dict(backbone=dict(depth=18),
             decode_head=dict(in_channels=512, channels=64, num_classes=_base_.num_classes))
