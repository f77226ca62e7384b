#!/usr/bin/env bash
# The prepared GPU check (kernels vs SDPA, VQ vs torch, rollout vs generate, GPU-marked tests).
# On a lent device:   bash scripts/gpu_check.sh            -> $OUT/gpu_check.{json,md}
# CPU dry run:        bash scripts/gpu_check.sh --tiny     -> runs/gpu_check/ (not speed figures)
# The device's image has torch/triton/transformers but not this project's other dependencies;
# nothing here needs them. Extra wheels, if a later stage needs some, go in .whl/ (carried).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_env.sh
case " $* " in *" --tiny "*) ;; *) export TRITON_INTERPRET=0 ;; esac
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,memory.used --format=csv
exec "$PY" scripts/gpu_check.py "$@"
