#!/usr/bin/env bash
# Train CONFIG on a Slurm cluster (one task per GPU); extra arguments go to
# tools/train.py. Settings (GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS): slurm_run.sh.
#
#   GPUS=16 tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py arguments]
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py arguments]" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
ARGS=()
if [ $# -gt 0 ] && [[ $1 != -* ]]; then
    ARGS=(--work-dir "$1")
    shift
fi
exec bash "$HERE/slurm_run.sh" "$PARTITION" "$JOB_NAME" "$HERE/train.py" "$CONFIG" \
    "${ARGS[@]}" "$@"
