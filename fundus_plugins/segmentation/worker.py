"""One run of the synthetic-data ablation in a process of its own (the ablation's
``parallel``): ``python -m fundus_plugins.segmentation.worker RUN_DIR/run.json``.

``run.json`` holds the ablation's arguments for the run (config, fraction, seed,
cfg_options, max_epochs, equal_updates). The run trains and tests as in one process
(resuming from its last checkpoint) and ends with ``RUN_DIR/metrics.json``. The thread
count comes from ``FUNDUS_THREADS`` (set by the ablation on the CPU).
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
    from .ablation import _run_one, save_metrics, torch_threads
    if os.environ.get('FUNDUS_THREADS'):
        torch_threads(int(os.environ['FUNDUS_THREADS']))
    start = time.time()
    metrics = _run_one(spec['config'], float(spec['fraction']), int(spec['seed']),
                       spec_path.parent, spec.get('cfg_options') or {},
                       max_epochs=spec.get('max_epochs'),
                       equal_updates=bool(spec.get('equal_updates')))
    metrics['wall_s'] = round(time.time() - start, 1)
    save_metrics(spec_path.parent, metrics)
    return 0


if __name__ == '__main__':
    sys.exit(main())
