#!/usr/bin/env bash
# One GPU session, prepared in advance: install the OpenMMLab wheels, then measure under
# timeouts, writing every table into $OUT as it goes (a step that runs out of time loses
# only itself). For a lent machine with Python 3.12 + torch 2.11 and no network; the wheels
# are a copy of ../shared/gpu-wheels/whl in the checkout's git-ignored .whl/.
#
#   OUT=/some/dir bash benchmarks/gpu_session.sh [SECONDS_PER_STEP]
#
# Steps, in order of importance: the issue-13 targets (SPADE translation, SPADE training,
# the Runner vs a bare loop), the inpainting translator at 512 px (benchmark step and
# 30 iterations of tools/train.py on a 512 px phantom), the paper config's time plan
# (--plan) on 1 and 8 GPUs, the U-Net and label-ACGAN steps, and the CUDA-only tests
# when pytest is there.
set -u
OUT=${OUT:?set OUT to the folder the tables go to}
STEP=${1:-150}
mkdir -p "$OUT"
log() {  # a line in session.log, and every table and log so far gathered into all.md
    echo "[$(date +%T)] $*" | tee -a "$OUT/session.log"
    # (a device call brings back only a few files: all.md carries everything)
    for f in "$OUT"/*.md "$OUT"/*.log "$OUT"/gpu.txt; do
        [ -f "$f" ] && [ "$f" != "$OUT/all.md" ] && { echo "== $(basename "$f")"; tail -c 4000 "$f"; }
    done > "$OUT/all.tmp" 2>/dev/null; mv "$OUT/all.tmp" "$OUT/all.md"
}

log "install"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$HOME/gpu-site" .whl/*.whl >>"$OUT/session.log" 2>&1
export PYTHONPATH="$HOME/gpu-site:$PWD"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 NO_ALBUMENTATIONS_UPDATE=1
export PYTHONWARNINGS=ignore
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt" 2>&1
python3 -c 'import torch, mmcv, mmengine, mmagic, mmseg; print(torch.__version__,
    torch.cuda.get_device_name(), mmcv.__version__, mmengine.__version__)' \
    >>"$OUT/session.log" 2>&1 || { log "the stack does not import"; exit 1; }

bench() {  # NAME ARGS...: one gpu_speed run, its own table
    local name=$1; shift
    log "bench $name"
    timeout "$STEP" python3 benchmarks/gpu_speed.py --out "$OUT/$name" "$@" \
        >"$OUT/$name.log" 2>&1
    log "bench $name rc=$?"
}
bench translate --only translate
bench spade --only spade
bench runner --only runner
bench inpaint --only inpaint --variants 'eager fp32' bf16 'bf16 + channels-last' defaults

log "inpaint: 30 iterations of tools/train.py at 512 px on a phantom"
timeout 60 python3 tools/make_phantom.py --num 16 --size 512 --out /tmp/phantom512 \
    --no-preview --workers 8 >"$OUT/phantom.log" 2>&1
start=$(date +%s.%N)
timeout "$STEP" python3 tools/train.py configs/inpaint_fundus.py --work-dir /tmp/inpaint512 \
    --cfg-options data_root=/tmp/phantom512 vgg_weights=None model.loss_config.lambda_vgg=0 \
    train_cfg.max_iters=30 default_hooks.logger.interval=10 custom_hooks=[] \
    >"$OUT/inpaint_train.log" 2>&1
rc=$?
log "inpaint train rc=$rc in $(python3 -c "import time; print(round(time.time() - $start, 1))") s"
grep -h "Iter(train)" /tmp/inpaint512/*/*.log 2>/dev/null | tail -3 >>"$OUT/inpaint_train.log"

# The time plan of the paper's experiment (issue 21): the paper config with a phantom of
# IDRiD + FGADR's counts (1,540 training and 385 test images; the probe times the models
# on phantom images of the configured sizes, whatever the data), on this one GPU and at
# 8 GPUs (the same probe, re-planned: GAN training on 8 processes, 8 U-Net runs at once).
PLAN_OPTS=(data.source=phantom data.num=1925 data.test_fraction=0.2 data.workers=8
           gates.inception_path=None)  # no Inception file offline: FID / KID not timed
log "plan: the paper config on 1 GPU"
timeout "$STEP" python3 tools/run_pipeline.py configs/pipeline/idrid_fgadr.py --plan \
    --work-dir /tmp/plan_paper --cfg-options "${PLAN_OPTS[@]}" >"$OUT/plan_1gpu.log" 2>&1
log "plan 1 GPU rc=$?"
grep -a '^|\|^Device' "$OUT/plan_1gpu.log" >"$OUT/plan_1gpu.md"
timeout 120 python3 tools/run_pipeline.py configs/pipeline/idrid_fgadr.py --plan \
    --work-dir /tmp/plan_paper --cfg-options "${PLAN_OPTS[@]}" labels.gpus=8 images.gpus=8 \
    segmentation.parallel=8 >"$OUT/plan_8gpu.log" 2>&1
log "plan 8 GPUs rc=$?"
grep -a '^|\|^Device' "$OUT/plan_8gpu.log" >"$OUT/plan_8gpu.md"

bench unet --only unet --variants 'eager fp32' bf16 'bf16 + channels-last' defaults
bench acgan --only acgan --variants 'eager fp32' bf16 defaults

if python3 -m pytest --version >/dev/null 2>&1; then
    log "CUDA-only tests"
    timeout 120 python3 -m pytest -q -p no:cacheprovider \
        tests/test_acgan_parts.py tests/test_translate_fast.py -k cuda >"$OUT/tests.log" 2>&1
    log "tests rc=$?"
fi
log "done"
