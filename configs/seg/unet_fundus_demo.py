# The U-Net of unet_fundus_real.py, small (base 16 channels), on the 128 x 128 phantom:
# a few minutes on a 2-core CPU.
#
#   python tools/train.py configs/seg/unet_fundus_demo.py
_base_ = ['../_base_/models/unet_fcn.py', '../_base_/seg_fundus_demo.py']
work_dir = 'work_dirs/unet_fundus_demo'

# num_classes: the data config's label classes (BG, RET and lesion_classes)
model = dict(backbone=dict(base_channels=16),
             decode_head=dict(in_channels=16, channels=16, num_classes=_base_.num_classes))
