#!/usr/bin/env bash
# Create or reuse the project's virtualenv (.venv) with the pinned OpenMMLab stack.
#
#   tools/setup_env.sh          # idempotent: does nothing when .venv matches requirements/
#
# mmcv 2.1.0 has no wheels for torch 2.14: it is built from its sdist with its CPU ops
# (MMCV_WITH_OPS=1, -std=c++20 since torch 2.14's headers refuse c++17). The built wheel is
# cached outside the repo, keyed by mmcv, torch and Python versions, under
# ${FUNDUS_WHEEL_CACHE:-~/.cache/fundus_plugins/wheels}, so a second set-up takes minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="${FUNDUS_VENV:-$ROOT/.venv}"
CACHE="${FUNDUS_WHEEL_CACHE:-$HOME/.cache/fundus_plugins/wheels}"
# mmcv's version comes from requirements/openmmlab.txt (the others there install with --no-deps).
MMCV_VERSION="$(sed -n 's/^mmcv==//p' requirements/openmmlab.txt)"
[[ -n "$MMCV_VERSION" ]] || { echo "requirements/openmmlab.txt pins no mmcv==X" >&2; exit 1; }

log() { printf '[setup_env %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

stamp_of() {
  cat requirements/*.txt tools/setup_env.sh setup.py | sha256sum | cut -c1-16
}
STAMP="$(stamp_of)"
if [[ -x "$VENV/bin/python" && -f "$VENV/.fundus_env_stamp" && "$(cat "$VENV/.fundus_env_stamp")" == "$STAMP" ]]; then
  log "environment $VENV is up to date ($STAMP)"
  exit 0
fi

start=$(date +%s)
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=(pip_quiet "$PY" -m pip --disable-pip-version-check)
# pip warns about every index folder without the package; keep the rest of its output.
pip_quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

log "installing build tools and torch (requirements/build.txt, requirements/torch.txt)"
"${PIP[@]}" install -q -r requirements/build.txt
"${PIP[@]}" install -q -r requirements/torch.txt

TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')"
PY_TAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info.major}{sys.version_info.minor}")')"
KEY="mmcv-${MMCV_VERSION}_torch-${TORCH_VERSION}_${PY_TAG}_$(uname -m)"
WHEEL_DIR="$CACHE/$KEY"

log "installing pinned runtime dependencies (requirements/runtime.txt)"
"${PIP[@]}" install -q -r requirements/runtime.txt -r requirements/tests.txt

shopt -s nullglob
wheels=("$WHEEL_DIR"/mmcv-*.whl)
if (( ${#wheels[@]} == 0 )); then
  log "no cached mmcv wheel for $KEY: building mmcv $MMCV_VERSION from source with CPU ops (about 13 min on 2 cores)"
  build="$(mktemp -d)"
  trap 'rm -rf "$build"' EXIT
  "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$build"
  tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
  src="$build/mmcv-$MMCV_VERSION"
  # torch >= 2.14 headers need C++20.
  sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
  mkdir -p "$WHEEL_DIR"
  (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
     "${PIP[@]}" wheel --no-build-isolation --no-deps -w "$build/dist" . )
  cp "$build"/dist/mmcv-*.whl "$WHEEL_DIR/"
  wheels=("$WHEEL_DIR"/mmcv-*.whl)
  log "cached ${wheels[0]}"
else
  log "reusing cached ${wheels[0]}"
fi
"${PIP[@]}" install -q --no-deps --force-reinstall "${wheels[0]}"
"${PIP[@]}" install -q --no-deps $(grep -v -e '^#' -e '^mmcv==' requirements/openmmlab.txt)
"${PIP[@]}" install -q --no-deps --no-build-isolation -e .

log "checking that the stack imports offline"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$PY" - <<'PYEOF'
import mmcv, mmcv.ops, mmengine, mmseg, mmagic, torch
import mmagic.models, mmagic.evaluation, mmseg.models
import fundus_plugins
print(f"torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, "
      f"mmseg {mmseg.__version__}, mmagic {mmagic.__version__}")
PYEOF
echo "$STAMP" > "$VENV/.fundus_env_stamp"
log "environment ready in $(( $(date +%s) - start )) s"
