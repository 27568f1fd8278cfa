#!/usr/bin/env bash
# Train CONFIG on N processes with torchrun (GPUs, or CPU processes with gloo where
# there are none); extra arguments go to tools/train.py. Settings: see dist_run.sh.
#
#   tools/dist_train.sh CONFIG N [--work-dir DIR] [--resume] [--cfg-options ...]
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NUM_PROCESSES [train.py arguments]" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
CONFIG=$1
NPROC=$2
shift 2
exec bash "$HERE/dist_run.sh" "$NPROC" "$HERE/train.py" "$CONFIG" "$@"
