# U-Net (mmseg's UNet backbone, 5 stages, base 64) with an FCN head: the paper's
# segmentation model. BN, not SyncBN, so that it runs on one device too; num_classes is
# set by the configs that pair it with a data config (_base_.num_classes). Loss:
# cross-entropy plus a per-class Dice (ClassDiceLoss), so that small lesion classes count.
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=False, pad_val=0,
                           seg_pad_val=255, size_divisor=16),
    backbone=dict(type='UNet', in_channels=3, base_channels=64, num_stages=5,
                  strides=(1, 1, 1, 1, 1), enc_num_convs=(2, 2, 2, 2, 2),
                  dec_num_convs=(2, 2, 2, 2), downsamples=(True, True, True, True),
                  enc_dilations=(1, 1, 1, 1, 1), dec_dilations=(1, 1, 1, 1),
                  norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'),
                  upsample_cfg=dict(type='InterpConv'), norm_eval=False),
    decode_head=dict(type='FCNHead', in_channels=64, in_index=4, channels=64, num_convs=1,
                     concat_input=False, dropout_ratio=0.1, norm_cfg=norm_cfg,
                     align_corners=False,
                     loss_decode=[dict(type='CrossEntropyLoss', use_sigmoid=False,
                                       avg_non_ignore=True, loss_weight=1.0),
                                  dict(type='ClassDiceLoss', loss_weight=1.0)]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
