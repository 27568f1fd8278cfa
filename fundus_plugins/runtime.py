"""Helpers shared by tools/train.py and tools/test.py."""
from __future__ import annotations

import difflib

from mmengine.config import Config

from .classes import resolve_classes

#: Top-level config keys the mmengine Runner (and this project's tools) read.
RUNNER_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader',
    'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler',
    'val_evaluator', 'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor',
    'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name', 'cfg', 'runner_type',
    'custom_imports', 'vis_backends', 'lesion_classes', 'data_root', 'vgg_weights',
    'inception_path', 'image_size', 'synthetic_root', 'synthetic_fraction', 'synthetic_seed',
    'model_wrapper_cfg',
)


#: Component fields filled from a top-level config key when left out (or None):
#: field -> (top-level key, component types).
RUN_SETTINGS = {
    'classes': ('lesion_classes', {'FundusDataset', 'FundusSegDataset', 'LabelACGAN',
                                    'LabelMapMetric', 'SPADEGAN'}),
    'data_root': ('data_root', {'FundusDataset', 'FundusSegDataset'}),
    'real_root': ('data_root', {'LabelMapMetric'}),
    'vgg_weights': ('vgg_weights', {'SPADEGAN'}),
    'size': ('image_size', {'ResizeFundus'}),
    'out_size': ('image_size', {'SPADEGenerator'}),
    # The synthetic share of segmentation training sets (training split only).
    'synthetic_root': ('synthetic_root', {'FundusSegDataset'}),
    'synthetic_fraction': ('synthetic_fraction', {'FundusSegDataset'}),
    'synthetic_seed': ('synthetic_seed', {'FundusSegDataset'}),
}
#: Fields filled only into datasets of the training split.
TRAIN_SPLIT_ONLY = {'synthetic_root', 'synthetic_fraction', 'synthetic_seed'}


def apply_run_settings(cfg: Config) -> None:
    """Give components the config's top-level ``lesion_classes``, ``data_root``,
    ``vgg_weights`` and ``synthetic_*`` keys (see ``RUN_SETTINGS``).

    These keys are the one place a run's classes, data and weight files are set
    (``--cfg-options "lesion_classes=['OD','EX']" data_root=data/x`` changes them
    everywhere): every component that takes them and leaves them out (or None) gets them.
    A component that sets its own value keeps it. Segmentation heads get
    ``num_classes = len(ClassSet(lesion_classes))`` likewise.
    """
    num_classes = len(resolve_classes(cfg.get('lesion_classes')))

    def visit(node):
        if isinstance(node, dict):
            # Segmentation heads (mmseg: every *Head) get num_classes from the class list.
            if str(node.get('type', '')).endswith('Head') and node.get('num_classes') is None:
                node['num_classes'] = num_classes
            for field, (key, types) in RUN_SETTINGS.items():
                if field in TRAIN_SPLIT_ONLY and node.get('split', 'train') != 'train':
                    continue
                if node.get('type') in types and node.get(field) is None and key in cfg:
                    value = cfg[key]
                    node[field] = list(value) if isinstance(value, (list, tuple)) else value
            for value in node.values():
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)

    for key in cfg.keys():
        if key not in {k for k, _ in RUN_SETTINGS.values()}:
            visit(cfg[key])


def check_config_keys(cfg: Config, path: str = 'config') -> None:
    """Refuse top-level keys that look like misspelt Runner keys.

    Configs may define helper variables of any name, so a key is refused only when it is
    not a known key but is very close to one (``train_dataloder``): mmengine would
    silently ignore it and train without what the user meant to set.
    """
    for key in cfg.keys():
        if key in RUNNER_KEYS or key.startswith('_'):
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.85)
        if close:
            raise KeyError(f'{path}: unknown config key {key!r}; did you mean {close[0]!r}? '
                           f'(mmengine would silently ignore it)')


def enable_amp(cfg: Config) -> None:
    """Switch every optimizer wrapper of ``cfg`` to mmengine's AmpOptimWrapper."""
    ow = cfg.get('optim_wrapper')
    if ow is None:
        raise KeyError('--amp: the config has no optim_wrapper')
    wrappers = [ow] if 'type' in ow and ow['type'] != 'MultiOptimWrapperConstructor' and \
        'optimizer' in ow else [v for v in ow.values() if isinstance(v, dict) and 'optimizer' in v]
    if not wrappers:
        raise KeyError('--amp: found no optimizer wrapper in optim_wrapper')
    for w in wrappers:
        if w.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            continue
        w['type'] = 'AmpOptimWrapper'
        w.setdefault('loss_scale', 'dynamic')


def build_runner(cfg: Config):
    """The runner a config asks for (``runner_type``) or mmengine's Runner."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from .compat import cuda_devices, patch_mmengine_cpu_distributed

    if cfg.get('launcher', 'none') not in (None, 'none') and cuda_devices() == 0:
        patch_mmengine_cpu_distributed()
    apply_run_settings(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def set_train_length(cfg: Config, length: int) -> None:
    """Train for ``length`` iterations (iteration loops) or epochs (epoch loops).

    ``train_cfg.max_iters`` / ``max_epochs`` is set, and every ``param_scheduler`` entry's
    ``begin`` / ``end`` is rescaled by the same ratio, so a schedule written as
    "decay over the second half" stays that (configs compute such bounds from their own
    length when they are parsed, which a plain ``--cfg-options`` would not update).
    """
    if length < 1:
        raise ValueError(f'train length must be at least 1, got {length}')
    tc = cfg.train_cfg
    key = 'max_iters' if 'max_iters' in tc else 'max_epochs' if 'max_epochs' in tc else None
    if key is None:
        raise KeyError('train_cfg has neither max_iters nor max_epochs')
    ratio = length / tc[key]
    tc[key] = length
    if 'val_interval' in tc and tc['val_interval'] > length:
        tc['val_interval'] = length

    def rescale(node):
        if isinstance(node, dict) and ('begin' in node or 'end' in node):
            for k in ('begin', 'end'):
                if node.get(k) is not None:
                    node[k] = max(0, int(round(node[k] * ratio)))
        elif isinstance(node, dict):
            for v in node.values():
                rescale(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                rescale(v)

    rescale(cfg.get('param_scheduler'))
