"""Issue 20's "real pretrained LM" measurements on the full sample, for a lent GPU: SmolLM2-135M-
Instruct (GGUF) as a text-game world model zero-shot, after a LoRA SFT on the built-in data, and
with the faithful ``rlvr_world`` prompt on the real ByteSized32 records.

On the device (the GGUF, 93.8 MiB, is larger than what one call carries, so it travels in two
calls; ``scripts/gpu_text_game.sh`` says how)::

    bash scripts/gpu_text_game.sh                       # -> $OUT/gpu_text_game.{json,md}, logs

On a CPU the same stages run end to end on a few records and steps (no figure from this mode is a
result), which is how the script is tested before it reaches a device::

    python scripts/gpu_text_game.py --tiny --gguf $(python -c "from worldmodels.models.gguf import smollm2_gguf; print(smollm2_gguf())") \\
        --out runs/gpu_text_game_cpu

Stages (each in its own process with its own time limit; a failing stage is recorded and the next
one runs; the JSON is rewritten after every stage, so a run cut short still reports what it
finished; ``--stages`` picks some):

1. ``data``: ``wm data build text-game`` with ``data/recipes/text_game_x5.yaml`` (7,647 train /
   1,925 held-out / 1,640 held-out-game records).
2. ``zero_compact``: the GGUF wrapped as a world model (compact prompts) and evaluated greedy on
   ``--items`` held-out records.
3. ``lora``: LoRA SFT (``data/recipes/text_game_smollm2_lora.yaml``: r 16 on q/k/v/o) on the
   built-in training records for ``--sft-minutes``; then greedy on held-out records and on the
   held-out game.
4. ``rlvr_world``: the faithful prompt (rules, the two ``dishwasher`` shots, Python-dict states;
   reduced to fit 8,192 − 512 tokens) on ``--real-items`` of the 2,317 real records, greedy, 512
   new tokens: prompt lengths, parse rate, accuracy.

Reported per evaluation: accuracy on changed / unchanged / all records, the "no change" baseline,
parse rate, prompt tokens. Files: ``gpu_text_game.json`` / ``.md`` and ``gpu_text_game_logs.tar.gz``
(every stage's output and eval.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("data", "zero_compact", "lora", "rlvr_world")
SHARED = ROOT.parent / "shared" / "data" / "bytesized32"


def _wm(*args: str) -> list[str]:
    return [sys.executable, "-m", "worldmodels.cli", *args]


def _run(cmd: list[str], log: Path, limit_s: float) -> dict:
    """Run ``cmd`` in the repo root with output to ``log``; {"rc", "s"} (rc 124 when cut at the limit)."""
    t0 = time.time()
    with log.open("a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        try:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, timeout=limit_s).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return {"rc": rc, "s": round(time.time() - t0, 1)}


def summarize_eval(folder: Path) -> dict:
    """The numbers of one ``wm eval text-game`` folder: accuracy on changed / unchanged / all, the
    "no change" baseline, parse rate and prompt tokens. Raises FileNotFoundError without eval.json."""
    d = json.loads((folder / "eval.json").read_text())
    tables = d.get("accuracy_tables", {})
    model = tables.get("sources", {}).get("model", {}).get("overall", {})
    base = tables.get("sources", {}).get("no_change", {}).get("overall", {})
    return {"items": d.get("items"),
            "accuracy": {k: model.get(k, {}).get("accuracy") for k in ("changed", "unchanged", "all")},
            "records": {k: model.get(k, {}).get("n") for k in ("changed", "unchanged", "all")},
            "no_change_all": base.get("all", {}).get("accuracy"),
            "parsed": model.get("all", {}).get("parsed"),
            "prompt_tokens": tables.get("prompt_tokens")}


def stage_cmds(stage: str, a, work: Path) -> list[tuple[str, list[str]]]:
    """(name, command) pairs of one stage; ``a``: the parsed arguments."""
    data = work / "data"
    x5 = ["--config", "data/recipes/text_game_x5.yaml", "--set", f"out={data}"]
    if a.tiny:
        x5 += ["--set", "episodes_per_game=2"]
    ev = ["--examples", "2", "--batch-size", str(a.batch_size)]
    if stage == "data":
        return [("build", _wm("data", "build", "text-game", *x5))]
    if stage == "zero_compact":
        m = work / "zero_compact"
        return [("wrap", [sys.executable, "benchmarks/text_backbones.py", "wrap", "--model", a.gguf,
                          "--train", str(data / "train.jsonl"), "--test", str(data / "test.jsonl"),
                          "--out", str(m), "--set", "max_new_tokens=384"]),
                ("eval", _wm("eval", "text-game", "--model", str(m), "--items", str(a.items),
                             "--max-new-tokens", str(a.new_tokens), "--out", str(m / "eval"), *ev))]
    if stage == "lora":
        m = work / "lora"
        sft = _wm("pretrain", "text-game", "--config", "data/recipes/text_game_smollm2_lora.yaml",
                  "--out", str(m), "--set", f"model.path={a.gguf}",
                  "--set", f"task.train={data / 'train.jsonl'}", "--set", f"task.test={data / 'test.jsonl'}",
                  "--set", f"train.steps={a.sft_steps}", "--set", f"train.batch_size={a.sft_batch}",
                  "--set", f"train.eval_every={max(1, a.sft_steps // 4)}",
                  "--set", f"train.save_every={max(1, a.sft_steps // 4)}",
                  "--max-minutes", str(a.sft_minutes))
        return [("sft", sft),
                ("eval_records", _wm("eval", "text-game", "--model", str(m), "--items", str(a.items),
                                     "--max-new-tokens", str(a.new_tokens), "--out", str(m / "eval"), *ev)),
                ("eval_games", _wm("eval", "text-game", "--model", str(m), "--data", str(data / "test_games.jsonl"),
                                   "--items", str(a.items), "--max-new-tokens", str(a.new_tokens),
                                   "--out", str(m / "eval_games"), *ev))]
    if stage == "rlvr_world":
        m, real = work / "zero_rlvr", a.bytesized32
        return [("wrap", [sys.executable, "benchmarks/text_backbones.py", "wrap", "--model", a.gguf,
                          "--style", "rlvr_world", "--train", str(real / "test_dev.jsonl.gz"),
                          "--test", str(real / "test_dev.jsonl.gz"), "--set", f"rules={real / 'rules'}",
                          "--set", f"examples={real / 'examples.json'}", "--set", "max_prompt_tokens=7680",
                          "--set", "on_overflow=reduce", "--set", "max_new_tokens=512", "--out", str(m)]),
                ("eval", _wm("eval", "text-game", "--model", str(m), "--items", str(a.real_items),
                             "--out", str(m / "eval"), "--examples", "2",
                             "--batch-size", str(a.batch_size)))]
    raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")


EVALS = {"zero_compact": ["zero_compact/eval"], "lora": ["lora/eval", "lora/eval_games"],
         "rlvr_world": ["zero_rlvr/eval"]}


def markdown(res: dict) -> str:
    lines = [f"# SmolLM2-135M-Instruct as a text-game world model ({'CPU dry run: not results' if res['tiny'] else 'GPU'})",
             "", f"env: {json.dumps(res['env'])}", "",
             "| evaluation | records | changed | unchanged | all | \"no change\" all | parsed | prompt tokens (median / max) |",
             "|---|---|---|---|---|---|---|---|"]
    for st in res["stages"].values():
        for ev, s in st.get("evals", {}).items():
            if "error" in s:
                lines.append(f"| {ev} | – | {s['error']} | | | | | |")
                continue
            acc, pt = s["accuracy"], s.get("prompt_tokens") or {}
            pct = lambda v: "–" if v is None else f"{100 * v:.1f}"  # noqa: E731
            lines.append(f"| {ev} | {s['items']} | {pct(acc['changed'])} | {pct(acc['unchanged'])} | {pct(acc['all'])} | "
                         f"{pct(s['no_change_all'])} | {pct(s['parsed'])} | {pt.get('median')} / {pt.get('max')} |")
    lines += ["", "| stage | step | rc | seconds |", "|---|---|---|---|"]
    for name, st in res["stages"].items():
        for step, r in st["steps"].items():
            lines.append(f"| {name} | {step} | {r['rc']} | {r['s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", required=True, help="SmolLM2-135M-Instruct GGUF file")
    ap.add_argument("--bytesized32", type=Path, default=SHARED, help="folder with test_dev.jsonl.gz, rules/, examples.json")
    ap.add_argument("--out", default=os.environ.get("OUT", "runs/gpu_text_game"))
    ap.add_argument("--work", default=None, help="models and data (default: <out>/../gpu_text_game_work or runs/)")
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--tiny", action="store_true", help="CPU dry run: a few records and steps")
    ap.add_argument("--items", type=int, default=None, help="held-out records per evaluation (GPU 400)")
    ap.add_argument("--real-items", type=int, default=None, help="real ByteSized32 records (GPU: all 2,317)")
    ap.add_argument("--new-tokens", type=int, default=None, help="answer limit, compact prompts (GPU 384)")
    ap.add_argument("--sft-steps", type=int, default=None, help="LoRA SFT steps (GPU 2,000; the minutes cap first)")
    ap.add_argument("--sft-batch", type=int, default=None, help="records per SFT step (GPU 16)")
    ap.add_argument("--sft-minutes", type=float, default=None, help="SFT time cap (GPU 3)")
    ap.add_argument("--batch-size", type=int, default=None, help="records per evaluation batch (GPU 128)")
    ap.add_argument("--limit", type=float, default=None, help="seconds per step at most (GPU 420)")
    a = ap.parse_args(argv)
    defaults = ({"items": 3, "real_items": 1, "new_tokens": 24, "sft_steps": 2, "sft_batch": 1, "sft_minutes": 3.0,
                 "batch_size": 4, "limit": 900.0} if a.tiny else
                {"items": 400, "real_items": 2317, "new_tokens": 384, "sft_steps": 2000, "sft_batch": 16,
                 "sft_minutes": 3.0, "batch_size": 128, "limit": 420.0})
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if not Path(a.gguf).is_file():
        print(f"error: --gguf {a.gguf}: no such file (the SmolLM2 GGUF; see scripts/gpu_text_game.sh)", file=sys.stderr)
        return 2
    if "rlvr_world" in a.stages and not (a.bytesized32 / "test_dev.jsonl.gz").is_file():
        print(f"error: --bytesized32 {a.bytesized32}: no test_dev.jsonl.gz (copy ../shared/data/bytesized32 "
              f"into the repo and pass it)", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(a.work) if a.work else (Path("runs/gpu_text_game_work") if a.tiny or "OUT" not in os.environ
                                         else Path("/tmp/gpu_text_game_work"))
    work.mkdir(parents=True, exist_ok=True)
    import torch

    env = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
           "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
    res = {"tiny": a.tiny, "env": env, "args": {k: str(v) for k, v in vars(a).items()}, "stages": {}}
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    for stage in a.stages:
        st = res["stages"][stage] = {"steps": {}, "evals": {}}
        for step, cmd in stage_cmds(stage, a, work):
            print(f"== {stage}/{step}", flush=True)
            r = st["steps"][step] = _run(cmd, logs / f"{stage}.log", a.limit)
            if r["rc"] != 0:
                print(f"   rc {r['rc']} (see {logs / f'{stage}.log'})", flush=True)
                break
        for ev in EVALS.get(stage, []):
            try:
                st["evals"][ev] = summarize_eval(work / ev)
                (logs / f"{ev.replace('/', '_')}.md").write_text((work / ev / "eval.md").read_text())
            except (FileNotFoundError, json.JSONDecodeError) as e:
                st["evals"][ev] = {"error": f"{type(e).__name__}: {e}"}
        (out / "gpu_text_game.json").write_text(json.dumps(res, indent=1) + "\n")
        (out / "gpu_text_game.md").write_text(markdown(res))
    with tarfile.open(out / "gpu_text_game_logs.tar.gz", "w:gz") as tar:
        tar.add(logs, arcname="logs")
    print(markdown(res))
    return 0 if all(r["rc"] == 0 for s in res["stages"].values() for r in s["steps"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
