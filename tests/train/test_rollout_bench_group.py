"""The GRPO-like line of the rollout benchmark (``--group``): grouped prompts, sampled answers of
mixed lengths, the same tokens from the engine and ``generate``, alternated timings."""

import json

import pytest
from typer.testing import CliRunner

from worldmodels.cli import app
from worldmodels.train.rollout_bench import run


def test_group_line_samples_mixed_answers_and_generates_draws_exactly(tmp_path):
    res = run(tmp_path, preset="test", vocab_size=300, batch=7, prompt_len=5, new_tokens=24,
              segment_tokens=4, forced_tokens=1, repeats=1, device="cpu", group=3, rounds=2)
    assert res["group_batch"] == 6 and res["group"] == 3  # 7 // 3 prompts x 3 samples
    assert res["group_same_tokens"] is True  # the multinomial engine draws generate's tokens
    assert res["group_stop_ids"] == 300 * 4 // 24
    ln = res["group_mean_answer"]
    assert set(ln) == {"engine", "engine_multinomial", "plain", "generate"}
    assert ln["engine_multinomial"] == ln["plain"] == ln["generate"]  # same draws, same answers
    assert all(1 <= v < 24 for v in ln.values())  # the stop ids end answers early
    assert res["group_ratio"] == pytest.approx(res["group_rollout_tok_s"] / res["group_generate_tok_s"])
    assert res["group_same_draws_ratio"] > 0 and res["group_plain_ratio"] > 0
    assert set(res["group_seconds"]) == {"engine", "engine_multinomial", "plain", "generate"}
    md = (tmp_path / "bench_rollout.md").read_text()
    assert "2 prompts x group 3, sampled (T=1), 2 rounds" in md and "generate`'s draws" in md
    with pytest.raises(ValueError, match="group 9 exceeds the batch 7"):
        run(tmp_path, preset="test", vocab_size=300, batch=7, prompt_len=5, new_tokens=8,
            repeats=1, device="cpu", group=9)


def test_bench_rollout_cli_group_flag(tmp_path):
    result = CliRunner().invoke(app, ["bench", "rollout", "--out", str(tmp_path), "--preset", "test",
                                      "--batch", "4", "--prompt-len", "4", "--new-tokens", "8",
                                      "--repeats", "1", "--device", "cpu", "--group", "2",
                                      "--rounds", "1", "--threads", "1", "--seed", "3"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "bench_rollout.json").read_text())
    assert f"group 2 (sampled, mixed lengths) ratio {saved['group_ratio']:.2f}" in result.output
    assert saved["seed"] == 3
    bad = CliRunner().invoke(app, ["bench", "rollout", "--out", str(tmp_path), "--batch", "2",
                                   "--group", "3"])
    assert bad.exit_code != 0 and "--group 3 exceeds --batch 2" in bad.output


def test_gpu_check_reports_the_group_line_against_the_2x_aim():
    """scripts/gpu_check.py turns the GRPO-like rows into targets (bar 2x generate, checked only
    off a dry run) and a markdown table."""
    from tests.scripts import load_script

    mod = load_script("gpu_check")
    row = {"op": "rollout_group", "preset": "small", "group": 5, "group_batch": 40, "group_ratio": 2.4,
           "group_mean_answer": {"engine": 20.5, "generate": 21.0}, "group_rollout_tok_s": 900.0,
           "group_plain_tok_s": 400.0, "group_generate_tok_s": 375.0, "group_same_draws_ratio": 2.2,
           "group_same_tokens": True}
    rows = [{**row, "cuda_graphs": False, "group_ratio": 1.5}, {**row, "cuda_graphs": True}]
    got = {t["target"]: t for t in mod.targets(rows)}
    assert got["rollout / generate, text group 5, small"]["met"] is False  # 1.5 < 2
    graphs = got["rollout / generate, text group 5, small, CUDA graphs"]
    assert (graphs["bar"], graphs["value"], graphs["met"]) == (2.0, 2.4, True)
    assert all(t["met"] is None for t in mod.targets(rows, dry_run=True))
    md = mod.markdown({"tiny": False, "env": {}, "rows": rows, "stages": [], "targets": mod.targets(rows)})
    assert "| small | yes | 40 | 20.5 / 21.0 | 900 | 400 | 375 | 2.40 | 2.20 | True |" in md
