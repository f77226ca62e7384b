"""The whole pipeline through the `wm` CLI at micro scale, in the default suite:

data (MuJoCo) -> frame tokenizer -> MLE world model -> RLVR (GRPO, MAE) -> held-out eval.

Sizes are far too small to learn anything; the test checks that every stage consumes what the
previous one wrote and produces well-formed, finite results. Learning itself is measured by the
runs documented in docs/ (and by the slow tests of each area).
"""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from worldmodels.cli import app

runner = CliRunner()


def wm(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, f"wm {' '.join(args)} failed:\n{result.output}"
    return result.output


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data, tok, pre, rl = (root / n for n in ("data", "tok", "wm", "rl"))
    wm("data", "build", "robot", "--out", str(data), "--episodes", "6", "--episode-len", "12",
       "--test-every", "3", "--workers", "1", "--quiet")
    wm("tokenizer", "train", "--kind", "frame", "--preset", "tiny", "--data", str(data),
       "--out", str(tok), "--steps", "3", "--batch-size", "4")
    wm("pretrain", "video", "--data", str(data), "--tokenizer", str(tok), "--out", str(pre),
       "--preset", "tiny", "--steps", "4", "--set", "train.batch_size=2",
       "--set", "train.eval_every=2", "--set", "train.save_every=2",
       "--set", "data.layout.future_frames=3")
    wm("rlvr", "video", "--init", str(pre), "--reward", "mae", "--preset", "tiny", "--out", str(rl),
       "--steps", "2", "--set", "grpo.num_generations=2", "--set", "grpo.prompts_per_step=2",
       "--set", "grpo.mini_batch_prompts=2", "--set", "eval.clips=2")
    wm("eval", "video", "--model", str(rl), "--data", str(data), "--clips", "2", "--samples", "2",
       "--gifs", "1", "--lpips", "none")
    return {"data": data, "tok": tok, "wm": pre, "rl": rl}


def test_every_stage_wrote_its_outputs(pipeline):
    meta = json.loads((pipeline["data"] / "meta.json").read_text())
    assert meta["episodes"] == 6 and len(list(pipeline["data"].glob("ep_*.npz"))) == 6
    for stage in ("tok", "wm", "rl"):
        assert (pipeline[stage] / "config.yaml").is_file(), stage
    assert (pipeline["tok"] / "model.safetensors").is_file()
    for stage in ("wm", "rl"):
        assert (pipeline[stage] / "worldmodel.json").is_file(), stage


def test_pretraining_and_rlvr_logged_finite_values(pipeline):
    pre = [r for r in read_jsonl(pipeline["wm"] / "metrics.jsonl") if "loss" in r]
    assert pre and all(math.isfinite(r["loss"]) for r in pre)
    steps = [r for r in read_jsonl(pipeline["rl"] / "metrics.jsonl") if "reward" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        # MAE reward is a negated loss of frames in [0,1]: it lies in [-1, 0].
        assert -1.0 <= r["reward"] <= 0.0
        assert r["invalid_rewards"] == 0
        assert math.isfinite(r["kl"]) and math.isfinite(r["grad_norm"])


def test_eval_report_is_well_formed(pipeline):
    out = pipeline["rl"] / "eval"
    report = json.loads((out / "eval.json").read_text())
    assert report["clips"] == 2 and report["n_samples"] == 2
    for setting in ("single", "multi"):
        for metric in ("mse", "mae", "psnr", "ssim"):
            value = report[setting][metric]
            value = value["mean"] if isinstance(value, dict) else value
            assert math.isfinite(value), (setting, metric)
    assert 0.0 <= report["multi"]["repetition_rate"] <= 1.0
    assert (out / "eval.md").read_text().count("|") > 10
    assert list(out.glob("*.gif"))


def test_rlvr_output_is_a_loadable_world_model(pipeline):
    import torch

    from worldmodels.world_model import VideoWorldModel

    model = VideoWorldModel.from_pretrained(pipeline["rl"])
    ctx = torch.rand(1, 1, 3, 64, 64)
    actions = torch.zeros(1, 2, 2)  # k-1 = 0 context actions + N = 2 future actions, A = 2
    pred = model.predict(ctx, actions, n_samples=2)
    assert pred.shape == (1, 2, 2, 3, 64, 64)
    assert float(pred.min()) >= 0.0 and float(pred.max()) <= 1.0
