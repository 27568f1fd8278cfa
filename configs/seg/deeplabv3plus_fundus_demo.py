# DeepLabV3+ in place of the demo U-Net: a ResNet-18 (V1c) backbone, narrow head.
_base_ = ['../_base_/models/deeplabv3plus_r50.py', '../_base_/seg_fundus_demo.py']
work_dir = 'work_dirs/deeplabv3plus_fundus_demo'

# num_classes: the data config's label classes (BG, RET and lesion_classes)
model = dict(backbone=dict(depth=18),
             decode_head=dict(in_channels=512, channels=64, c1_in_channels=64,
                              c1_channels=16, num_classes=_base_.num_classes))
