#!/usr/bin/env bash
# The quick start (`make demo`): the whole method on the built-in MuJoCo robot data, tiny presets,
# CPU. Each stage is resumable: re-running skips finished stages and continues an interrupted one.
#
#   data/robot              200 episodes: push, drawer open/close; scripted experts + random policy
#   runs/demo/tokenizer     per-frame FSQ tokenizer, 64 tokens per 64x64 frame
#   runs/demo/wm            Llama world model, MLE on [d1 a1]...[d7 a7] d8 sequences
#   runs/demo/rlvr          the same model after GRPO with an MAE reward (RLVR)
#   runs/demo/*/eval        held-out single- and multi-step metrics, GIFs (ground truth | prediction)
#
# Knobs (environment): DEMO_OUT, DEMO_DATA, TOK_MINUTES, WM_MINUTES, RLVR_STEPS, EVAL_CLIPS.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL="${MUJOCO_GL:-egl}" PYTHONUNBUFFERED=1
WM="${WM:-.venv/bin/wm}"
OUT="${DEMO_OUT:-runs/demo}"
DATA="${DEMO_DATA:-data/robot}"
TOK_MINUTES="${TOK_MINUTES:-6}"
WM_MINUTES="${WM_MINUTES:-6}"
RLVR_STEPS="${RLVR_STEPS:-5}"
EVAL_CLIPS="${EVAL_CLIPS:-32}"

# stage NAME DIR cmd...: run unless DIR/.done exists; continue with --resume if DIR is partial.
stage() {
  local name=$1 dir=$2; shift 2
  if [ -f "$dir/.done" ]; then echo "== $name: done already ($dir)"; return; fi
  echo "== $name"
  if [ -d "$dir" ]; then "$@" --resume; else "$@"; fi
  touch "$dir/.done"
}

echo "== data: $DATA"
"$WM" data build robot --out "$DATA" --episodes 200
stage "frame tokenizer (~${TOK_MINUTES} min)" "$OUT/tokenizer" \
  "$WM" tokenizer train --kind frame --preset tiny --data "$DATA" --out "$OUT/tokenizer" \
  --max-minutes "$TOK_MINUTES"
stage "world model, MLE (~${WM_MINUTES} min)" "$OUT/wm" \
  "$WM" pretrain video --config data/recipes/pretrain_tiny.yaml --data "$DATA" \
  --tokenizer "$OUT/tokenizer" --out "$OUT/wm" --set train.max_minutes="$WM_MINUTES"
stage "RLVR: GRPO with an MAE reward ($RLVR_STEPS steps)" "$OUT/rlvr" \
  "$WM" rlvr video --config data/recipes/rlvr_tiny.yaml --init "$OUT/wm" --reward mae \
  --data "$DATA" --out "$OUT/rlvr" --steps "$RLVR_STEPS"
for m in wm rlvr; do
  echo "== eval: $OUT/$m"
  "$WM" eval video --model "$OUT/$m" --data "$DATA" --clips "$EVAL_CLIPS" --samples 2 --lpips none
done
echo
echo "Held-out results: $OUT/wm/eval/eval.md (MLE) and $OUT/rlvr/eval/eval.md (after RLVR)."
