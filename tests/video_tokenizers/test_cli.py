"""`wm tokenizer train|eval` end to end on a few generated episodes (small model overrides)."""

import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from worldmodels.cli import app
from worldmodels.episodes import save_episode

SMALL_FRAME = ["--set", "model.block_out_channels=[8,16]", "--set", "model.norm_num_groups=4"]
SMALL_COMP = ["--set", "model.context_channels=[8,16]", "--set", "model.future_channels=[8,16,16]",
              "--set", "model.norm_num_groups=4"]
QUIET = ["--set", "train.progress=false", "--set", "train.log_every=1", "--set", "perceptual=none"]


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "robot"
    root.mkdir()
    for e in range(6):
        img = np.full((6, 64, 64, 3), 40 * e, np.uint8)
        for t in range(6):  # a moving square
            img[t, 10 + 3 * t : 20 + 3 * t, 20:30] = 255
        save_episode(root / f"ep_{e:06d}.npz", img, rng.normal(size=(6, 2)).astype(np.float32))
    (root / "meta.json").write_text(json.dumps({"test_every": 3}))
    return root


def run(args):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_frame_train_eval_resume(data, tmp_path):
    out = tmp_path / "tok_frame"
    base = ["tokenizer", "train", "--kind", "frame", "--data", str(data), "--out", str(out),
            "--steps", "2", "--batch-size", "4", *SMALL_FRAME, *QUIET]
    text = run(base)
    assert "training without the perceptual term" in text
    assert (out / "config.yaml").is_file() and (out / "model.safetensors").is_file()
    run([*base[:-len(QUIET) - len(SMALL_FRAME)], *SMALL_FRAME, *QUIET, "--resume"])  # nothing left
    run([*[a if a != "2" else "3" for a in base], "--resume"])
    lines = (out / "log.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [1, 2, 3]
    text = run(["tokenizer", "eval", "--tokenizer", str(out), "--data", str(data), "--lpips", "none"])
    res = json.loads((out / "eval_test.json").read_text())
    assert res["frames"] == 12 and res["tokens_per_frame"] == 32 * 32
    assert 0 <= res["codebook_usage"] <= 1 and res["psnr"] > 0 and "psnr" in text


def test_compressive_train_with_init_context_and_eval_compare(data, tmp_path):
    frame = tmp_path / "tok_frame"
    run(["tokenizer", "train", "--kind", "frame", "--data", str(data), "--out", str(frame),
         "--steps", "1", "--batch-size", "4", *SMALL_FRAME, *QUIET])
    out = tmp_path / "tok_comp"
    text = run(["tokenizer", "train", "--kind", "compressive", "--data", str(data), "--out", str(out),
                "--steps", "1", "--batch-size", "2", "--init-context", str(frame),
                "--set", "clip_len=4", *SMALL_COMP, *QUIET])
    assert "context path initialised" in text
    run(["tokenizer", "eval", "--tokenizer", str(out), "--data", str(data), "--clip-len", "3",
         "--compare", str(frame), "--lpips", "none"])
    res = json.loads((out / "eval_test.json").read_text())
    assert res["context_tokens"] == 1024 and res["tokens_per_future_frame"] == 256
    assert res["future"]["frames"] == 2 * 2 * 2  # 2 test episodes x 2 clips x 2 future frames
    assert res["frame_tokenizer_future"]["tokens_per_frame"] == 1024
    # the moving square changes pixels; copying the context gets them wrong
    assert res["copy_context"]["changed_pixels"] > 0
    assert res["copy_context"]["changed_psnr"] < res["copy_context"]["psnr"]
    assert "changed_psnr" in res["future"] and "changed_psnr" in res["frame_tokenizer_future"]


def test_compressive_fine_tune_with_init_on_frame_skipped_clips(data, tmp_path):
    """--init takes the tokenizer's config and weights (no model overrides given); frame_skip
    spaces the clip's frames as a frame-skipping world model sees them."""
    from tokenizers_video import load_tokenizer

    base = tmp_path / "tok_comp"
    run(["tokenizer", "train", "--kind", "compressive", "--data", str(data), "--out", str(base),
         "--steps", "1", "--batch-size", "2", "--set", "clip_len=3", *SMALL_COMP, *QUIET])
    out = tmp_path / "tok_tuned"
    text = run(["tokenizer", "train", "--kind", "compressive", "--data", str(data), "--out", str(out),
                "--init", str(base), "--steps", "1", "--batch-size", "2", "--lr", "1e-9", "--set", "clip_len=3",
                "--set", "frame_skip=2", "--set", "train.motion_weight=5", *QUIET])
    assert f"fine-tuning {base}" in text
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["frame_skip"] == 2 and saved["init"] == str(base)
    assert saved["model"]["future_channels"] == [8, 16, 16]  # the init's, not the preset's
    a, b = load_tokenizer(base), load_tokenizer(out)
    for name, w in a.state_dict().items():  # one step at lr 1e-9 from the init's weights
        assert torch.allclose(w, b.state_dict()[name], atol=1e-6), name
    assert "moving_frac" in json.loads((out / "log.jsonl").read_text().splitlines()[0])
    # resuming a fine-tune rebuilds the init's shapes (not the preset's) before loading the checkpoint
    run(["tokenizer", "train", "--kind", "compressive", "--data", str(data), "--out", str(out),
         "--init", str(base), "--steps", "2", "--batch-size", "2", "--set", "clip_len=3",
         "--set", "frame_skip=2", "--set", "train.motion_weight=5", *QUIET, "--resume"])
    assert [json.loads(ln)["step"] for ln in (out / "log.jsonl").read_text().splitlines()] == [1, 2]
    run(["tokenizer", "eval", "--tokenizer", str(out), "--data", str(data), "--clip-len", "3",
         "--frame-skip", "2", "--lpips", "none"])
    res = json.loads((out / "eval_test.json").read_text())
    assert res["future"]["frames"] == 2 * 1 * 2  # 2 test episodes x 1 clip of span 5 x 2 futures
    bad = CliRunner().invoke(app, ["tokenizer", "train", "--kind", "compressive", "--data", str(data),
                                   "--init", str(base), "--init-context", str(base)])
    assert bad.exit_code != 0 and "exclusive" in (bad.output + str(bad.exception))
    bad = CliRunner().invoke(app, ["tokenizer", "train", "--data", str(data), "--init", str(base)])
    assert bad.exit_code != 0 and "--kind compressive" in bad.output


def test_bad_flags_are_named(data, tmp_path):
    res = CliRunner().invoke(app, ["tokenizer", "train", "--kind", "frame", "--data", str(data),
                                   "--out", str(tmp_path / "x"), "--set", "model.nope=1"])
    assert res.exit_code != 0 and "model.nope" in (res.output + str(res.exception))
    res = CliRunner().invoke(app, ["tokenizer", "train", "--kind", "video", "--data", str(data)])
    assert res.exit_code != 0 and "kind" in (res.output + str(res.exception))


@pytest.mark.parametrize("name", ["tokenizer_frame_tiny", "tokenizer_compressive_tiny",
                                  "tokenizer_frame_rt1", "tokenizer_compressive_skip6_motion"])
def test_recipes_load_and_resolve(name):
    from pathlib import Path

    from worldmodels.commands.tokenizer import TokenizerRunConfig, _resolve
    from worldmodels.config import load_config

    path = Path(__file__).resolve().parents[2] / "data" / "recipes" / f"{name}.yaml"
    cfg = load_config(TokenizerRunConfig, path, ["train.steps=7"])
    assert cfg.train.steps == 7 and cfg.kind in name
    model = _resolve(cfg.kind, cfg.preset, cfg.model)
    assert model.image_size in (64, 256)


def test_frame_resume_keeps_the_runs_own_settings(data, tmp_path):
    """--resume continues with <out>/config.yaml: a differing model field or --lr is an error
    naming both values (nothing written), --out X --resume alone works (its data is the
    recorded folder, not the default data/robot), and more --steps are applied and recorded."""
    out = tmp_path / "tok"
    run(["tokenizer", "train", "--kind", "frame", "--data", str(data), "--out", str(out),
         "--steps", "1", "--batch-size", "4", *SMALL_FRAME, *QUIET])
    recorded = (out / "config.yaml").read_text()
    bad = CliRunner().invoke(app, ["tokenizer", "train", "--out", str(out), "--resume", "--steps", "2",
                                   "--lr", "0.01", "--set", "model.block_out_channels=[8,8]",
                                   "--set", "perceptual=none"])
    assert bad.exit_code == 2, bad.output
    assert "model.block_out_channels: recorded [8, 16], requested [8, 8]" in bad.output
    assert "train.lr: recorded 0.001, requested 0.01" in bad.output
    assert "perceptual" not in bad.output.split("May change")[0]  # same as recorded: no conflict
    assert (out / "config.yaml").read_text() == recorded

    def steps():
        return [json.loads(ln)["step"] for ln in (out / "log.jsonl").read_text().splitlines()]

    run(["tokenizer", "train", "--out", str(out), "--resume"])  # at train.steps already
    assert (out / "config.yaml").read_text() == recorded and steps() == [1]
    run(["tokenizer", "train", "--out", str(out), "--resume", "--steps", "2"])
    assert steps() == [1, 2]
    before, after = yaml.safe_load(recorded), yaml.safe_load((out / "config.yaml").read_text())
    assert (before["train"]["steps"], after["train"]["steps"]) == (1, 2)
    after["train"]["steps"] = 1
    assert after == before
    text = " ".join(CliRunner().invoke(app, ["tokenizer", "train", "--help"],
                                       terminal_width=200).output.replace("│", " ").split())
    for name in ("--steps", "--max-minutes", "train.log_every", "train.save_every"):
        assert name in text.split("--resume", 1)[1]


def test_a_fresh_run_into_a_finished_run_is_refused_before_writing(data, tmp_path):
    """Without --resume an --out holding a checkpoint is an error (exit 2, one line naming
    --resume); the recorded config, weights and checkpoint are left as they were."""
    out = tmp_path / "tok"
    run(["tokenizer", "train", "--kind", "frame", "--data", str(data), "--out", str(out),
         "--steps", "1", "--batch-size", "4", *SMALL_FRAME, *QUIET])
    before = {p.name: p.read_bytes() for p in (out / "config.yaml", out / "model.safetensors")}
    res = CliRunner().invoke(app, ["tokenizer", "train", "--kind", "frame", "--data", str(data),
                                   "--out", str(out), "--steps", "3", "--batch-size", "4",
                                   "--lr", "0.01", *SMALL_FRAME, *QUIET])
    assert res.exit_code == 2, res.output
    (err,) = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert "already holds a tokenizer run" in err and "--resume" in err
    assert {p.name: p.read_bytes() for p in (out / "config.yaml", out / "model.safetensors")} == before
