"""The rollout benchmark runs both paths on the same batch and writes its report."""

import json

from worldmodels.train.rollout_bench import run


def test_rollout_bench_writes_ratio(tmp_path):
    res = run(tmp_path, preset="test", vocab_size=300, batch=2, prompt_len=4, new_tokens=8,
              segment_tokens=3, forced_tokens=1, repeats=1, device="cpu")
    saved = json.loads((tmp_path / "bench_rollout.json").read_text())
    assert saved["ratio"] > 0 and abs(saved["ratio"] - res["generate_tok_s"] ** -1 * res["rollout_tok_s"]) < 1e-6
    assert "model.generate" in (tmp_path / "bench_rollout.md").read_text()


def test_rollout_bench_stop_answers_are_mixed_and_identical_in_both_paths(tmp_path):
    """The text-like line: answers end at stop ids at mixed lengths, and the rollout engine and
    ``generate`` produce the same tokens (so the ratio compares equal work)."""
    res = run(tmp_path, preset="test", vocab_size=300, batch=6, prompt_len=4, new_tokens=24,
              segment_tokens=5, forced_tokens=2, allowed=(0, 100), forced_range=(100, 110),
              repeats=1, device="cpu")
    ln = res["stop_lengths"]
    assert res["stop_same_tokens"] is True and res["stop_ratio"] > 0 and res["stop_ids"] >= 1
    assert 1 <= ln["min"] < ln["max"] <= 12 and res["stop_rows_stopped"] == 6  # targets <= 24 / 2
    assert res["interact_pattern"].startswith("3 x (5 generated, in [0, 100)) + 2 forced")
    assert "greedy answers with stop ids" in (tmp_path / "bench_rollout.md").read_text()
