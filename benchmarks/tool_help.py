#!/usr/bin/env python
"""How long each tool takes to answer ``--help`` (issue 23's target: under 2 s).

    python benchmarks/tool_help.py [--repeat 3]

Runs ``python tools/<tool>.py --help`` in a fresh process ``--repeat`` times per tool
and prints the median wall time, with the interpreter's own start (``python -c pass``)
for reference. The tools parse their arguments before importing the stack
(tools/_tool.py), so --help costs an interpreter start and argparse.
"""
import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 2.0


def timed(cmd) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f'{" ".join(cmd)} failed (exit {out.returncode}): {out.stderr[-500:]}')
    return dt


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--repeat', type=int, default=3)
    args = p.parse_args(argv)
    rows = [('python -c pass', statistics.median(
        timed([sys.executable, '-c', 'pass']) for _ in range(args.repeat)))]
    for tool in sorted((REPO / 'tools').glob('*.py')):
        if tool.name.startswith('_'):
            continue
        rows.append((f'tools/{tool.name} --help', statistics.median(
            timed([sys.executable, str(tool), '--help']) for _ in range(args.repeat))))
    print(f'| command | median of {args.repeat} (s) | under {TARGET_S:.0f} s |')
    print('|---|---|---|')
    for name, secs in rows:
        print(f'| {name} | {secs:.2f} | {"yes" if secs < TARGET_S else "NO"} |')
    slow = [n for n, s in rows[1:] if s >= TARGET_S]
    print(f'\n{len(rows) - 1 - len(slow)} of {len(rows) - 1} tools answer --help in under '
          f'{TARGET_S:.0f} s' + (f'; slow: {", ".join(slow)}' if slow else ''))
    return 1 if slow else 0


if __name__ == '__main__':
    sys.exit(main())
