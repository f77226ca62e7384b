"""`wm bench rollout` runs the rollout-vs-generate benchmark and reports the ratio."""

import json

from typer.testing import CliRunner

from worldmodels.cli import app


def test_bench_rollout_cli(tmp_path):
    result = CliRunner().invoke(app, ["bench", "rollout", "--out", str(tmp_path), "--preset", "test",
                                      "--batch", "2", "--prompt-len", "4", "--new-tokens", "6",
                                      "--repeats", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "bench_rollout.json").read_text())
    assert saved["rollout_tok_s"] > 0 and saved["generate_tok_s"] > 0
    assert f"ratio {saved['ratio']:.2f}" in result.output
