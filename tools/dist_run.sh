#!/usr/bin/env bash
# torchrun launcher shared by dist_train.sh and dist_test.sh:
#   tools/dist_run.sh NUM_PROCESSES SCRIPT.py [script arguments]
# One process per GPU, or, on a machine without GPUs, CPU processes with the gloo
# backend (fundus_plugins handles mmengine's GPU assumptions).
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500),
# PYTHON (the repo's .venv python when it exists, else python), OMP_NUM_THREADS (1).
set -euo pipefail
NPROC=$1
SCRIPT=$2
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
# Offline, quiet imports (albumentations' update check, Hugging Face hubs).
export NO_ALBUMENTATIONS_UPDATE=${NO_ALBUMENTATIONS_UPDATE:-1}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python; fi
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" "$SCRIPT" "$@" --launcher pytorch
