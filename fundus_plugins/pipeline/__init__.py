"""The main job: data -> grades -> label ACGAN -> SPADE -> segmentation ablation ->
report, as stages that are skipped when done and resumed when interrupted."""
from pathlib import Path

from mmengine.config import Config

from ..evaluation.grades import predict_grades
from ..locks import folder_lock
from .common import image_modes
from .gates import GateFailed, check_section
from .runner import PipelineRunner, Stage, StageContext
from .stages import STAGE_NAMES, build_stages, plan_counts

__all__ = ['GateFailed', 'PipelineRunner', 'Stage', 'StageContext', 'STAGE_NAMES',
           'build_stages', 'plan_counts', 'predict_grades', 'run_pipeline']


def run_pipeline(config: str, work_dir=None, force=(), cfg_options=None, log=print):
    """Run the pipeline config at ``config``; returns each stage's results."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'image_size' not in cfg:
        raise KeyError(f"{config}: pipeline config needs a top-level 'image_size'")
    image_modes(cfg)  # a wrong images.mode fails before anything runs
    if 'gates' not in cfg:  # a config from before the gates: their defaults
        cfg.gates = {}
    check_section(cfg.gates)  # and so does a wrong gates key
    work = work_dir or cfg.get('work_dir') or f'work_dirs/pipeline_{Path(config).stem}'
    with folder_lock(work, 'tools/run_pipeline.py'):  # one work dir, one pipeline
        runner = PipelineRunner(cfg, build_stages(), work, force, log)
        # Counts before compute: a fraction the sampled maps cannot meet fails here.
        plan_counts(cfg, Path(work), log)
        return runner.run()
