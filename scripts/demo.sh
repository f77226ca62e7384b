#!/usr/bin/env bash
# The quick start (`make demo`): the whole method on the built-in MuJoCo robot data, tiny presets,
# CPU. Each stage is resumable: re-running skips finished stages and continues an interrupted one.
#
#   data/robot              200 episodes: push, drawer open/close; scripted experts + random policy
#   runs/demo/tokenizer     per-frame FSQ tokenizer, 64 tokens per 64x64 frame   (TOK_STEPS steps)
#   runs/demo/wm            Llama world model, MLE on [d1 a1]...[d7 a7] d8       (WM_STEPS steps)
#   runs/demo/rlvr          the same model after GRPO with an MAE reward (RLVR)  (RLVR_STEPS steps)
#   runs/demo/*/eval        held-out single- and multi-step metrics, GIFs (ground truth | prediction)
#
# Budgets are optimiser steps, not minutes, so a seed gives the same run on any machine (a slow
# or busy machine only takes longer). No LPIPS term in training or evaluation, so the numbers do
# not depend on whether its weights happen to be installed.
#
# Knobs (environment): DEMO_OUT, DEMO_DATA, TOK_STEPS, WM_STEPS, RLVR_STEPS, EVAL_CLIPS, WM, PY.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL="${MUJOCO_GL:-egl}" PYTHONUNBUFFERED=1
# Readable output: no Hugging Face progress bar per weight load / checkpoint write, and no
# transformers advisory warnings (our own progress bars and messages stay).
export HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error TRANSFORMERS_NO_ADVISORY_WARNINGS=1
WM="${WM:-.venv/bin/wm}"
PY="${PY:-.venv/bin/python}"
OUT="${DEMO_OUT:-runs/demo}"
DATA="${DEMO_DATA:-data/robot}"
TOK_STEPS="${TOK_STEPS:-600}"
WM_STEPS="${WM_STEPS:-800}"
RLVR_STEPS="${RLVR_STEPS:-5}"
EVAL_CLIPS="${EVAL_CLIPS:-32}"

die() { echo "demo: $*" >&2; exit 2; }
for old in TOK_MINUTES WM_MINUTES; do
  if [ -n "${!old:-}" ]; then
    die "$old is no longer read: the demo runs fixed step budgets (TOK_STEPS, WM_STEPS, RLVR_STEPS)" \
        "so that a seed gives the same numbers on any machine; set those instead"
  fi
done
for knob in TOK_STEPS WM_STEPS RLVR_STEPS EVAL_CLIPS; do
  [[ "${!knob}" =~ ^[1-9][0-9]*$ ]] || die "$knob must be a positive integer, got '${!knob}'"
done
[ -x "$PY" ] || PY=python3

T0=$SECONDS
# stage NAME DIR cmd...: run unless DIR/.done exists; continue with --resume if DIR is partial.
stage() {
  local name=$1 dir=$2 t=$SECONDS; shift 2
  if [ -f "$dir/.done" ]; then echo "== $name: done already ($dir)"; return; fi
  echo "== $name"
  if [ -d "$dir" ]; then "$@" --resume; else "$@"; fi
  touch "$dir/.done"
  echo "   ($name: $(( (SECONDS - t) / 60 )) min $(( (SECONDS - t) % 60 )) s)"
}

echo "== data: $DATA"
"$WM" data build robot --out "$DATA" --episodes 200
stage "frame tokenizer ($TOK_STEPS steps)" "$OUT/tokenizer" \
  "$WM" tokenizer train --config data/recipes/tokenizer_frame_tiny.yaml --data "$DATA" \
  --out "$OUT/tokenizer" --steps "$TOK_STEPS" --max-minutes 0 --set perceptual=none
stage "world model, MLE ($WM_STEPS steps)" "$OUT/wm" \
  "$WM" pretrain video --config data/recipes/pretrain_tiny.yaml --data "$DATA" \
  --tokenizer "$OUT/tokenizer" --out "$OUT/wm" --steps "$WM_STEPS"
stage "RLVR: GRPO with an MAE reward ($RLVR_STEPS steps)" "$OUT/rlvr" \
  "$WM" rlvr video --config data/recipes/rlvr_tiny.yaml --init "$OUT/wm" --reward mae \
  --data "$DATA" --out "$OUT/rlvr" --steps "$RLVR_STEPS"
for m in wm rlvr; do
  echo "== eval: $OUT/$m ($EVAL_CLIPS held-out clips, 2 samples each)"
  "$WM" eval video --model "$OUT/$m" --data "$DATA" --clips "$EVAL_CLIPS" --samples 2 --lpips none \
    > "$OUT/$m/eval.log"
  echo "   -> $OUT/$m/eval/eval.md"
done
echo
"$PY" scripts/demo_summary.py --out "$OUT" --data "$DATA"
echo
echo "Done in $(( (SECONDS - T0) / 60 )) min $(( (SECONDS - T0) % 60 )) s. Budgets: TOK_STEPS=$TOK_STEPS" \
     "WM_STEPS=$WM_STEPS RLVR_STEPS=$RLVR_STEPS EVAL_CLIPS=$EVAL_CLIPS; README.md, 'What the demo does'."
