"""The rollout benchmark runs both paths on the same batch and writes its report."""

import json

from worldmodels.train.rollout_bench import run


def test_rollout_bench_writes_ratio(tmp_path):
    res = run(tmp_path, preset="test", vocab_size=300, batch=2, prompt_len=4, new_tokens=8,
              frame_tokens=3, action_tokens=1, repeats=1, device="cpu")
    saved = json.loads((tmp_path / "bench_rollout.json").read_text())
    assert saved["ratio"] > 0 and abs(saved["ratio"] - res["generate_tok_s"] ** -1 * res["rollout_tok_s"]) < 1e-6
    assert "model.generate" in (tmp_path / "bench_rollout.md").read_text()
