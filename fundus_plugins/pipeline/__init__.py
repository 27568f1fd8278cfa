"""The main job: data -> grades -> label ACGAN -> SPADE -> segmentation ablation ->
report, as stages that are skipped when done and resumed when interrupted."""
from pathlib import Path

from mmengine.config import Config

from ..evaluation.grades import predict_grades
from ..locks import folder_lock
from .common import SECTION_KEYS, check_sections, image_modes
from .gates import GateFailed, check_section
from .plan import PROBED_STAGES, format_plan, time_plan
from .runner import PipelineRunner, Stage, StageContext
from .stages import STAGE_NAMES, build_stages, plan_counts

__all__ = ['GateFailed', 'PipelineRunner', 'SECTION_KEYS', 'Stage', 'StageContext',
           'STAGE_NAMES', 'build_stages', 'check_sections', 'plan_counts', 'predict_grades',
           'run_pipeline']


def run_pipeline(config: str, work_dir=None, force=(), cfg_options=None, log=print,
                 plan_only: bool = False):
    """Run the pipeline config at ``config``; returns each stage's results. The time
    plan (:mod:`.plan`) comes first, and with ``plan_only`` alone (returned; nothing is
    trained in the work dir)."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'image_size' not in cfg:
        raise KeyError(f"{config}: pipeline config needs a top-level 'image_size'")
    check_sections(cfg, config)  # an unknown section key (a typo) fails before anything runs
    image_modes(cfg)  # a wrong images.mode fails before anything runs
    from .stages import section_gpus, section_launcher
    for sec in (cfg.labels, cfg.images):  # and so does a wrong gpus or launcher
        section_gpus(sec)
        section_launcher(sec)
    if 'gates' not in cfg:  # a config from before the gates: their defaults
        cfg.gates = {}
    check_section(cfg.gates)  # and so does a wrong gates key
    unknown = sorted(set(cfg.get('plan') or {}) - {'probe'})
    if unknown:
        raise KeyError(f'{config}: plan: unknown key(s) {unknown}; expected probe '
                       '(True: time the models before the run when the work dir has no '
                       'plan for these settings, False: not)')
    work = work_dir or cfg.get('work_dir') or f'work_dirs/pipeline_{Path(config).stem}'
    with folder_lock(work, 'tools/run_pipeline.py'):  # one work dir, one pipeline
        runner = PipelineRunner(cfg, build_stages(), work, force, log)
        # Counts before compute: a fraction the sampled maps cannot meet fails here.
        plan_counts(cfg, Path(work), log)
        todo = [s.name for s, _, action in runner.plan() if action != 'skip']
        probe = plan_only or (bool((cfg.get('plan') or {}).get('probe', True)) and
                              any(s in todo for s in PROBED_STAGES + ('segmentation',)))
        plan = time_plan(cfg, runner, log, probe=probe)
        if plan_only:
            log('time plan:\n' + format_plan(plan))
            return plan
        if plan is not None:
            runner.estimates = {k: v['seconds'] for k, v in plan['stages'].items()}
            if probe:
                log('time plan:\n' + format_plan(plan))
        return runner.run()
