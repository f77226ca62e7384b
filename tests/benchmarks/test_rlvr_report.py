"""benchmarks/rlvr_report.py (the video RLVR-vs-MLE experiment's tables): a single-step model's
runs (one predicted frame, no repetition rate) summarise by hand and print "–" where a metric
was not measured, instead of failing."""

import sys
from argparse import Namespace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from rlvr_report import markdown, summarise  # noqa: E402


def _run(mses, stl):
    recs = []
    for i, (m, s) in enumerate(zip(mses, stl, strict=True)):
        recs.append({"step": 10 * i, "eval/mse": m, "eval/mse_1": m, "eval/psnr": 20.0,
                     "eval/psnr_1": 20.0, "eval/ssim": 0.5, "eval/ssim_1": 0.5,
                     "eval/stlpips_1": s, "step_time_s": 5.0})
    return {"records": recs, "wall_s": 100.0, "complete": True}


def test_single_step_runs_summarise_and_print_a_dash_for_repetition():
    runs = {"rlvr": {0: _run([0.010, 0.008], [0.20, 0.15]), 1: _run([0.010, 0.006], [0.20, 0.13])},
            "mle": {0: _run([0.010, 0.011], [0.20, 0.21]), 1: _run([0.010, 0.009], [0.20, 0.19])}}
    s = summarise(runs)
    assert s["common_step"] == 10
    assert s["rlvr"]["metrics"]["mse"]["end"][0] == pytest.approx(0.007)
    assert s["rlvr"]["metrics"]["stlpips_1"]["rel_change"][0] == pytest.approx(-0.3)  # (-.25 - .35) / 2
    assert "repetition_rate" not in s["rlvr"]["metrics"]
    assert s["rlvr"]["wall_s"][0] == pytest.approx(10.0)  # two steps of 5 s, eval excluded
    md = markdown(s, [], Namespace(command_line="x", plot_name="p.png", runs_for_curves=runs))
    row = next(ln for ln in md.splitlines() if ln.startswith("| rlvr |"))
    assert row.split(" | ")[-2] == "–"  # the repetition column
    assert "0.0070 ± 0.0014" in row
    assert "Held-out single-step ST-LPIPS" in md
