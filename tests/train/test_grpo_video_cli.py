"""`wm rlvr video` end to end on a tiny world model built in-test (real VideoTask, stand-in
tokenizer from tests/tasks/wm_fakes.py), plus the fail-fast reward checks.

    OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/train/test_grpo_video_cli.py
"""

import json
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from wm_fakes import FakeFrameTokenizer, make_episodes  # noqa: E402

from worldmodels.cli import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def world_model(tmp_path_factory):
    """A 2-layer Llama world model over a 16x16 stand-in tokenizer, written as a world-model dir."""
    import numpy as np

    from worldmodels.clips import ClipDataset
    from worldmodels.episodes import dataset_split
    from worldmodels.models import build_backbone
    from worldmodels.tasks.video import VideoSpec, VideoTask
    from worldmodels.tasks.video_data import ActionCodec
    from worldmodels.world_model import export_backbone, write_world_model_meta

    root = tmp_path_factory.mktemp("wm")
    data = make_episodes(root / "data", n=6, T=8, test_every=3)
    tok = FakeFrameTokenizer()
    tok.save_pretrained(root / "tok")
    acts = ClipDataset(dataset_split(data, "train"), 1).all_actions()
    task = VideoTask(tok, VideoSpec("multi", 1, 3), ActionCodec.fit(np.asarray(acts, np.float32)),
                     data_root=str(data), tokenizer_dir=str(root / "tok"))
    torch.manual_seed(0)
    model = build_backbone("test", task.vocab_size, 128)
    out = root / "wm_video"
    write_world_model_meta(out, task)
    export_backbone(out, model)
    return out


def rlvr(*args):
    return runner.invoke(app, ["rlvr", "video", *args], catch_exceptions=False)


def test_rlvr_video_end_to_end_and_resume(world_model, tmp_path):
    out = tmp_path / "rlvr"
    common = ["--init", str(world_model), "--reward", "mae", "--out", str(out), "--preset", "tiny",
              "--set", "grpo.prompts_per_step=2", "--set", "grpo.mini_batch_prompts=2",
              "--set", "grpo.num_generations=3", "--set", "grpo.eval_steps=2",
              "--set", "grpo.save_steps=2", "--set", "eval.clips=4", "--set", "grpo.device=cpu",
              "--set", "grpo.sample_table_steps=2"]
    r = rlvr(*common, "--steps", "2")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/mse" in r]
    assert [r["step"] for r in evals] == [0, 2]
    for k in ("eval/mse", "eval/psnr", "eval/ssim", "eval/mse_1", "eval/repetition_rate"):
        assert k in evals[-1]
    steps = [r for r in rows if "reward" in r]
    assert len(steps) == 2 and "reward/mae" in steps[0] and steps[0]["reward"] <= 0
    # the output is a loadable world model
    from worldmodels.world_model import VideoWorldModel

    wm = VideoWorldModel.from_pretrained(out, device="cpu")
    pred = wm.predict(torch.rand(1, 1, 3, 16, 16), torch.zeros(1, 3, 2))
    assert pred.shape == (1, 1, 3, 3, 16, 16)
    assert (out / "config.yaml").is_file()
    import imageio.v3 as iio

    img = iio.imread(out / "samples" / "step_000002.png")  # target row + 3 samples, 3 frames
    assert img.shape == (4 * 16, 3 * 16, 3)
    assert (out / "samples.jsonl").read_text().count("\n") == 6  # 2 prompts x 3 samples
    # --resume continues from step 2 to 3
    r = rlvr(*common, "--steps", "3", "--resume")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "reward" in r] == [1, 2, 3]


def test_unknown_reward_lists_registered(world_model, tmp_path):
    r = runner.invoke(app, ["rlvr", "video", "--init", str(world_model), "--reward", "maee",
                            "--out", str(tmp_path / "x")])
    assert r.exit_code == 2
    assert "unknown reward 'maee'" in r.output and "mae" in r.output and "lpips" in r.output
    assert not (tmp_path / "x").exists()  # stopped before anything was written


def test_lpips_without_weights_stops_before_loading(tmp_path, monkeypatch):
    """--reward lpips with an empty TORCH_HOME stops at once, naming the missing file; the
    world model is never opened (it does not even exist here)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    r = runner.invoke(app, ["rlvr", "video", "--init", str(tmp_path / "nope"), "--reward", "lpips",
                            "--out", str(tmp_path / "x")])
    assert r.exit_code == 2, r.output
    assert "vgg16-397923af.pth" in r.output
    assert "not a world model" not in r.output


def test_readout_reward_needs_a_readout_before_loading(tmp_path):
    """--reward readout_state without --readout (or with a folder that holds no readout) stops
    at once with what to pass, before the (absent) world model is opened."""
    args = ["rlvr", "video", "--init", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]
    r = runner.invoke(app, [*args, "--reward", "readout_state+mae"])
    assert r.exit_code == 2, r.output
    assert "--readout" in r.output and "wm plan readout" in r.output
    r = runner.invoke(app, [*args, "--reward", "readout_state", "--readout", str(tmp_path / "no_ro")])
    assert r.exit_code == 2, r.output
    assert "readout.json" in r.output and not (tmp_path / "x").exists()


def test_bad_config_is_a_clear_error(tmp_path):
    r = runner.invoke(app, ["rlvr", "video", "--set", "grpo.num_generations=1"])
    assert r.exit_code != 0 and "num_generations" in r.output
    r = runner.invoke(app, ["rlvr", "video", "--preset", "huge"])
    assert r.exit_code != 0 and "unknown GRPO preset" in r.output


def test_rlvr_resume_keeps_the_runs_own_settings(world_model, tmp_path):
    """--resume continues with the recorded config.yaml: a differing --init/--reward/--set is
    an error naming field and both values (nothing written); --out X --resume alone works;
    --steps may change and is recorded."""
    out = tmp_path / "rl"
    first = ["--init", str(world_model), "--reward", "mae", "--out", str(out), "--preset", "tiny",
             "--set", "grpo.prompts_per_step=2", "--set", "grpo.mini_batch_prompts=2",
             "--set", "grpo.num_generations=2", "--set", "eval.clips=0", "--set", "grpo.device=cpu"]
    assert rlvr(*first, "--steps", "1").exit_code == 0
    recorded = (out / "config.yaml").read_text()
    metrics = (out / "metrics.jsonl").read_text()

    r = rlvr("--init", str(tmp_path / "wm2"), "--reward", "psnr", "--out", str(out), "--steps", "2",
             "--resume", "--set", "grpo.beta=0.5")
    assert r.exit_code == 2, r.output
    assert f"init: recorded '{world_model}', requested '{tmp_path / 'wm2'}'" in r.output
    assert "reward: recorded 'mae', requested 'psnr'" in r.output
    assert "grpo.beta: recorded 0.001, requested 0.5" in r.output
    assert "grpo.max_steps" in r.output.split("May change on resume:")[1]  # listed, not a conflict
    assert (out / "config.yaml").read_text() == recorded
    assert (out / "metrics.jsonl").read_text() == metrics

    # without --resume an existing run is never restarted over
    r = rlvr(*first, "--steps", "1")
    assert r.exit_code == 2 and "pass --resume" in r.output
    assert (out / "metrics.jsonl").read_text() == metrics

    # the recorded init is used (the default runs/wm_video does not exist here); nothing left to do
    r = rlvr("--out", str(out), "--resume")
    assert r.exit_code == 0 and "nothing to do" in r.output, r.output
    assert (out / "config.yaml").read_text() == recorded
    assert (out / "metrics.jsonl").read_text() == metrics  # at grpo.max_steps already

    # an allowed change: one more step, recorded; everything else as it was
    r = rlvr("--out", str(out), "--resume", "--steps", "2", "--set", "grpo.logging_steps=1")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows if "reward" in x] == [1, 2]
    import yaml

    before, after = yaml.safe_load(recorded), yaml.safe_load((out / "config.yaml").read_text())
    assert after["grpo"]["max_steps"] == 2 and before["grpo"]["max_steps"] == 1
    after["grpo"]["max_steps"] = 1
    assert after == before


def test_rlvr_resume_help_lists_what_may_change():
    r = runner.invoke(app, ["rlvr", "video", "--help"], terminal_width=200)
    text = " ".join(r.output.replace("│", " ").split())
    for name in ("--steps", "grpo.logging_steps", "grpo.eval_steps", "grpo.save_steps"):
        assert name in text.split("--resume", 1)[1], text
