#!/usr/bin/env bash
# Test CONFIG's CHECKPOINT on N processes with torchrun (GPUs, or CPU processes with
# gloo where there are none); extra arguments go to tools/test.py.
#
#   tools/dist_test.sh CONFIG CHECKPOINT N [--work-dir DIR] [--out metrics.json]
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT NUM_PROCESSES [test.py arguments]" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
shift 3
exec bash "$HERE/dist_run.sh" "$NPROC" "$HERE/test.py" "$CONFIG" "$CHECKPOINT" "$@"
