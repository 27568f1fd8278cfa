# unet_fundus_real.py on Ben Graham-preprocessed images (Kaggle DR 2015 winner's local
# contrast normalisation; Son et al. fed their U-Net such images):
#   img = 4 * img - 4 * GaussianBlur(img, sigma = side / 30) + 128,
# the field of view (the label's BG class) shrunk by a tenth of its radius, 128 outside.
# Applied right after loading in the train and the test pipelines, so real, synthetic
# and test images alike are normalised at their prepared size; the label is unchanged.
# See BenGrahamFundus (fundus_plugins/datasets/transforms.py) for the options:
# sigma=1/60 is Graham's own radius / 30; fov_margin=0 keeps the FOV edge (and its
# bright ring), where the margin hides what the label still marks.
# The pipelines are configs/_base_/seg_fundus.py's bengraham_*_pipeline; the default
# ones leave the images as they are.
#
#   python tools/train.py configs/seg/unet_fundus_real_bengraham.py --cfg-options data_root=...
_base_ = ['./unet_fundus_real.py']
work_dir = 'work_dirs/unet_fundus_real_bengraham'

train_dataloader = dict(dataset=dict(pipeline={{_base_.bengraham_train_pipeline}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.bengraham_test_pipeline}}))
test_dataloader = val_dataloader
