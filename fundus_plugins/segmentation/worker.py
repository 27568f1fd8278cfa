"""One run of the synthetic-data ablation in a process of its own (the ablation's
``parallel``): ``python -m fundus_plugins.segmentation.worker RUN_DIR/run.json``.

``run.json`` holds the ablation's arguments for the run (config, fraction, seed,
cfg_options, max_epochs, equal_updates). The run trains and tests as in one process
(resuming from its last checkpoint) and ends with ``RUN_DIR/metrics.json``; it holds the
lock of RUN_DIR meanwhile (:mod:`fundus_plugins.locks`). The thread count comes from
``FUNDUS_THREADS`` (set by the ablation on the CPU).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print('usage: python -m fundus_plugins.segmentation.worker RUN_DIR/run.json',
              file=sys.stderr)
        return 2
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    from ..locks import folder_lock
    import torch

    from .ablation import _run_one, save_metrics
    if os.environ.get('FUNDUS_THREADS'):  # this process is the run's: no need to restore
        torch.set_num_threads(int(os.environ['FUNDUS_THREADS']))
    start = time.time()
    run_dir = spec_path.parent
    # The run's folder is this process's: another run on it is refused, naming it.
    with folder_lock(run_dir, f'ablation run {run_dir.name}'):
        metrics = _run_one(spec['config'], float(spec['fraction']), int(spec['seed']),
                           run_dir, spec.get('cfg_options') or {},
                           max_epochs=spec.get('max_epochs'),
                           equal_updates=bool(spec.get('equal_updates')))
        metrics['wall_s'] = round(time.time() - start, 1)
        save_metrics(run_dir, metrics)
    return 0


if __name__ == '__main__':
    # The tools' run_tool (tools/_tool.py, beside the package in the checkout, as
    # pipeline/stages.py finds tools/train.py): a user error (a locked run folder) in
    # one line.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'tools'))
    from _tool import run_tool
    sys.exit(run_tool(main, 'none'))
