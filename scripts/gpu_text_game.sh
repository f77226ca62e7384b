#!/usr/bin/env bash
# Issue 20 on a lent GPU: SmolLM2-135M-Instruct zero-shot, after LoRA SFT, and with the faithful
# prompt on the real ByteSized32 records (scripts/gpu_text_game.py says what each stage measures).
#
# The GGUF (93.8 MiB) is larger than one device call carries (64 MiB with the working tree), so
# it travels in two calls made back to back (a warm machine keeps files for 30 s between calls).
# Here, once (.gitignore keeps .smol/, .whl/ and .bs32/ out of git; carry sends them):
#   G=$(python -c "from worldmodels.models.gguf import smollm2_gguf; print(smollm2_gguf())")
#   mkdir -p .smol/a .smol/b && split -n 2 -d "$G" .smol/part && mv .smol/part00 .smol/a/ && mv .smol/part01 .smol/b/
#   sha256sum "$G" | cut -d' ' -f1 > .smol/b/sha256
#   cp -r ../shared/data/bytesized32 .bs32
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl json_repair gguf       # the two the device image lacks
# Device, call 1 (carry [".smol/a"]):            mkdir -p /tmp/smol && cp .smol/a/part00 /tmp/smol/
# Device, call 2 at once (carry [".smol/b", ".whl", ".bs32"], timeout_s 600), then call 3 at once
# (the same carry; one call may run 10 minutes at most):
#   bash scripts/gpu_text_game.sh --stages data zero_compact lora   # ~7 min (estimate) -> $OUT/gpu_text_game.*
#   bash scripts/gpu_text_game.sh --stages rlvr_world               # ~6 min (estimate): 2,317 records x 512 tokens
# Estimates, not measurements: 135M parameters, eval batch 128 (the rlvr_world KV cache ~45 GB in
# float32), LoRA SFT capped at 3 minutes. If a stage runs out of memory or time, rerun it with a
# smaller --batch-size or --real-items.
# CPU dry run (not results): bash scripts/gpu_text_game.sh --tiny
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_env.sh
GGUF=/tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "$GGUF" ]; then
  A=$(ls /tmp/smol/part00 .smol/a/part00 2>/dev/null | head -1)
  if [ -n "$A" ] && [ -f .smol/b/part01 ]; then
    mkdir -p /tmp/smol && cat "$A" .smol/b/part01 > "$GGUF"
    if [ -f .smol/b/sha256 ] && [ "$(sha256sum "$GGUF" | cut -d' ' -f1)" != "$(cat .smol/b/sha256)" ]; then
      echo "error: $GGUF: the two parts do not make the file they were split from (sha256 differs)" >&2
      rm -f "$GGUF"; exit 2
    fi
  else
    GGUF=$("$PY" -c "from worldmodels.models.gguf import smollm2_gguf; print(smollm2_gguf())" 2>/dev/null) || {
      echo "error: no SmolLM2 GGUF: neither the two carried parts (.smol/a/part00 or /tmp/smol/part00, and" \
           ".smol/b/part01) nor the smollm2 extra; see the header of $0" >&2; exit 2; }
  fi
fi
BS32=()
[ -f .bs32/test_dev.jsonl.gz ] && BS32=(--bytesized32 .bs32)
exec "$PY" scripts/gpu_text_game.py --gguf "$GGUF" "${BS32[@]}" "$@"
