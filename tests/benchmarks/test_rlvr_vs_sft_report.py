"""benchmarks/rlvr_vs_sft_report.py: per-arm summaries, paired differences and the bar, by hand."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from rlvr_vs_sft import Experiment  # noqa: E402
from rlvr_vs_sft_report import markdown, rlvr_bar, summarise  # noqa: E402


def _exp(min_gain=0.0):
    return Experiment(name="toy", script="x.py", arms={"rlvr_f1": "f1", "sft": None}, sets=("records",),
                      columns=("f1",), labels={"f1": "F1"}, defaults={}, make_eval=None,
                      paired_columns=("f1",),
                      bar=lambda s: rlvr_bar(s, "rlvr_f1", "records/f1", min_gain, "toy issue"))


def _run(f1s, complete=True):
    recs = [{"step": 0, "cpu_s": 0.0, "eval/records/f1": 0.5}]
    recs += [{"step": i + 1, "cpu_s": 10.0 * (i + 1), "eval/records/f1": v} for i, v in enumerate(f1s)]
    recs.append({"step": len(f1s) + 1, "cpu_s": 99.0})  # a training record without evaluation
    return {"records": recs, "cpu_s": 99.0, "wall_s": 120.0, "sequences": 40, "complete": complete}


def test_summary_uses_each_runs_last_evaluation_and_pairs_by_seed():
    runs = {"rlvr_f1": {0: _run([0.55, 0.60]), 1: _run([0.70]), 2: _run([0.9], complete=False)},
            "sft": {0: _run([0.52]), 1: _run([0.61])}}
    s = summarise(_exp(), runs, {"records/f1": 0.5})
    m = s["arms"]["rlvr_f1"]["metrics"]["records/f1"]
    assert m["values"] == [0.60, 0.70] and m["mean"] == pytest.approx(0.65)
    assert m["std"] == pytest.approx(0.0707107, rel=1e-5)  # sample std of (0.6, 0.7)
    assert s["incomplete"] == ["rlvr_f1_s2"]
    d = s["arms"]["rlvr_f1"]["minus_continued_sft"]["records/f1"]
    assert d["values"] == pytest.approx([0.08, 0.09]) and d["mean"] == pytest.approx(0.085)
    bar = s["bar"]
    assert bar["gain_over_sft_points"] == pytest.approx(15.0) and bar["met"] is True
    assert "bar met" in markdown(_exp(), s)


def test_bar_needs_a_gain_and_a_win_over_continued_sft():
    runs = {"rlvr_f1": {0: _run([0.5])}, "sft": {0: _run([0.4])}}
    s = summarise(_exp(), runs, {"records/f1": 0.5})
    assert s["bar"]["gain_met"] is False and s["bar"]["beats_continued_sft"] is True  # +0 is no gain
    assert s["bar"]["met"] is False
    s = summarise(_exp(min_gain=0.05), {"rlvr_f1": {0: _run([0.54])}, "sft": {0: _run([0.5])}},
                  {"records/f1": 0.5})
    assert s["bar"]["gain_met"] is False and "needs ≥ +5" in s["bar"]["text"]
    s = summarise(_exp(), {"rlvr_f1": {0: _run([0.6])}, "sft": {0: _run([0.7])}}, {"records/f1": 0.5})
    assert s["bar"]["beats_continued_sft"] is False and s["bar"]["met"] is False
    assert summarise(_exp(), {"sft": {0: _run([0.7])}}, {"records/f1": 0.5}).get("bar") is None


def test_saved_models_are_named_like_their_run_files_so_tagged_variants_never_overwrite(tmp_path, monkeypatch):
    """A variant run with --tag under the same --out once overwrote the untagged arm's models."""
    from types import SimpleNamespace

    import rlvr_vs_sft

    import worldmodels.world_model as wm

    written = []
    monkeypatch.setattr(wm, "write_world_model_meta", lambda d, task, extra: written.append(Path(d).name))
    monkeypatch.setattr(wm, "export_backbone", lambda d, model: None)
    for tag in ("", "_t05"):
        args = SimpleNamespace(save_models=True, out=str(tmp_path), tag=tag, init="sft")
        rlvr_vs_sft.maybe_save_model(args, "rlvr_f1", 0, None, None, {})
        rlvr_vs_sft.maybe_save_model(args, "sft", 0, None, None, {})
    assert written == ["rlvr_f1_s0", "sft_s0", "rlvr_f1_t05_s0", "sft_t05_s0"]
    assert rlvr_vs_sft.run_name("sft", "_t05", 2) == "sft_t05_s2"      # the run file's name too


def test_the_curves_figure_goes_under_out_unless_a_plot_path_is_named(tmp_path, monkeypatch):
    """A lane once wrote docs/web_curves.png over the committed figure (the old default)."""
    import json
    from dataclasses import replace

    import rlvr_vs_sft

    written = []
    monkeypatch.setattr(rlvr_vs_sft, "plot", lambda exp, runs, init, path: written.append(path))
    out = tmp_path / "exp"
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "rlvr_f1_lr2e5_s0.json").write_text(json.dumps(_run([0.6])))
    exp = replace(_exp(), defaults={"init": "i", "heldout": "h", "recipe": "r", "out": "o",
                                    "match": "rlvr_f1"}, sets=("records", "games"))
    rlvr_vs_sft.main(exp, "doc", ["--report-only", "--out", str(out), "--tag", "_lr2e5"])
    assert written == [out / "curves_lr2e5.png"]
    assert rlvr_vs_sft.parser(exp, "doc").parse_args([]).plot is None
    rlvr_vs_sft.main(exp, "doc", ["--report-only", "--out", str(out), "--tag", "_lr2e5",
                                  "--plot", str(tmp_path / "fig.png")])
    assert written[-1] == tmp_path / "fig.png"
