#!/usr/bin/env bash
# The prepared GPU check (kernels vs SDPA, VQ vs torch, rollout vs generate, GPU-marked tests).
# On a lent device:   bash scripts/gpu_check.sh            -> $OUT/gpu_check.{json,md}
# CPU dry run:        bash scripts/gpu_check.sh --tiny     -> runs/gpu_check/ (not speed figures)
# The device's image has torch/triton/transformers but not this project's other dependencies;
# nothing here needs them. Extra wheels, if a later stage needs some, go in .whl/ (carried).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
case " $* " in *" --tiny "*) ;; *) export TRITON_INTERPRET=0 ;; esac
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,memory.used --format=csv
exec "$PY" scripts/gpu_check.py "$@"
