#!/usr/bin/env bash
# GPU check (< 4 minutes): images/s and peak memory of full weight-sharing search steps
# (architecture step + weight step) at the GAEA paper's NB201 setting (C=16, N=5, batch 64,
# 32x32, GAEA-DARTS, ERM), fp32 vs bfloat16 mixed precision, on synthetic data.
# Needs torch with CUDA; uses the source tree directly (no install, no network).
#   bash scripts/gpu_check.sh            # STEPS=300 by default
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STEPS=${STEPS:-300}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$PY" -c 'import torch; print("torch", torch.__version__, "cuda available:", torch.cuda.is_available())'
if ! "$PY" -c 'import gaea_tune.weight_sharing, gaea_tune.data' 2>/dev/null; then
  echo "gaea_tune is not importable from the source tree; trying pip install -e . --no-deps"
  "$PY" -m pip install -q -e . --no-deps
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c 'import torch; print("card:", torch.cuda.get_device_name(0))'

bench() { timeout 100 "$PY" scripts/bench_supernet.py --device cuda --steps "$STEPS" --warmup 20 \
  --repeats 1 --settings paper "$@"; }
echo "== fp32, channels_last"; bench
echo "== bf16 autocast (--amp), channels_last"; bench --amp
echo "== bf16, ERM joint pass (arch + weight gradients from one pass)"; bench --amp --erm-joint
echo "== fp32, NCHW"; bench --nchw
