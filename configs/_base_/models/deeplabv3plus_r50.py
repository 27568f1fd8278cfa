# DeepLabV3+ on a ResNet-50 (V1c) backbone, trained from scratch (no weights can be
# downloaded; set model.pretrained / init_cfg to a local file to start from one).
# Losses as the U-Net's; num_classes is set by the configs that use it (_base_.num_classes).
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=False, pad_val=0,
                           seg_pad_val=255, size_divisor=16),
    pretrained=None,
    backbone=dict(type='ResNetV1c', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                  dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg,
                  norm_eval=False, style='pytorch', contract_dilation=True),
    decode_head=dict(type='DepthwiseSeparableASPPHead', in_channels=2048, in_index=3,
                     channels=512, dilations=(1, 12, 24, 36), c1_in_channels=256,
                     c1_channels=48, dropout_ratio=0.1, norm_cfg=norm_cfg,
                     align_corners=False,
                     loss_decode=[dict(type='CrossEntropyLoss', use_sigmoid=False,
                                       avg_non_ignore=True, loss_weight=1.0),
                                  dict(type='ClassDiceLoss', loss_weight=1.0)]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
