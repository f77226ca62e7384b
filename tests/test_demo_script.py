"""`make demo`: scripts/demo.sh runs step budgets and resumes stages; scripts/demo_summary.py reads
both eval.json layouts and compares the models with the baselines (hand-made evaluations, a fake
`wm` that records its calls: nothing is trained here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scripts" / "demo.sh"

demo_summary = load_script("demo_summary")

# (single-step, multi-step) values of one hand-made evaluation
MLE = {"mse": (0.0046, 0.0076), "psnr": (24.21, 21.81), "token_acc": (0.63, 0.50)}
RLVR = {"mse": (0.0044, 0.0072), "psnr": (24.60, 22.10), "token_acc": (0.64, 0.51)}
BASE = {"copy_last": {"mse": (0.0012, 0.0028), "psnr": (33.62, 30.03)},
        "copy_last_tokens": {"mse": (0.0016, 0.0030), "psnr": (28.72, 26.16), "token_acc": (0.82, 0.72)},
        "tokenizer": {"mse": (0.0009, 0.0008), "psnr": (31.45, 31.61)}}


def old_layout(model: dict, repetition: float = 0.0, ci: float = 0.1) -> dict:
    """eval.json as `wm eval video` writes it (per-scope dicts; 95 % interval mean·(1 ± ci))."""
    res = {"clips": 32, "n_samples": 2, "future_frames": 7, "note": None}
    for i, scope in enumerate(("single", "multi")):
        part = {m: {"best_of_n": v[i] * 0.9, "std": 0.001, "mean": v[i],
                    "ci95": [v[i] * (1 - ci), v[i] * (1 + ci)]} for m, v in model.items()}
        for b, metrics in BASE.items():
            part[b] = {m: v[i] for m, v in metrics.items()}
        res[scope] = part
    res["multi"]["repetition_rate"] = repetition
    return res


def generic_layout(model: dict, repetition: float = 0.0) -> dict:
    """The same evaluation in the generic evaluator's layout (`_1` = single-step)."""
    def flat(metrics: dict) -> dict:
        out = {}
        for m, (single, multi) in metrics.items():
            out[f"{m}_1"] = {"mean": single, "best_of_n": single, "std": 0.0,
                             "ci95": [single * 0.9, single * 1.1]}
            out[m] = {"mean": multi, "best_of_n": multi, "std": 0.0, "ci95": [multi * 0.9, multi * 1.1]}
        return out

    return {"clips": 32, "n_samples": 2, "future_frames": 7,
            "metrics": {**flat(model), "repetition_rate": {"mean": repetition}},
            "baselines": {b: flat(metrics) for b, metrics in BASE.items()}}


def write_evals(out: Path, mle: dict | None, rlvr: dict | None) -> None:
    for name, res in (("wm", mle), ("rlvr", rlvr)):
        if res is not None:
            (out / name / "eval").mkdir(parents=True, exist_ok=True)
            (out / name / "eval" / "eval.json").write_text(json.dumps(res))


def row(text: str, label: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(label))
    return line[len(label):].split()


def test_summary_table_and_comparisons(tmp_path, capsys):
    write_evals(tmp_path, old_layout(MLE), old_layout(RLVR, repetition=0.25))
    assert demo_summary.main(["--out", str(tmp_path), "--data", str(tmp_path / "data")]) == 0
    text = capsys.readouterr().out
    # columns: MLE, RLVR, copy last frame, copy last tokens, tokenizer (ceiling)
    assert row(text, "single-step MSE") == ["0.00460", "0.00440", "0.00120", "0.00160", "0.00090"]
    assert row(text, "multi-step PSNR (dB)") == ["21.81", "22.10", "30.03", "26.16", "31.61"]
    assert row(text, "token accuracy, 1st frame") == ["0.630", "0.640", "–", "0.820", "1.000"]
    assert row(text, "repetition rate") == ["0.000", "0.250", "–", "–", "–"]
    # (0.0044 - 0.0046) / 0.0046 = -4.35 %, (0.0072 - 0.0076) / 0.0076 = -5.26 %
    assert "RLVR vs MLE: single-step MSE −4.3 %, multi-step MSE −5.3 %" in text
    # (0.0046 - 0.0012) / 0.0012 = +283.3 %
    assert ("MLE does not beat copy-last-frame on single-step MSE: 0.00460 [95 % interval 0.00414, "
            "0.00506] vs 0.00120 (+283.3 %") in text
    assert "0.630 vs 0.820 for copying the last frame's tokens" in text
    # MLE [0.00414, 0.00506] and RLVR [0.00396, 0.00484] overlap: called noise
    assert "within noise of each other" in text
    assert f"{tmp_path / 'data'}" in text and "(missing)" in text  # the data folder was not built


def test_summary_separated_intervals_are_not_noise(tmp_path, capsys):
    # single-step MSE 0.0046 ± 1 % vs 0.0044 ± 1 %: [0.004554, 0.004646] and [0.004356, 0.004444]
    write_evals(tmp_path, old_layout(MLE, ci=0.01), old_layout(RLVR, ci=0.01))
    assert demo_summary.main(["--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "RLVR vs MLE: single-step MSE −4.3 %" in text and "within noise" not in text
    assert demo_summary.overlaps((0.0, 1.0), (1.0, 2.0)) and not demo_summary.overlaps((0.0, 1.0), None)


def test_both_layouts_read_the_same(tmp_path):
    a = demo_summary.normalise(old_layout(MLE, 0.5))
    b = demo_summary.normalise(generic_layout(MLE, 0.5))
    assert a["model"][("mse", "single")] == 0.0046 and a["model"][("repetition_rate", "multi")] == 0.5
    for key in [("mse", "single"), ("mse", "multi"), ("psnr", "single"), ("token_acc", "multi"),
                ("repetition_rate", "multi")]:
        assert a["model"][key] == b["model"][key], key
    for base in BASE:
        assert a["baselines"][base] == b["baselines"][base], base
    assert a["ci"][("mse", "multi")] == pytest.approx(b["ci"][("mse", "multi")]) == (0.00684, 0.00836)
    assert b["baselines"]["tokenizer"][("token_acc", "single")] == 1.0  # by definition


def test_summary_beats_copy_last(tmp_path, capsys):
    good = {"mse": (0.0010, 0.0020), "psnr": (34.0, 31.0), "token_acc": (0.9, 0.8)}
    write_evals(tmp_path, old_layout(good), None)
    assert demo_summary.main(["--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "MLE beats copy-last-frame on single-step MSE: 0.00100 [95 % interval 0.00090, 0.00110] vs 0.00120 (−16.7 %" in text
    assert "no RLVR column" in text and str(tmp_path / "rlvr" / "eval" / "eval.json") in text
    assert row(text, "single-step MSE") == ["0.00100", "0.00120", "0.00160", "0.00090"]


def test_summary_errors_name_the_file(tmp_path, capsys):
    assert demo_summary.main(["--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "wm" / "eval" / "eval.json") in err and "wm eval video" in err
    write_evals(tmp_path, {"steps": 3}, None)
    assert demo_summary.main(["--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "eval.json" in err and "'single'" in err and "'metrics'" in err
    (tmp_path / "wm" / "eval" / "eval.json").write_text("{not json")
    assert demo_summary.main(["--out", str(tmp_path)]) == 1
    assert "not readable as JSON" in capsys.readouterr().err


FAKE_WM = r'''#!/usr/bin/env python3
"""A stand-in for `wm`: records its argv and environment, makes the --out folders, fails on demand."""
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
log = Path(os.environ["FAKE_WM_LOG"])
with log.open("a") as f:
    f.write(json.dumps({"args": args, "hf_bars_off": os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"),
                        "verbosity": os.environ.get("TRANSFORMERS_VERBOSITY")}) + "\n")
def opt(name):
    return args[args.index(name) + 1] if name in args else None
if os.environ.get("FAKE_WM_FAIL") and args[:2] == os.environ["FAKE_WM_FAIL"].split():
    Path(opt("--out")).mkdir(parents=True, exist_ok=True)   # interrupted: a partial run folder
    sys.exit(3)
if args[:2] == ["eval", "video"]:
    ev = Path(opt("--model")) / "eval"
    ev.mkdir(parents=True, exist_ok=True)
    (ev / "eval.json").write_text(os.environ["FAKE_EVAL_" + Path(opt("--model")).name.upper()])
elif opt("--out"):
    Path(opt("--out")).mkdir(parents=True, exist_ok=True)
'''


@pytest.fixture
def fake_demo(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    wm = tmp_path / "wm"
    wm.write_text(FAKE_WM.replace("#!/usr/bin/env python3", f"#!{sys.executable}"))
    wm.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    env = {**os.environ, "WM": str(wm), "PY": sys.executable, "FAKE_WM_LOG": str(log),
           "DEMO_OUT": str(tmp_path / "out"), "DEMO_DATA": str(tmp_path / "data"),
           "TOK_STEPS": "7", "WM_STEPS": "11", "RLVR_STEPS": "3", "EVAL_CLIPS": "4",
           "FAKE_EVAL_WM": json.dumps(old_layout(MLE)), "FAKE_EVAL_RLVR": json.dumps(old_layout(RLVR))}
    for k in ("TOK_MINUTES", "WM_MINUTES", "FAKE_WM_FAIL"):
        env.pop(k, None)

    def run(**extra):
        proc = subprocess.run(["bash", str(DEMO)], env={**env, **extra}, capture_output=True, text=True,
                              timeout=120)
        calls = [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return proc, calls

    return run


def test_demo_runs_step_budgets_then_summarises(fake_demo):
    proc, calls = fake_demo()
    assert proc.returncode == 0, proc.stderr
    by_cmd = {" ".join(c["args"][:2]): c["args"] for c in calls}
    tok, pre, rl = by_cmd["tokenizer train"], by_cmd["pretrain video"], by_cmd["rlvr video"]
    assert tok[tok.index("--steps") + 1] == "7" and tok[tok.index("--max-minutes") + 1] == "0"
    assert pre[pre.index("--steps") + 1] == "11" and rl[rl.index("--steps") + 1] == "3"
    for args in (tok, pre, rl):
        assert "--resume" not in args and not any("max_minutes" in a for a in args)
    assert all(c["hf_bars_off"] == "1" and c["verbosity"] == "error" for c in calls)
    evals = [c["args"] for c in calls if c["args"][:2] == ["eval", "video"]]
    assert len(evals) == 2 and all(a[a.index("--clips") + 1] == "4" for a in evals)
    assert "How the models compare" in proc.stdout and "RLVR vs MLE: single-step MSE −4.3 %" in proc.stdout
    # a second run skips every finished stage
    proc, calls = fake_demo()
    assert proc.returncode == 0, proc.stderr
    assert [c["args"][:2] for c in calls] == [["data", "build"], ["eval", "video"], ["eval", "video"]]
    assert proc.stdout.count("done already") == 3


def test_demo_resumes_an_interrupted_stage(fake_demo):
    proc, calls = fake_demo(FAKE_WM_FAIL="pretrain video")
    assert proc.returncode == 3 and [c["args"][:2] for c in calls][-1] == ["pretrain", "video"]
    proc, calls = fake_demo()
    assert proc.returncode == 0, proc.stderr
    resumed = {" ".join(c["args"][:2]): "--resume" in c["args"] for c in calls}
    assert resumed == {"data build": False, "pretrain video": True, "rlvr video": False, "eval video": False}


@pytest.mark.parametrize("env, message", [({"TOK_MINUTES": "6"}, "TOK_MINUTES is no longer read"),
                                          ({"WM_STEPS": "6min"}, "WM_STEPS must be a positive integer")])
def test_demo_rejects_bad_budgets(fake_demo, env, message):
    proc, calls = fake_demo(**env)
    assert proc.returncode == 2 and message in proc.stderr and calls == []
