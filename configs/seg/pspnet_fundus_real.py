# unet_fundus_real.py with PSPNet (ResNet-50, from scratch) in place of the U-Net.
_base_ = ['../_base_/models/pspnet_r50.py', '../_base_/seg_fundus.py']
work_dir = 'work_dirs/pspnet_fundus_real'

# num_classes: the data config's label classes (BG, RET and lesion_classes)
model = dict(decode_head=dict(num_classes=_base_.num_classes))
