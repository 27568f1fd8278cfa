#!/usr/bin/env bash
# Test CONFIG with CHECKPOINT on a Slurm cluster (one task per GPU); extra arguments go to
# tools/test.py. Settings (GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS): slurm_run.sh.
#
#   GPUS=8 tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py arguments]
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py arguments]" >&2
    exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
PARTITION=$1
JOB_NAME=$2
shift 2
exec bash "$HERE/slurm_run.sh" "$PARTITION" "$JOB_NAME" "$HERE/test.py" "$@"
