# unet_fundus_demo.py (the small U-Net on the 128 x 128 phantom) on Ben Graham-
# preprocessed images: the CPU twin of unet_fundus_real_bengraham.py (see there).
#
#   python tools/train.py configs/seg/unet_fundus_demo_bengraham.py
_base_ = ['./unet_fundus_demo.py']
work_dir = 'work_dirs/unet_fundus_demo_bengraham'

train_dataloader = dict(dataset=dict(pipeline={{_base_.bengraham_train_pipeline}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.bengraham_test_pipeline}}))
test_dataloader = val_dataloader
