# Runtime shared by the project's GAN configs (mmagic scope).
default_scope = 'mmagic'
custom_imports = dict(imports=['fundus_plugins'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', interval=1000, by_epoch=False, max_keep_ckpts=3,
                    save_optimizer=True, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Random generators in every checkpoint: a resumed run draws what an uninterrupted
    # one would (fundus_plugins/engine/random_state_hook.py).
    random_states=dict(type='RandomStateHook'),
    # Channels-last memory format on a CUDA device (nothing on the CPU).
    channels_last=dict(type='ChannelsLastHook'))

env_cfg = dict(
    cudnn_benchmark=True,  # cuDNN picks the fastest kernels (GPU only)
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

# Generator and discriminator are wrapped separately (mmagic's GAN wrapper).
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=False)

log_processor = dict(type='LogProcessor', by_epoch=False, window_size=50)
log_level = 'INFO'
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
randomness = dict(seed=0, diff_rank_seed=True)
load_from = None
resume = False
