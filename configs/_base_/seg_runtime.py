# Runtime shared by the project's segmentation configs (mmseg scope).
default_scope = 'mmseg'
custom_imports = dict(imports=['fundus_plugins'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=10, max_keep_ckpts=2,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # Random generators in every checkpoint: a resumed run draws what an uninterrupted
    # one would (fundus_plugins/engine/random_state_hook.py).
    random_states=dict(type='RandomStateHook'),
    # Channels-last memory format on a CUDA device (nothing on the CPU).
    channels_last=dict(type='ChannelsLastHook'))
env_cfg = dict(
    cudnn_benchmark=True,  # cuDNN picks the fastest kernels (GPU only)
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
# Local TorchScript Inception (inception-2015-12-05.pt) for FID / KID of synthetic images
# (tools/measure_synthetic.py); without the file they are reported as not computed.
inception_path = 'data/weights/inception-2015-12-05.pt'
