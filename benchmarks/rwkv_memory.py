"""Memory of RWKV-7 vs Llama (issue 23): rollouts (the cache) and training (T-BPTT vs full BPTT).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rwkv_memory.py rollout --gen 256 512 1024 2048
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rwkv_memory.py train \\
        --length 2048 8192 32768 --full-max 8192 --window 512 --max-gb 1.0
    (add --json FILE to keep the rows)

Every measurement runs in its own subprocess (one thread). Two numbers per row:

- ``cache MB`` (rollouts): the bytes of the cache's tensors at the end of the rollout (sum of
  ``nbytes``), exact. Llama: the KV cache of prompt + completion (the engine's static cache is
  allocated for the whole length up front); RWKV-7: the recurrent state (token shifts + WKV
  state per layer), constant in the length.
- ``peak MB``: the process's peak resident memory (``VmHWM``, reset through
  ``/proc/self/clear_refs`` after the model is built) minus the resident memory just before
  the measured call: what the call added at its peak (activations, logits, caches, allocator
  slack). Linux only; approximate (allocator caching), but the same for every row.

``rollout``: ``tiny`` presets (vocabulary 4700, as the video task), batch 8, prompt 64,
temperature 1, one generate segment of ``--gen`` tokens, the engine's default DecodeConfig.
``train``: one forward/backward of ``worldmodels.train.mle.forward_backward`` on one random
sequence of ``--length`` tokens (all on the loss) with the ``tiny`` RWKV-7, full BPTT (up to
``--full-max`` tokens) and T-BPTT with ``--window`` (``train.tbptt_window``, step per
sequence: the same loss value, printed per token as a check). ``--max-gb`` is the budget
each row is compared against (``fits`` / ``EXCEEDS``); nothing is killed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

VOCAB, BATCH, PROMPT = 4700, 8, 64


def _status(field: str) -> int:
    """A /proc/self/status field in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> int:
    """Reset VmHWM to the current RSS; returns the RSS (bytes)."""
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


def cache_bytes(cache) -> int:
    """Sum of ``nbytes`` of the tensors a cache holds: RWKV7State (per-layer tuples) or a
    transformers cache (per-layer ``keys`` / ``values``)."""
    import torch

    total = 0
    for layer in getattr(cache, "layers", []):
        items = layer if isinstance(layer, tuple) else vars(layer).values()
        total += sum(t.nbytes for t in items if isinstance(t, torch.Tensor))
    return total


def model_for(family: str, max_positions: int):
    from worldmodels.models import BackboneConfig, make_backbone

    if family == "llama":
        from worldmodels.models.llama import build_backbone

        return build_backbone("tiny", VOCAB, max_positions=max_positions)
    return make_backbone(BackboneConfig(family=family, preset="tiny"), VOCAB)


def worker_rollout(family: str, gen: int) -> dict:
    import torch

    import worldmodels.train.rollout as R
    from worldmodels.train.rollout import Segment

    torch.manual_seed(0)
    model = model_for(family, PROMPT + gen).eval()
    seen = []

    class Recording(R.Stepper):  # keeps the engine's stepper to read its cache at the end
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            seen.append(self)

    R.Stepper = Recording
    prompt = torch.randint(0, VOCAB, (BATCH, PROMPT), generator=torch.Generator().manual_seed(1))
    before = _reset_peak()
    t0 = time.perf_counter()
    out = R.rollout(model, prompt, [Segment("generate", gen, allowed=(0, VOCAB))],
                    generator=torch.Generator().manual_seed(2))
    dt = time.perf_counter() - t0
    peak = _status("VmHWM") - before
    assert out.completion_ids.shape == (BATCH, gen)
    return {"family": family, "gen": gen, "cache_mb": cache_bytes(seen[-1].cache) / 2**20,
            "peak_mb": peak / 2**20, "seconds": dt, "tokens_per_s": BATCH * gen / dt}


class _LMTask:
    def lm_batch(self, b):
        return b

    def tokens_in(self, lm):
        return int(lm["input_ids"].numel())


def worker_train(length: int, window: int | None, batch: int) -> dict:
    import torch

    from worldmodels.train.mle import forward_backward

    torch.manual_seed(0)
    model = model_for("rwkv7", length).train()
    ids = torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(1))
    before = _reset_peak()
    t0 = time.perf_counter()
    out = forward_backward(model, _LMTask(), [{"input_ids": ids, "labels": ids.clone()}],
                           torch.device("cpu"), "fp32", window=window)
    dt = time.perf_counter() - t0
    peak = _status("VmHWM") - before
    return {"length": length, "window": window, "batch": batch, "peak_mb": peak / 2**20,
            "loss_per_token": out["loss_sum"] / out["loss_tokens"], "seconds": dt}


def run_worker(spec: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    res = subprocess.run([sys.executable, __file__, "_worker", json.dumps(spec)], env=env,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"worker {spec} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rollout")
    r.add_argument("--gen", type=int, nargs="+", default=[256, 512, 1024, 2048])
    r.add_argument("--families", nargs="+", default=["llama", "rwkv7"])
    t = sub.add_parser("train")
    t.add_argument("--length", type=int, nargs="+", default=[2048, 8192, 32768])
    t.add_argument("--full-max", type=int, default=8192, help="longest sequence run with full BPTT")
    t.add_argument("--window", type=int, default=512)
    t.add_argument("--batch", type=int, default=1)
    t.add_argument("--max-gb", type=float, default=1.0, help="the memory budget rows are compared to")
    for p in (r, t):
        p.add_argument("--json", default=None, help="also write the rows to this file")
    w = sub.add_parser("_worker")
    w.add_argument("spec")
    a = ap.parse_args(argv)
    if a.cmd == "_worker":
        spec = json.loads(a.spec)
        import torch

        torch.set_num_threads(1)
        fn = worker_rollout if spec.pop("kind") == "rollout" else worker_train
        print(json.dumps(fn(**spec)))
        return
    rows = []
    if a.cmd == "rollout":
        print("| family | generated | cache MB | peak MB | tokens/s |\n|---|---|---|---|---|")
        for fam in a.families:
            for gen in a.gen:
                row = run_worker({"kind": "rollout", "family": fam, "gen": gen})
                rows.append(row)
                print(f"| {fam} | {gen} | {row['cache_mb']:.2f} | {row['peak_mb']:.0f} | "
                      f"{row['tokens_per_s']:.0f} |", flush=True)
    else:
        print(f"| T | BPTT | peak MB | budget {a.max_gb} GB | loss/token | s |\n|---|---|---|---|---|---|")
        for length in a.length:
            for window in ([None] if length <= a.full_max else []) + [a.window]:
                row = run_worker({"kind": "train", "length": length, "window": window, "batch": a.batch})
                row["fits"] = row["peak_mb"] <= a.max_gb * 1024
                rows.append(row)
                name = "full" if window is None else f"T-BPTT W={window}"
                print(f"| {length} | {name} | {row['peak_mb']:.0f} | "
                      f"{'fits' if row['fits'] else 'EXCEEDS'} | {row['loss_per_token']:.6f} | "
                      f"{row['seconds']:.1f} |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cmd": a.cmd, "args": vars(a), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
