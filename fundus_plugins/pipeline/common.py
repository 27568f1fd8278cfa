"""What the stages and the report share: the options that point a step's config at the
pipeline's data, the segmentation protocols and where their runs live, and the paper's
counts."""
from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import UserKeyError, UserValueError
from ..segmentation.slurm import SLURM_KEYS


#: The keys each section of a pipeline config takes: the ones the stages, the time plan
#: and the report read (``gates`` and ``plan`` check their own). A sub-dict is named
#: ``section.key``; ``cfg_options`` (a model config's overrides) and ``data.od_model``
#: (options of :func:`~fundus_plugins.datasets.optic_disc.train_od_model`) are passed on
#: whole and not checked here.
SECTION_KEYS = {
    # stages.run_data / _source_records / real_training_count / estimate_data,
    # plan.probe_config / estimate / _total_images
    'data': frozenset({
        'source',                          # 'phantom' or 'prepare'
        'num', 'size', 'seed', 'workers', 'test_fraction',
        'ungraded_fraction',               # phantom only: training grades hidden
        'idrid', 'fgadr', 'fgadr_exclude', 'ddr',  # source 'prepare': dataset roots
        'od_file', 'od_model',             # source 'prepare': FGADR's optic discs
    }),
    # stages.run_grades -> predict_grades(seed, size)
    'grades': frozenset({'seed', 'size'}),
    # stages.run_labels / plan_counts / gate_labels / estimate_labels, section_gpus,
    # section_launcher, report (config)
    'labels': frozenset({
        'config', 'max_iters', 'cfg_options', 'gpus', 'launcher',
        'num_per_grade', 'seed', 'fov', 'sample_model',
    }),
    # stages.run_images / _trained_translator / translation_devices / images_hashed /
    # estimate_images, common.section_modes, plan.probe_config / estimate
    'images': frozenset({
        'config', 'max_iters', 'cfg_options', 'gpus', 'launcher',
        'mode', 'inpaint',                 # image modes; inpaint: the sub-dict below
        'device', 'translate_devices',     # where the model loads; translation spread
        'batch_size', 'amp', 'workers', 'writers',  # translation (batch_size: inpainting too)
    }),
    # stages.run_images / _trained_translator (gpus and launcher default to images'),
    # gate_images, estimate_images, plan.estimate
    'images.inpaint': frozenset({'config', 'max_iters', 'cfg_options', 'gpus', 'launcher',
                                 'seed'}),
    # stages.run_segmentation / gates_hashed / real_only_dir / _seg_options / plan_counts /
    # estimate_*, plan._seg_loader / seg_runs / _lanes, report (protocols, seeds)
    'segmentation': frozenset({
        'config', 'cfg_options', 'max_epochs', 'fractions', 'seeds', 'protocols',
        'threads',
        'parallel', 'launcher', 'slurm',   # where the runs go (stages.LAUNCH_KEYS)
    }),
    # segmentation.ablation.run_ablation -> segmentation.slurm.slurm_settings
    'segmentation.slurm': frozenset(SLURM_KEYS),
    # report.run_report
    'report': frozenset({'examples_per_grade'}),
}


#: The top-level keys of a pipeline config: the sections, ``gates`` and ``plan`` (which
#: check their own keys) and the settings every stage shares.
TOP_KEYS = frozenset({'work_dir', 'lesion_classes', 'image_size', 'gates', 'plan'}
                     | {name for name in SECTION_KEYS if '.' not in name})


def check_sections(cfg, config_name: str = 'pipeline config') -> None:
    """An unknown top-level key (:data:`TOP_KEYS`: a misspelt section such as ``gate``),
    or an unknown key in a section of :data:`SECTION_KEYS` (or in its sub-dicts
    ``images.inpaint``, ``segmentation.slurm``) is an error naming it, what is allowed
    there and, for a near miss, the key meant; before anything runs. Absent sections
    (and sub-dicts that are None) are left to the stages."""
    for key in cfg.keys():
        if key not in TOP_KEYS:
            near = difflib.get_close_matches(str(key), sorted(TOP_KEYS), n=1)
            raise UserKeyError(f'{config_name}: pipeline config key {key!r}: unknown; a '
                               f'pipeline config takes {sorted(TOP_KEYS)}'
                               + (f"; did you mean '{near[0]}'?" if near else ''))
    for name, allowed in SECTION_KEYS.items():
        head, _, sub = name.partition('.')
        section = cfg.get(head)
        if sub:
            section = section.get(sub) if hasattr(section, 'get') else None
        if not hasattr(section, 'keys'):
            continue
        for key in section.keys():
            if key in allowed:
                continue
            near = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            raise UserKeyError(
                f'{config_name}: pipeline {name}.{key}: unknown key; the {name} section '
                f'takes {sorted(allowed)}'
                + (f"; did you mean '{near[0]}'?" if near else ''))


def model_options(ctx, extra=None) -> dict:
    """Config options that point a step's config at the pipeline's real data and
    classes, plus ``extra``."""
    opts = {'data_root': str(ctx.path('real'))}
    if 'lesion_classes' in ctx.cfg:
        opts['lesion_classes'] = list(ctx.cfg.lesion_classes)
    if extra is not None and not hasattr(extra, 'items'):
        # --cfg-options cannot give a dict in braces: it arrives as a string.
        raise UserValueError(
            f'{ctx.stage.name}: cfg_options must map config keys to values, got '
            f'{type(extra).__name__} {str(extra)[:80]!r}; on the command line give one '
            f'key at a time, e.g. {ctx.stage.name}.cfg_options.model.generator.'
            'base_channels=256')
    opts.update(extra or {})
    return opts


#: The two training protocols of the segmentation stage: the paper's (a fixed number of
#: epochs, so larger training sets get more updates) and the control that gives every
#: fraction about the updates of the real-only run.
PROTOCOLS = ('fixed_epochs', 'equal_updates')


#: How the images stage makes synthetic images: ``full`` translates the sampled label maps
#: into whole photographs (SPADE, the paper); ``inpaint`` places their lesions on real
#: healthy training images and paints only those (the inpainting translator).
IMAGE_MODES = ('full', 'inpaint')


def image_modes(cfg) -> list:
    """The pipeline's ``images.mode`` as a list (:func:`section_modes`)."""
    return section_modes(cfg.images)


def section_modes(images) -> list:
    """An ``images`` section's ``mode`` as a list: ``'full'`` (the default),
    ``'inpaint'``, or both (``['full', 'inpaint']``, in that order); anything else is an
    error naming the key."""
    mode = images.get('mode', 'full')
    modes = [mode] if isinstance(mode, str) else list(mode or [])
    bad = [m for m in modes if m not in IMAGE_MODES]
    if bad or not modes or len(set(modes)) != len(modes):
        raise ValueError(f'pipeline images.mode: {mode!r}; expected one of {list(IMAGE_MODES)} '
                         f'or a list of them (each once)')
    if 'inpaint' in modes and not (images.get('inpaint') or {}).get('config'):
        raise ValueError("pipeline images.mode includes 'inpaint' but images.inpaint.config "
                         "is not set (e.g. images.inpaint=dict(config="
                         "'configs/inpaint_fundus_demo.py'))")
    return [m for m in IMAGE_MODES if m in modes]


def synthetic_dir(ctx, mode: str = 'full') -> Path:
    """Where the images stage writes the synthetic pairs of ``mode``."""
    return ctx.path('synthetic') if mode == 'full' else ctx.path(f'synthetic_{mode}')


def protocol_dir(ctx, protocol: str, mode: str = 'full') -> Path:
    """Where the segmentation runs of ``protocol`` on ``mode``'s synthetic pairs live:
    segmentation/ (the paper's protocol, whole-image synthesis), segmentation/<protocol>/,
    and segmentation/<mode>/<protocol>/ for the other modes."""
    if mode != 'full':
        return ctx.path('segmentation', mode, protocol)
    return ctx.path('segmentation') if protocol == 'fixed_epochs' else \
        ctx.path('segmentation', protocol)


#: Son et al.'s Table 1(c): 738 real training images (IDRiD + FGADR after their FGADR
#: exclusion list) and 246 / 738 / 2214 synthetic ones at 25 / 50 / 75 %.
PAPER_COUNTS = dict(real=738, synthetic={0.0: 0, 0.25: 246, 0.5: 738, 0.75: 2214})


def paper_counts_note(real: int, need: dict) -> str:
    """A sentence comparing the counts with the paper's Table 1(c)."""
    ours = ', '.join(f'{float(f) * 100:.0f} %: {n}' for f, n in need.items())
    paper = ', '.join(f'{f * 100:.0f} %: {n}' for f, n in PAPER_COUNTS['synthetic'].items())
    same = real == PAPER_COUNTS['real']
    return (f'Real training images: {real}; synthetic per fraction: {ours}. The paper had '
            f"{PAPER_COUNTS['real']} real ({paper}); "
            + ('the counts match.' if same else
               'these counts match the paper\'s only with its FGADR exclusion list (which '
               'it does not publish in full), so compare the trends, not the rows.'))
