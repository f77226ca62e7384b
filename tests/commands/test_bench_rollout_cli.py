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


def test_bench_rollout_cli_reads_sizes_from_a_world_model(tmp_path):
    """--model: the backbone is loaded from the directory and the interleaved pattern uses its
    recorded layout (frame tokens vocab-masked to the visual codes, actions forced between)."""
    from worldmodels.models import build_backbone

    wm = tmp_path / "wm"
    build_backbone("test", 120, 256).save_pretrained(wm / "backbone")
    layout = {"spec": {"frame_skip": 2}, "actions": {"low": [-1, -1, -1], "high": [1, 1, 1]},
              "visual_vocab": 100, "action_offset": 100, "action_bins": 16, "frame_tokens": 4}
    (wm / "worldmodel.json").write_text(json.dumps({"format": 1, "kind": "video",
                                                    "backbone": "backbone", "layout": layout}))
    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["bench", "rollout", "--out", str(out), "--model", str(wm),
                                      "--batch", "2", "--prompt-len", "3", "--new-tokens", "20",
                                      "--repeats", "1", "--device", "cpu", "--no-stop-answers"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "bench_rollout.json").read_text())
    assert saved["vocab"] == 120 and "stop_ratio" not in saved
    assert saved["interact_pattern"] == "2 x (4 generated, in [0, 100)) + 6 forced between"
    bad = CliRunner().invoke(app, ["bench", "rollout", "--out", str(out), "--model", str(tmp_path)])
    assert bad.exit_code != 0 and "worldmodel.json" in bad.output
