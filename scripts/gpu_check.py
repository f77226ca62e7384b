"""The prepared GPU check: kernel, VQ and rollout speed figures and the GPU-marked tests, in one run.

On a lent H100/H200 (device time is short, so this is the first thing to run there)::

    bash scripts/gpu_check.sh                  # writes $OUT/gpu_check.json and $OUT/gpu_check.md

On a CPU, the same stages run end to end with tiny shapes (Triton's interpreter for the
kernels; no figure from this mode is a speed figure), which is how the script is tested
before it ever reaches a device::

    python scripts/gpu_check.py --tiny --out runs/gpu_check_cpu

Stages (each has its own time budget; a failing stage is recorded and the next one runs; the
JSON is rewritten after every stage, so a run cut short still reports what it finished):

1. ``env``: device, torch / triton / transformers versions.
2. ``attention``: Triton flash attention vs SDPA's FlashAttention backend, forward and backward,
   bf16, B=4, H=32, head dim 64 and 128, N 1k-16k, causal and not (``kernels/bench/attention.py``).
3. ``vq``: fused VQ nearest-code search vs chunked torch and cdist+argmin (``kernels/bench/vq.py``).
4. ``rollout``: the rollout engine vs ``model.generate`` on the same batch and model, bf16
   (``worldmodels/train/rollout_bench.py``), tiny and small presets; then the GRPO-like text
   line (group 5, sampled answers of mixed lengths; engine eager and with CUDA graphs).
5. ``gpu_tests``: ``pytest -m gpu`` with ``TRITON_INTERPRET=0``.
6. ``rwkv7_fla``: fla's RWKV-7 kernels vs our CPU form, errors printed per case (needs
   fla-core, carried as a wheel in ``.whl/``; skipped without it).

Files: ``gpu_check.json`` / ``.md``, ``gpu_tests.log`` / ``.xml`` and ``rollout.tar.gz`` (each
rollout line's own JSON and table): few enough for the device's 8 returned files.

The targets the kernels issue set are checked in the summary (``targets``): forward >= 0.9x
SDPA and >= 400 TFLOP/s (bf16, head dim 64 and 128, the largest N measured), backward >= 0.8x
SDPA, VQ >= 3x chunked torch (largest N, K), the rollout / generate ratio (reported) and the
GRPO-like text rollout >= 2x generate (issue 20).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGETS = {
    "attention_fwd_vs_sdpa": 0.9,
    "attention_fwd_tflops": 400.0,
    "attention_bwd_vs_sdpa": 0.8,
    "vq_vs_chunked": 3.0,
    "rollout_group_vs_generate": 2.0,  # issue 20: GRPO-like text rollouts (group 5) vs generate
}


def _env() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.cuda.is_available(), "host": platform.node()}
    for mod in ("triton", "transformers"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001 - a missing package is a finding, not a crash
            info[mod] = f"missing ({type(e).__name__})"
    if info["cuda"]:
        info["device"] = torch.cuda.get_device_name()
        info["capability"] = list(torch.cuda.get_device_capability())
        info["memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def _attention(tiny: bool) -> list[dict]:
    import torch

    from kernels.bench import attention as att
    from kernels.bench.common import device_info

    dev = device_info()
    if tiny:  # interpreter: correctness rows plus one timed shape per head dim (not speed)
        rows = att.check(torch.float32)
        for d in (64, 128):
            rows += att._bench_one(dev, 1, 2, 32, d, True, torch.float32, device="cpu")
        return rows
    rows = att.check(torch.float16, "cuda") + att.check(torch.bfloat16, "cuda")
    for d in (64, 128):
        for n in (1024, 4096, 8192, 16384):
            for causal in (True, False):
                rows += att._bench_one(dev, 4, 32, n, d, causal, torch.bfloat16)
    return rows


def _vq(tiny: bool) -> list[dict]:
    from kernels.bench import vq
    from kernels.bench.common import device_info

    dev = device_info()
    if tiny:
        return vq.check() + vq._bench_nk(dev, 256, 64, 16, vq.IMPLS, device="cpu")
    return vq.check("cuda") + vq.bench(dev, quick=False)


def _rollout(tiny: bool, out: Path) -> list[dict]:
    """Fixed-length / stop-id / interleaved lines per preset and batch, then the GRPO-like text
    line (8 prompts x group 5, prompt 124, answers of mixed lengths <= 96 tokens, vocab 2048:
    the text-game tiny recipe's shape) with the engine eager and with CUDA graphs."""
    from worldmodels.train import rollout_bench
    from worldmodels.train.rollout_cache import DecodeConfig

    rows, detail = [], out / "rollout"
    runs = ([("test", 8, 16, 16)] if tiny else
            [("tiny", 32, 64, 256), ("tiny", 128, 64, 256), ("small", 32, 64, 256), ("small", 128, 64, 256)])
    for preset, batch, prompt_len, new_tokens in runs:
        res = rollout_bench.run(detail / f"{preset}_b{batch}", preset=preset, batch=batch,
                                prompt_len=prompt_len, new_tokens=new_tokens,
                                segment_tokens=8 if tiny else 64, repeats=1)  # 3 repeats cost 2 device minutes
        rows.append({"op": "rollout", "preset": preset, **res})
    text = ([("test", 6, 8, 12, 3, None)] if tiny else
            [("tiny", 40, 124, 96, 5, None), ("tiny", 40, 124, 96, 5, DecodeConfig(cuda_graphs=True)),
             ("small", 40, 124, 96, 5, None), ("small", 40, 124, 96, 5, DecodeConfig(cuda_graphs=True))])
    for preset, batch, prompt_len, new_tokens, group, decode in text:
        tag = f"rollout_text_{preset}_g{group}" + ("_graphs" if decode else "")
        res = rollout_bench.run(detail / tag, preset=preset, vocab_size=300 if tiny else 2048, batch=batch,
                                prompt_len=prompt_len, new_tokens=new_tokens, segment_tokens=4 if tiny else 32,
                                repeats=1, group=group, rounds=2 if tiny else 5, decode=decode)
        rows.append({"op": "rollout_group", "preset": preset, "cuda_graphs": decode is not None, **res})
    # one archive instead of two files per line: the device returns at most 8 files from $OUT
    shutil.make_archive(str(detail), "gztar", root_dir=out, base_dir=detail.name)
    shutil.rmtree(detail)
    return rows


def _rwkv7_fla(tiny: bool) -> list[dict]:
    """fla's RWKV-7 kernels against our CPU chunked form on the inputs of
    ``tests/gpu/test_cuda_rwkv7.py`` (float32): the largest error of the output (over its
    largest value) and of the final state, per kernel, length and initial state, printed as each
    finishes (the pytest file checks the same at a fixed tolerance but reports only at its end;
    fla's autotuning makes it slow). Skipped without fla or CUDA."""
    import importlib.util

    import torch

    from worldmodels.models.rwkv7_ops import fla_ops, wkv7, wkv7_chunked

    if tiny or not torch.cuda.is_available() or fla_ops() is None:
        return [{"op": "rwkv7_fla", "skipped": "needs CUDA and flash-linear-attention (fla-core)"}]
    import fla

    spec = importlib.util.spec_from_file_location("rwkv7_gpu_tests", ROOT / "tests" / "gpu" / "test_cuda_rwkv7.py")
    tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)
    rows = []
    for T in (1, 63, 200):
        for with_state in (False, True):
            x, S0 = tests.inputs(T=T, seed=T, state=with_state)
            y_ref, S_ref = wkv7_chunked(*x, S0, chunk_size=32)
            y, S = wkv7(*[t.cuda() for t in x], None if S0 is None else S0.cuda(), mode="chunk")
            row = {"op": "rwkv7_fla", "fla": getattr(fla, "__version__", "?"), "T": T,
                   "initial_state": with_state, "kernel": "chunk" if T > 1 else "fused_recurrent",
                   "y_err_rel": float((y.cpu() - y_ref).abs().max() / y_ref.abs().max()),
                   "S_err": float((S.cpu() - S_ref).abs().max()), "S_max": float(S_ref.abs().max())}
            print(f"[gpu_check] rwkv7_fla {row}", flush=True)
            rows.append(row)
    return rows


def _gpu_tests(tiny: bool, out: Path) -> list[dict]:
    env = {**os.environ, "TRITON_INTERPRET": "0", "PYTHONPATH": str(ROOT)}
    log = out / "gpu_tests.log"
    # Only tests/gpu: collecting the whole suite would import packages the device image lacks.
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
           "--junitxml", str(out / "gpu_tests.xml"), str(ROOT / "tests" / "gpu")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120 if tiny else 300)
    log.write_text(proc.stdout + proc.stderr)
    last = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()][-1:]
    return [{"op": "gpu_tests", "returncode": proc.returncode, "summary": last[0] if last else "",
             "log": log.name}]


def _best(rows, **match):
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def targets(rows: list[dict], dry_run: bool = False) -> list[dict]:
    """The kernels issue's bars, checked on the measured rows (``met`` None when not measured,
    and always None in a CPU dry run, whose timings are not speed figures)."""
    out = []
    att = [r for r in rows if r.get("op") == "attention" and r.get("impl") == "triton"]
    for d in (64, 128):
        fwd = [r for r in att if r["D"] == d and r["pass"] == "fwd"]
        bwd = [r for r in att if r["D"] == d and r["pass"] == "bwd"]
        n_max = max((r["N"] for r in fwd), default=None)
        f_big = [r for r in fwd if r["N"] == n_max]
        b_big = [r for r in bwd if r["N"] == n_max]
        for name, sel, key, bar in (
                (f"attention fwd vs SDPA, D={d}", f_big, "speedup_vs_sdpa", TARGETS["attention_fwd_vs_sdpa"]),
                (f"attention fwd TFLOP/s, D={d}", f_big, "tflops", TARGETS["attention_fwd_tflops"]),
                (f"attention bwd vs SDPA, D={d}", b_big, "speedup_vs_sdpa", TARGETS["attention_bwd_vs_sdpa"])):
            vals = [r[key] for r in sel if r.get(key) is not None]
            worst = min(vals) if vals else None
            out.append({"target": name, "bar": bar, "value": worst, "at_N": n_max,
                        "met": None if worst is None or dry_run else worst >= bar})
    vq = [r for r in rows if r.get("op") == "vq" and r.get("impl") == "triton_fused"]
    if vq:
        big = max(vq, key=lambda r: (r["N"], r["K"]))
        v = big.get("speedup_vs_chunked")
        out.append({"target": f"VQ vs chunked torch, N={big['N']}, K={big['K']}",
                    "bar": TARGETS["vq_vs_chunked"], "value": v,
                    "met": None if v is None or dry_run else v >= TARGETS["vq_vs_chunked"]})
    for r in rows:
        if r.get("op") == "rollout":
            out.append({"target": f"rollout / generate, {r['preset']} batch {r['batch']}",
                        "bar": None, "value": round(r["ratio"], 3), "met": None})
        if r.get("op") == "rollout_group":
            v = round(r["group_ratio"], 3)
            out.append({"target": f"rollout / generate, text group {r['group']}, {r['preset']}"
                                  + (", CUDA graphs" if r["cuda_graphs"] else ""),
                        "bar": TARGETS["rollout_group_vs_generate"], "value": v,
                        "met": None if dry_run else v >= TARGETS["rollout_group_vs_generate"]})
    return out


def markdown(result: dict) -> str:
    from kernels.bench.report import attention_table, vq_table

    rows = result["rows"]
    lines = [f"# GPU check ({'CPU dry run, tiny shapes: NOT speed figures' if result['tiny'] else 'device'})",
             "", f"`{json.dumps(result['env'])}`", "", "## Targets", "",
             "| target | bar | value | met |", "|---|---|---|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['target']} | {t['bar'] if t['bar'] is not None else '-'} | "
                     f"{t['value'] if t['value'] is not None else '-'} | "
                     f"{'-' if t['met'] is None else ('yes' if t['met'] else 'NO')} |")
    lines += ["", "## Attention", ""] + attention_table(rows)
    lines += ["", "## VQ", ""] + vq_table(rows)
    lines += ["", "## Rollout vs generate", "", "| preset | batch | params M | rollout tok/s | "
              "generate tok/s | ratio | interact tok/s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("op") == "rollout":
            lines.append(f"| {r['preset']} | {r['batch']} | {r['params_M']} | {r['rollout_tok_s']:.0f} | "
                         f"{r['generate_tok_s']:.0f} | {r['ratio']:.2f} | {r['interact_tok_s']:.0f} |")
    lines += ["", "## Rollout vs generate, GRPO-like text (group, sampled, mixed lengths)", "",
              "| preset | CUDA graphs | batch | mean answer (engine / generate) | engine tok/s | "
              "plain engine tok/s | generate tok/s | ratio | ratio, generate's draws | same tokens |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("op") == "rollout_group":
            ln = r["group_mean_answer"]
            lines.append(f"| {r['preset']} | {'yes' if r['cuda_graphs'] else 'no'} | {r['group_batch']} | "
                         f"{ln['engine']} / {ln['generate']} | {r['group_rollout_tok_s']:.0f} | "
                         f"{r['group_plain_tok_s']:.0f} | {r['group_generate_tok_s']:.0f} | "
                         f"{r['group_ratio']:.2f} | {r['group_same_draws_ratio']:.2f} | {r['group_same_tokens']} |")
    fla = [r for r in rows if r.get("op") == "rwkv7_fla"]
    if fla:
        lines += ["", "## RWKV-7: fla's kernels vs our CPU form (float32 inputs)", ""]
        if "skipped" in fla[0]:
            lines.append(f"Skipped: {fla[0]['skipped']}.")
        else:
            lines += [f"fla {fla[0]['fla']}", "", "| kernel | T | initial state | output error / max | "
                      "state error (max state) |", "|---|---|---|---|---|"]
            lines += [f"| {r['kernel']} | {r['T']} | {r['initial_state']} | {r['y_err_rel']:.2e} | "
                      f"{r['S_err']:.2e} ({r['S_max']:.3g}) |" for r in fla]
    lines += ["", "## Stages", "", "| stage | seconds | status |", "|---|---|---|"]
    for s in result["stages"]:
        lines.append(f"| {s['stage']} | {s['seconds']} | {s['status']} |")
    for r in rows:
        if r.get("op") == "gpu_tests":
            lines += ["", f"GPU-marked tests: `{r['summary']}` (exit {r['returncode']}; log {r['log']})"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or "runs/gpu_check",
                    help="output folder (default $OUT, else runs/gpu_check)")
    ap.add_argument("--tiny", action="store_true",
                    help="CPU dry run with tiny shapes (Triton interpreter); not speed figures")
    ap.add_argument("--stages", default="env,attention,vq,rollout,gpu_tests,rwkv7_fla",
                    help="comma-separated subset of: env,attention,vq,rollout,gpu_tests,rwkv7_fla")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.tiny:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before any Triton import
    import torch

    if not args.tiny and not torch.cuda.is_available():
        print("gpu_check: no CUDA device; use --tiny for the CPU dry run", file=sys.stderr)
        return 2
    from kernels import set_interpreter

    previous = set_interpreter(True) if args.tiny else None
    try:
        return _run(args, out)
    finally:
        if previous is not None:
            set_interpreter(previous)


def _run(args, out: Path) -> int:
    result = {"tiny": args.tiny, "env": {}, "rows": [], "stages": [], "targets": [],
              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    stages = {"env": None, "attention": lambda: _attention(args.tiny), "vq": lambda: _vq(args.tiny),
              "rollout": lambda: _rollout(args.tiny, out), "gpu_tests": lambda: _gpu_tests(args.tiny, out),
              "rwkv7_fla": lambda: _rwkv7_fla(args.tiny)}
    wanted = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(stages))
    if unknown:
        print(f"gpu_check: unknown --stages {unknown}; known: {sorted(stages)}", file=sys.stderr)
        return 2
    failed = 0
    for name in wanted:
        t0 = time.perf_counter()
        try:
            if name == "env":
                result["env"] = _env()
            else:
                result["rows"] += stages[name]()
            status = "ok"
        except Exception as e:  # noqa: BLE001 - record, then run the next stage
            failed += 1
            status = f"failed: {type(e).__name__}: {e}"
            (out / f"{name}_error.txt").write_text(traceback.format_exc())
        result["stages"].append({"stage": name, "seconds": round(time.perf_counter() - t0, 1),
                                 "status": status[:300]})
        print(f"[gpu_check] {name}: {status[:200]} ({result['stages'][-1]['seconds']} s)", flush=True)
        result["targets"] = targets(result["rows"], dry_run=args.tiny)
        tmp = out / "gpu_check.json.tmp"
        tmp.write_text(json.dumps(result, indent=1, default=str))
        tmp.replace(out / "gpu_check.json")
        (out / "gpu_check.md").write_text(markdown(result))
    print(f"[gpu_check] wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
