# Lesion segmentation, the paper's setting: a U-Net (configs/_base_/models/unet_fcn.py) on
# 512 x 512 images of the real training split only, 40 epochs, tested on the held-out
# real test split. The synthetic-fraction configs (unet_fundus_syn{25,50,75}.py) inherit
# from this one; other models differ in the model line only (deeplabv3plus_fundus_real.py,
# pspnet_fundus_real.py).
#
#   python tools/train.py configs/seg/unet_fundus_real.py --cfg-options data_root=...
_base_ = ['../_base_/models/unet_fcn.py', '../_base_/seg_fundus.py']
work_dir = 'work_dirs/unet_fundus_real'

# num_classes: the data config's label classes (BG, RET and lesion_classes)
model = dict(decode_head=dict(num_classes=_base_.num_classes))
