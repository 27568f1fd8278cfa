"""The pipeline runner: stages in order, each skipped when already done with the same
settings, each re-run (with everything after it) when its settings change.

A stage's *fingerprint* hashes its own section of the pipeline config, the contents of
the config files it names, the run-wide keys (``lesion_classes``, ``image_size``) and the
fingerprint of the stage before it; a change anywhere upstream thus re-runs a stage.
State lives in ``WORK/.stages/<stage>.json``: ``running`` while a stage works (an
interrupted stage with an unchanged fingerprint goes on where it was, training resuming
from its last checkpoint), ``done`` with its wall time when it finished. A stage that
must re-run for a changed fingerprint first removes its old outputs.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from mmengine.config import Config


@dataclass
class Stage:
    name: str
    title: str
    outputs: Sequence[str]          # paths under the work dir that the stage owns
    run: Callable                   # run(ctx) -> dict of results (saved in its state)
    estimate: Callable              # estimate(cfg) -> seconds (rough, CPU demo scale)
    files: Callable = lambda section: []  # config files whose contents matter
    # the outputs a finished run leaves with this pipeline config (default: all of them)
    made: Optional[Callable] = None
    # what the fingerprint hashes: hashed(cfg) -> dict (default: the stage's section);
    # ``files`` is given the same
    hashed: Optional[Callable] = None
    # checks after the stage, run or skipped: gate(ctx) logs or raises GateFailed
    gate: Optional[Callable] = None


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 60} min {seconds % 60:02d} s' if seconds >= 60 else f'{seconds} s'


class PipelineRunner:
    """Runs ``stages`` over a pipeline config (an mmengine Config) in ``work_dir``."""

    def __init__(self, cfg, stages: Sequence[Stage], work_dir, force: Sequence[str] = (),
                 log: Callable = print):
        self.cfg = cfg
        self.stages = list(stages)
        self.work = Path(work_dir)
        names = [s.name for s in self.stages]
        unknown = [f for f in force if f not in names]
        if unknown:
            raise KeyError(f'--force: unknown stage(s) {unknown}; the stages are {names}')
        missing = [n for n in names if n not in cfg]
        if missing:
            raise KeyError(f'pipeline config: missing section(s) {missing} (one per stage: '
                           f'{names})')
        self.force = set(force)
        self.log = log
        self.results: Dict[str, dict] = {}
        # (stage, step number or 'end', time.perf_counter()): when each step of a stage
        # began and when the stage ended (the time plan's probe reads them)
        self.marks: List[tuple] = []
        # stage -> seconds: what the "left in the pipeline" lines add up (default: each
        # stage's rough ``estimate``; the time plan's when there is one)
        self.estimates: Dict[str, float] = {}

    # ---------------------------------------------------------------------------------
    def state_path(self, name: str) -> Path:
        return self.work / '.stages' / f'{name}.json'

    def read_state(self, name: str) -> Optional[dict]:
        path = self.state_path(name)
        return json.loads(path.read_text()) if path.is_file() else None

    def _write_state(self, name: str, state: dict) -> None:
        path = self.state_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state, indent=2) + '\n')

    def fingerprint(self, stage: Stage, upstream: str) -> str:
        section = stage.hashed(self.cfg) if stage.hashed else self.cfg[stage.name]
        h = hashlib.sha256()
        h.update(json.dumps(_jsonable(section.to_dict() if hasattr(section, 'to_dict')
                                      else section), sort_keys=True).encode())
        h.update(json.dumps(_jsonable({k: self.cfg.get(k) for k in
                                       ('lesion_classes', 'image_size')})).encode())
        for f in stage.files(section):
            p = Path(f)
            if p.suffix == '.py' and p.is_file():
                # The merged config: its _base_ files matter as much as the file itself.
                h.update(Config.fromfile(str(p)).pretty_text.encode())
            else:
                h.update(p.read_bytes() if p.is_file() else f'missing:{f}'.encode())
        h.update(upstream.encode())
        return h.hexdigest()[:16]

    def _outputs_present(self, stage: Stage) -> bool:
        made = stage.outputs if stage.made is None else stage.made(self.cfg)
        return all((self.work / o).exists() for o in made)

    def _clear(self, stage: Stage) -> None:
        for o in stage.outputs:
            p = self.work / o
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    # ---------------------------------------------------------------------------------
    def plan(self) -> List[tuple]:
        """(stage, fingerprint, action) with action 'skip', 'resume' or 'run'."""
        out, upstream, rerun = [], '', False
        for stage in self.stages:
            fp = self.fingerprint(stage, upstream)
            state = self.read_state(stage.name)
            if rerun or stage.name in self.force or state is None or state['fingerprint'] != fp:
                action = 'run'
            elif state['status'] == 'done' and self._outputs_present(stage):
                action = 'skip'
            else:  # interrupted (running) with these settings, or its outputs were removed
                action = 'resume' if state['status'] == 'running' else 'run'
            if action != 'skip':
                rerun = True  # everything after a stage that runs runs too
            out.append((stage, fp, action))
            upstream = fp
        return out

    def run(self) -> Dict[str, dict]:
        self.work.mkdir(parents=True, exist_ok=True)
        plan = self.plan()
        estimates = {s.name: self.estimates.get(s.name, s.estimate(self.cfg))
                     for s, _, a in plan if a != 'skip'}
        rough = not all(s.name in self.estimates for s, _, a in plan if a != 'skip')
        t_start = time.time()
        for i, (stage, fp, action) in enumerate(plan, 1):
            state = self.read_state(stage.name)
            head = f'[stage {i}/{len(plan)}: {stage.name}]'
            if action == 'skip':
                self.log(f'{head} done before with these settings '
                         f'({_fmt_time(state["wall_s"])}); skipped')
                self.results[stage.name] = state.get('results', {})
                self._gate(stage)
                continue
            left = sum(v for k, v in estimates.items()
                       if k in [s.name for s, _, _ in plan[i - 1:]])
            self.log(f'{head} {stage.title} - {"resuming" if action == "resume" else "running"}'
                     f'; about {_fmt_time(left)} left in the pipeline'
                     + (' (rough estimate)' if rough else ' (time plan)'))
            if action == 'run':
                self._clear(stage)
            started = time.time()
            self._write_state(stage.name, {'fingerprint': fp, 'status': 'running',
                                           'started': started})
            ctx = StageContext(self, stage)
            results = stage.run(ctx) or {}
            self.marks.append((stage.name, 'end', time.perf_counter()))
            wall = time.time() - started
            self._write_state(stage.name, {'fingerprint': fp, 'status': 'done',
                                           'wall_s': round(wall, 1), 'results': results,
                                           'finished': time.time()})
            self.results[stage.name] = results
            self.log(f'{head} finished in {_fmt_time(wall)}')
            self._gate(stage)
        self.log(f'pipeline finished in {_fmt_time(time.time() - t_start)}; work dir '
                 f'{self.work}')
        return self.results


    def _gate(self, stage: Stage) -> None:
        if stage.gate is not None:
            stage.gate(StageContext(self, stage))


class StageContext:
    """What a stage function gets: the config, its section, paths and a logger."""

    def __init__(self, runner: PipelineRunner, stage: Stage):
        self.runner = runner
        self.cfg = runner.cfg
        self.section = runner.cfg[stage.name]
        self.work = runner.work
        self.stage = stage
        self._step = 0

    def path(self, *parts) -> Path:
        return self.work.joinpath(*parts)

    def step(self, text: str, total: int) -> None:
        self._step += 1
        self.runner.marks.append((self.stage.name, self._step, time.perf_counter()))
        self.runner.log(f'  [{self.stage.name} step {self._step}/{total}] {text}')

    def log(self, text: str) -> None:
        self.runner.log(f'  {text}')

    def state(self, name: str) -> Optional[dict]:
        return self.runner.read_state(name)
