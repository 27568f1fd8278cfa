#!/usr/bin/env bash
# srun launcher shared by slurm_train.sh and slurm_test.sh, the OpenMMLab way: one task
# per GPU, mmengine's --launcher slurm reads the ranks from Slurm's environment.
#   tools/slurm_run.sh PARTITION JOB_NAME SCRIPT.py [script arguments]
# Environment: GPUS (8, tasks in all), GPUS_PER_NODE (8, at most), CPUS_PER_TASK (5),
# SRUN_ARGS (extra srun arguments, e.g. "--quotatype=auto"), PYTHON (the repo's .venv
# python when it exists, else python).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME SCRIPT [arguments]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
SCRIPT=$3
shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
# Offline, quiet imports (albumentations' update check, Hugging Face hubs).
export NO_ALBUMENTATIONS_UPDATE=${NO_ALBUMENTATIONS_UPDATE:-1}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python; fi
fi
# SRUN_ARGS is split on spaces on purpose (several srun options in one variable).
# shellcheck disable=SC2086
PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" exec srun -p "$PARTITION" \
    --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 $SRUN_ARGS "$PYTHON" -u "$SCRIPT" "$@" --launcher slurm
