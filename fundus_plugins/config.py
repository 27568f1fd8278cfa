"""How a config file becomes a run: the one path every tool and the pipeline take.

:func:`load_config` reads a config with mmengine (``Config.fromfile``), merges
``--cfg-options`` (carrying a changed run setting into the components, see below), refuses
misspelt runner keys, and sets what the command line asks for (work dir, launcher, mixed
precision, resume). It fills in nothing else: every config under ``configs/`` is complete
on its own, so mmengine's own ``Runner.from_cfg(Config.fromfile(path))`` builds the same
model and data from it (``tests/test_configs.py`` checks both). :func:`build_runner` then
builds the runner; ``tools/print_config.py`` prints what :func:`load_config` returns.

Run settings
    A config's top-level ``lesion_classes``, ``data_root``, ``image_size`` (or
    ``label_size``), ``vgg_weights`` and ``synthetic_*`` keys are the one place a run's
    classes, data and size are set; the config writes them into its components itself
    (``data_root=data_root`` ...), and the channel counts that follow from the classes
    (``num_classes = len(lesion_classes) + 2``, BG and RET first) likewise. A config that
    inherits from another and changes such a key writes it into the components again,
    as any mmengine config must. mmengine's ``--cfg-options lesion_classes=[...]`` would
    change only the top-level key; :func:`merge_options` also changes every component
    field that had the key's old value (``RUN_SETTINGS``), and the counts derived from
    the classes. A component that set a value of its own keeps it.
    :func:`check_run_settings` lists the component fields that disagree with their key;
    the tools print them as warnings.
"""
from __future__ import annotations

import ast
import copy
import difflib
import inspect
import os.path as osp
from typing import Callable, Optional

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import MODELS, RUNNERS, DefaultScope
from mmengine.runner import Runner

from .checkpoint import checkpoint_problem, find_resume_checkpoint
from .classes import ClassSet
from .compat import cuda_devices, patch_mmengine_cpu_distributed
from .errors import UserFileNotFoundError, UserKeyError, UserValueError
from .engine.precision import bf16_supported

#: Top-level config keys the mmengine Runner (and this project's tools) read.
RUNNER_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader',
    'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler',
    'val_evaluator', 'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor',
    'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name', 'cfg', 'runner_type',
    'custom_imports', 'vis_backends', 'lesion_classes', 'data_root', 'vgg_weights',
    'inception_path', 'image_size', 'label_size', 'synthetic_root', 'synthetic_fraction',
    'synthetic_seed', 'model_wrapper_cfg', 'num_classes', 'num_label_channels', 'precision',
    'sync_bn',
)

#: Segmentation heads (mmseg: every ``*Head``) take ``num_classes``.
HEAD = '*Head'

#: Top-level key -> the (component types, field) pairs a config writes it into.
RUN_SETTINGS = {
    'lesion_classes': [({'FundusDataset', 'FundusSegDataset', 'LabelACGAN', 'LabelMapMetric',
                         'SPADEGAN', 'SPADEInpaintGAN'}, 'classes')],
    'data_root': [({'FundusDataset', 'FundusSegDataset'}, 'data_root'),
                  ({'LabelMapMetric'}, 'real_root')],
    'image_size': [({'ResizeFundus'}, 'size'), ({'SPADEGenerator'}, 'out_size')],
    'label_size': [({'ResizeFundus'}, 'size'), ({'LabelMapGenerator'}, 'out_size'),
                   ({'LabelMapDiscriminator'}, 'in_size')],
    'vgg_weights': [({'SPADEGAN', 'SPADEInpaintGAN'}, 'vgg_weights')],
    # 'auto' (bf16 on a CUDA device that supports it, else fp32), 'fp32', 'bf16', 'fp16'.
    'precision': [({'PrecisionOptimWrapper'}, 'precision')],
    # The synthetic share of segmentation training sets (training split only).
    'synthetic_root': [({'FundusSegDataset'}, 'synthetic_root')],
    'synthetic_fraction': [({'FundusSegDataset'}, 'synthetic_fraction')],
    'synthetic_seed': [({'FundusSegDataset'}, 'synthetic_seed')],
    # Channel counts: len(ClassSet(lesion_classes)) (derived, see DERIVED).
    'num_classes': [({HEAD}, 'num_classes')],
    'num_label_channels': [({'LabelMapGenerator'}, 'min_channels')],
}
#: Keys whose value follows from another's: key -> (source key, function of its value).
DERIVED = {
    'num_classes': ('lesion_classes', lambda classes: len(ClassSet(classes))),
    'num_label_channels': ('lesion_classes', lambda classes: len(ClassSet(classes))),
}
#: Fields written only into datasets of the training split.
TRAIN_SPLIT_ONLY = {'synthetic_root', 'synthetic_fraction', 'synthetic_seed'}


def _matches(node: dict, types: set) -> bool:
    kind = str(node.get('type', ''))
    return kind in types or (HEAD in types and kind.endswith('Head'))


def _components(cfg: Config):
    """(dotted path, dict) of every dict with a ``type`` in the config's values (the
    run-setting keys themselves left out)."""
    def walk(node, path):
        if isinstance(node, dict):
            if 'type' in node:
                yield path, node
            for key, value in node.items():
                yield from walk(value, f'{path}.{key}')
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                yield from walk(value, f'{path}[{i}]')

    for key in cfg.keys():
        if key not in RUN_SETTINGS:
            yield from walk(cfg[key], key)


def _linked_fields(cfg: Config, key: str):
    """(path, component, field) of every component field the top-level ``key`` goes to."""
    for path, node in _components(cfg):
        for types, field in RUN_SETTINGS[key]:
            if not _matches(node, types):
                continue
            if field in TRAIN_SPLIT_ONLY and node.get('split', 'train') != 'train':
                continue
            yield path, node, field


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


#: Untyped dicts the Runner hands to a function or class: path -> how to find its keys.
UNTYPED_SECTIONS = {
    'randomness': lambda node: (*_params(Runner.set_randomness), 'Runner.set_randomness'),
    'train_cfg': lambda node: _loop_params(node, train=True),
    'val_cfg': lambda node: _loop_params(node, train=False, kind='ValLoop'),
    'test_cfg': lambda node: _loop_params(node, train=False, kind='TestLoop'),
}


def _params(fn):
    """(accepted keyword names, open) of ``fn``: open when it takes ``**kwargs``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return set(), True
    names = {n for n, p in sig.parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != 'self'}
    return names, any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


def _loop_params(node, train: bool, kind: Optional[str] = None):
    from mmengine.runner import loops
    if train:
        kind = 'EpochBasedTrainLoop' if node.get('by_epoch', True) else 'IterBasedTrainLoop'
    names, open_ = _params(getattr(loops, kind))
    return names | {'by_epoch', 'type'}, open_, kind


def _component_params(kind, scope: str):
    """(accepted keys, open) of the component a config dict of ``type=kind`` builds,
    looked up in every registry of ``scope``; (set(), True) when none is found."""
    if not isinstance(kind, str):
        found = [kind]
    else:
        from mmengine import registry
        found = []
        with DefaultScope.overwrite_default_scope(scope):
            for name in dir(registry):
                reg = getattr(registry, name)
                if isinstance(reg, registry.Registry):
                    try:
                        obj = reg.get(kind)
                    except Exception:  # a registry that cannot import its scope
                        obj = None
                    if obj is not None and obj not in found:
                        found.append(obj)
    if not found:
        return set(), True
    names, open_ = set(), False
    for obj in found:
        n, o = _params(obj)
        names |= n
        open_ = open_ or o
    return names | {'type', '_scope_'}, open_


def check_option_key(cfg: Config, key: str) -> None:
    """Refuse a ``--cfg-options`` key that names nothing the config or its component
    takes and looks misspelt (``randomness.seeed``), naming the key and the nearest valid
    ones; mmengine would add it and fail later with a TypeError deep inside, or not at all.

    The first part of the dotted key the config lacks is compared with its siblings and,
    where the dict builds something (a ``type``, or one of the Runner's ``randomness``,
    ``train_cfg``, ``val_cfg``, ``test_cfg``), with the arguments that takes. A new key is
    refused when it is close to one of those, or when the thing built takes a fixed set of
    arguments that does not hold it; a new key under a component that takes ``**kwargs``
    and is unlike every sibling is let through.
    """
    parts = key.split('.')
    node, where = cfg, ''
    for i, part in enumerate(parts):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node, where = node[int(part)], f'{where}.{part}' if where else part
            continue
        if not isinstance(node, (dict, Config)):
            return  # a value replaced by a dict: mmengine's business
        if part in node:
            node, where = node[part], f'{where}.{part}' if where else part
            continue
        siblings = {k for k in node.keys() if not str(k).startswith('_')}
        accepted, open_, owner = set(), True, where
        if node is cfg:
            accepted, owner = set(RUNNER_KEYS), 'the Runner'
        elif 'type' in node:
            accepted, open_ = _component_params(node['type'], cfg.get('default_scope') or
                                                'mmengine')
            owner = node['type'] if isinstance(node['type'], str) else \
                getattr(node['type'], '__name__', where)
        elif where in UNTYPED_SECTIONS:
            accepted, open_, owner = UNTYPED_SECTIONS[where](node)
        if part in accepted:  # a key it takes, not set yet: what is under it, too
            node, where = {}, f'{where}.{part}' if where else part
            continue
        candidates = sorted(siblings | accepted)
        close = difflib.get_close_matches(part, candidates, n=3, cutoff=0.75)
        if not close and (open_ or not accepted):
            return  # a new key of a component that takes it
        hint = (f'did you mean {" or ".join(repr(c) for c in close)}?' if close else
                f'it takes {", ".join(sorted(accepted - {"type", "_scope_"}))}')
        raise UserKeyError(
            f'--cfg-options {key}: {where or "the config"} has no key {part!r}, and '
            f'{owner} does not take one of that name; {hint} Check the spelling '
            f'(tools/print_config.py prints the config with its keys)')


def merge_options(cfg: Config, options: Optional[dict], log: Callable = print_log) -> None:
    """``cfg.merge_from_dict(options)``, carrying changed run settings into the components.

    For every top-level key of ``RUN_SETTINGS`` the options change, each component field
    that held the key's old value gets the new one; a changed ``lesion_classes`` also
    changes the counts of ``DERIVED`` (unless the options set them too). A run setting the
    config does not have is an error (it would reach nothing), and so is a key that looks
    misspelt (:func:`check_option_key`).
    """
    if not options:
        return
    options = dict(options)
    for key in options:
        if key in RUN_SETTINGS and key not in cfg:
            have = sorted(k for k in RUN_SETTINGS if k in cfg)
            raise UserKeyError(f'--cfg-options {key}: this config has no top-level {key!r}, '
                               f'so it would reach no component; its run settings: {have}')
        check_option_key(cfg, key)
    old = {k: copy.deepcopy(cfg[k]) for k in RUN_SETTINGS if k in cfg}
    cfg.merge_from_dict(options)
    changed = {k: (old[k], cfg[k]) for k in old if _plain(cfg[k]) != _plain(old[k])}
    for key, (source, fn) in DERIVED.items():
        if source in changed and key in cfg and key not in options:
            before, after = fn(changed[source][0]), fn(changed[source][1])
            if cfg[key] == before and before != after:
                cfg[key] = after
                changed[key] = (before, after)
    for key, (before, after) in changed.items():
        # Find every field first: a pipeline two dataloaders share is one object.
        hits = [(path, node, field) for path, node, field in _linked_fields(cfg, key)
                if field in node and _plain(node[field]) == _plain(before)]
        moved = []
        for path, node, field in hits:
            node[field] = copy.deepcopy(after)
            moved.append(f'{path}.{field}')
        if moved:
            log(f'{key} = {after!r} also set in: {", ".join(moved)}', logger='current')


def check_run_settings(cfg: Config) -> list:
    """Component fields that disagree with (or leave out) the run setting they follow.

    Returns messages such as ``"train_dataloader.dataset.data_root = 'a' differs from
    data_root = 'b'"``; an empty list for a config whose components all follow its
    top-level keys (every config under ``configs/``).
    """
    problems = []
    for key in RUN_SETTINGS:
        if key not in cfg:
            continue
        for path, node, field in _linked_fields(cfg, key):
            if field not in node:
                if key in ('lesion_classes', 'data_root', 'num_classes', 'image_size',
                           'label_size'):
                    problems.append(f'{path}.{field} is left out; {key} = {cfg[key]!r}')
            elif _plain(node[field]) != _plain(cfg[key]):
                problems.append(f'{path}.{field} = {node[field]!r} differs from '
                                f'{key} = {cfg[key]!r}')
    return problems


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
            raise UserKeyError(f'{path}: unknown config key {key!r}; did you mean '
                               f'{close[0]!r}? (mmengine would silently ignore it)')


def enable_amp(cfg: Config) -> None:
    """Mixed precision for every optimizer wrapper of ``cfg`` (``--amp``): a
    ``PrecisionOptimWrapper`` gets bf16 where the device supports it, else fp16; any other
    wrapper becomes mmengine's AmpOptimWrapper (fp16, dynamic loss scaling)."""

    ow = cfg.get('optim_wrapper')
    if ow is None:
        raise UserKeyError('--amp: the config has no optim_wrapper; give a config that '
                           'trains')
    wrappers = [ow] if 'type' in ow and ow['type'] != 'MultiOptimWrapperConstructor' and \
        'optimizer' in ow else [v for v in ow.values() if isinstance(v, dict) and 'optimizer' in v]
    if not wrappers:
        raise UserKeyError('--amp: found no optimizer wrapper in optim_wrapper')
    for w in wrappers:
        if w.get('type') == 'PrecisionOptimWrapper':
            w['precision'] = 'bf16' if bf16_supported() else 'fp16'
            continue
        if w.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            continue
        w['type'] = 'AmpOptimWrapper'
        w.setdefault('loss_scale', 'dynamic')


def default_work_dir(path: str) -> str:
    """``work_dirs/<config name>``, as OpenMMLab's tools name a run's folder."""
    return osp.join('work_dirs', osp.splitext(osp.basename(path))[0])


def _sets_own_key(path: str, key: str) -> bool:
    """Whether the config file at ``path`` assigns ``key`` itself (not via a base)."""
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read())
    except (SyntaxError, UnicodeDecodeError):  # not Python (a .json / .yaml config)
        return True
    return any(isinstance(node, ast.Assign) and
               any(isinstance(t, ast.Name) and t.id == key for t in node.targets)
               for node in tree.body)


def load_config(path: str, cfg_options: Optional[dict] = None, *, work_dir=None,
                launcher: Optional[str] = None, amp: bool = False, resume=None,
                log: Callable = print_log) -> Config:
    """The config at ``path`` as the tools run it.

    Registers the project's components, reads the file, merges ``cfg_options``
    (:func:`merge_options`), refuses misspelt keys (:func:`check_config_keys`) and warns
    about components that disagree with their run setting (:func:`check_run_settings`).
    ``work_dir`` replaces the config's; without it the config's own ``work_dir`` is used,
    or ``work_dirs/<config name>`` when the file sets none itself (one inherited from a
    base config would mix two runs in one folder). ``launcher``, ``amp`` (mmengine's
    AmpOptimWrapper) and ``resume`` (``'auto'``: the latest checkpoint of the work dir; a
    path: that checkpoint) are set when given.
    """
    if not osp.isfile(path):
        raise UserFileNotFoundError(f'{path}: config not found; give the path of a config '
                                    f'file (configs/...)')
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as exc:
        raise UserValueError(f'{path}: not a valid config: {exc.msg} at line {exc.lineno}; '
                             f'fix the file') from exc
    merge_options(cfg, cfg_options, log=log)
    check_config_keys(cfg, path)
    for problem in check_run_settings(cfg):
        log(f'{path}: {problem}', logger='current', level=30)
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(path)
    elif not _sets_own_key(path, 'work_dir'):
        # Inherited from a base config: a new config must not write into its parent's run.
        log(f'{path}: work_dir {cfg.work_dir} is a base config\'s; this run writes to '
            f'{default_work_dir(path)} (set work_dir in the config or pass --work-dir)',
            logger='current')
        cfg.work_dir = default_work_dir(path)
    if launcher is not None:
        cfg.launcher = launcher
    if amp:
        enable_amp(cfg)
    if resume == 'auto' or resume is True:
        latest = find_resume_checkpoint(cfg.work_dir, log=lambda m: log(m, logger='current'))
        if latest is None:
            log(f'--resume: no intact checkpoint in {cfg.work_dir}; training from the start',
                logger='current')
            cfg.resume, cfg.load_from = False, None
        else:
            log(f'resuming from {latest}', logger='current')
            cfg.resume, cfg.load_from = True, latest
    elif resume:
        problem = checkpoint_problem(resume)
        if problem is not None:
            raise (UserFileNotFoundError if problem == 'not found' else UserValueError)(
                f'--resume {resume}: {problem}; give an intact checkpoint, or --resume '
                f'alone for the newest intact one of the work dir')
        cfg.resume, cfg.load_from = True, str(resume)
    return cfg


def build_runner(cfg: Config):
    """The runner a loaded config asks for (``runner_type``) or mmengine's Runner.

    A distributed run on a machine without CUDA devices gets the CPU-process workaround
    of :mod:`fundus_plugins.compat` first (never applied otherwise)."""

    if cfg.get('launcher', 'none') not in (None, 'none') and cuda_devices() == 0:
        patch_mmengine_cpu_distributed()
        if cfg.get('sync_bn') is not None:  # torch's SyncBatchNorm runs on GPUs only
            print_log(f"sync_bn={cfg.sync_bn!r} left out: CPU processes keep plain batch "
                      'norm', logger='current', level=30)
            cfg.sync_bn = None
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def build_model(cfg: Config):
    """Build ``cfg.model`` in its config's scope (``default_scope``)."""

    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmagic')):
        return MODELS.build(cfg.model)


def runner_for(cfg: Config, work_dir, no_val: bool = False, log: Callable = print):
    """The runner of an already loaded ``cfg`` writing to ``work_dir``, resuming from the
    newest intact checkpoint there when there is one (:func:`.checkpoint.
    find_resume_checkpoint`); ``no_val`` drops the val loop."""

    cfg.work_dir = str(work_dir)
    if no_val:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    latest = find_resume_checkpoint(work_dir, log=log)
    if latest:
        log(f'resuming from {latest}')
        cfg.resume, cfg.load_from = True, latest
    runner = build_runner(cfg)
    from .engine.timing import attach
    attach(runner)  # the time plan's probe, when one is recording; else nothing
    return runner


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
