"""Foreign robot video through every command with flags only (issue 19): the shared Meta-World
demos and the BAIR sample go through tokenizer fine-tuning (``--init``), world-model fine-tuning
from a "robot-pretrained" model (here a tiny one trained in-test on synthetic 2-dim-action
episodes), evaluation and RLVR steps. Later commands default to the data section an earlier
one recorded; user errors are one line naming the file and the flag, exit status 2.

    .venv/bin/python -m pytest -q tests/commands/test_foreign_data_cli.py
"""

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from wm_fakes import make_episodes  # noqa: E402

from worldmodels.cli import app  # noqa: E402

MW_TEST = "door-lock/20240515T053940_0_100,coffee-push/20240514T162803_0_100"
TOK_SMALL = ["--set", "model.block_out_channels=[8,8,8,8]", "--set", "model.norm_num_groups=4"]
TOK_QUIET = ["--set", "perceptual=none", "--set", "train.progress=false", "--set", "train.image_every=0"]
WM_QUIET = ["--set", "train.batch_size=2", "--set", "train.eval_batches=1",
            "--set", "train.tensorboard=false", "--set", "train.log_every=1"]
RL_TINY = ["--reward", "mae", "--preset", "tiny", "--steps", "1", "--set", "grpo.prompts_per_step=1",
           "--set", "grpo.mini_batch_prompts=1", "--set", "grpo.num_generations=2",
           "--set", "eval.items=2", "--set", "grpo.device=cpu", "--set", "grpo.save_steps=1",
           "--set", "grpo.sample_table_steps=0"]


def run(*args, code=0):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == code, res.output + repr(res.exception)
    return res.output


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("WM_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "token_cache"))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A robot-pretrained tokenizer (64x64 -> 8x8 tokens) and world model (2-dim actions)."""
    import os

    root = tmp_path_factory.mktemp("robot")
    os.environ["WM_CACHE_DIR"] = str(root / "cache")
    data = make_episodes(root / "data", n=6, T=8, size=64, test_every=3)
    tok, wm = root / "tok", root / "wm"
    run("tokenizer", "train", "--data", data, "--out", tok, "--steps", 2, "--batch-size", 4,
        *TOK_SMALL, *TOK_QUIET)
    run("pretrain", "video", "--data", data, "--tokenizer", tok, "--out", wm, "--preset", "test",
        "--steps", 2, "--set", "task.layout.future_frames=2", "--set", "model.max_positions=512",
        *WM_QUIET)
    return tok, wm


def test_metaworld_flags_only(pretrained, shared_data, tmp_path):
    tok, wm = pretrained
    mw = shared_data / "robot" / "metaworld"
    # a foreign layout without --layout: one line naming the file and the flag, not a traceback
    out = run("tokenizer", "eval", "--tokenizer", tok, "--data", mw, "--lpips", "none", code=2)
    assert "missing key 'image'" in out and "pass --layout metaworld" in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1
    out = run("pretrain", "video", "--data", mw, "--tokenizer", tok, "--out", tmp_path / "x",
              "--steps", 1, code=2)
    (err,) = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert "pass --layout metaworld" in err and "Traceback" not in out

    tok_mw = tmp_path / "tok_mw"
    out = run("tokenizer", "train", "--init", tok, "--data", mw, "--layout", "metaworld",
              "--held-out", MW_TEST, "--out", tok_mw, "--steps", 1, "--batch-size", 4, *TOK_QUIET)
    assert f"fine-tuning {tok}" in out and "808 training items" in out  # 8 train demos x 101
    rec = yaml.safe_load((tok_mw / "config.yaml").read_text())["episodes"]
    assert rec["image_key"] == "observation" and rec["frame_stack"] == 3 and rec["size"] == 64
    run("tokenizer", "eval", "--tokenizer", tok_mw, "--lpips", "none", "--max-items", 8)
    assert json.loads((tok_mw / "eval_test.json").read_text())["data"] == str(mw)

    wm_mw = tmp_path / "wm_mw"  # key map and split from tok_mw's record; 4-dim actions refitted
    out = run("pretrain", "video", "--init", wm, "--tokenizer", tok_mw, "--data", mw,
              "--set", "task.init_new_tokenizer=true", "--out", wm_mw, "--steps", 1, *WM_QUIET)
    assert "items: 792 train" in out  # 8 demos x 99 windows of 3 frames
    meta = json.loads((wm_mw / "worldmodel.json").read_text())
    assert meta["episodes"]["layout"] == "metaworld" and meta["episodes"]["held_out"] == MW_TEST.split(",")
    assert len(meta["layout"]["actions"]["low"]) == 4 and meta["data_root"] == str(mw)
    assert yaml.safe_load((wm_mw / "config.yaml").read_text())["task"]["episodes"]["frame_stack"] == 3

    run("eval", "video", "--model", wm_mw, "--clips", 2, "--samples", 1, "--lpips", "none",
        "--gifs", 0, "--batch-size", 2)
    ev = json.loads((wm_mw / "eval" / "eval.json").read_text())
    assert ev["data"] == str(mw) and ev["episodes"]["held_out"] == MW_TEST.split(",")
    assert not (mw / ".token_cache").exists()  # the cache is not written into the data folder

    rl = tmp_path / "rl_mw"
    run("rlvr", "video", "--init", wm_mw, "--out", rl, *RL_TINY)
    assert json.loads((rl / "worldmodel.json").read_text())["episodes"]["layout"] == "metaworld"


def test_bair_sample_flags_only(pretrained, shared_data, tmp_path):
    tok, wm = pretrained
    bair = shared_data / "robot" / "bair_sample.npz"  # one 30-step episode: a temporal split
    tok_b, wm_b = tmp_path / "tok_b", tmp_path / "wm_b"
    out = run("tokenizer", "train", "--init", tok, "--data", bair, "--layout", "bair",
              "--test-tail", 10, "--out", tok_b, "--steps", 1, "--batch-size", 4, *TOK_QUIET)
    assert "20 training items" in out  # the first 20 steps train, the last 10 are held out
    out = run("pretrain", "video", "--init", wm, "--tokenizer", tok_b, "--data", bair,
              "--set", "task.init_new_tokenizer=true", "--out", wm_b, "--steps", 1, *WM_QUIET)
    assert "items: 18 train, 8 held-out" in out
    res = CliRunner().invoke(app, ["eval", "video", "--model", str(wm_b), "--clips", "4",
                                   "--samples", "1", "--lpips", "none", "--gifs", "0"])
    assert res.exit_code == 0, res.output
    assert "warning: only 3 held-out clips" in res.output  # 10 steps / windows of 3
    run("rlvr", "video", "--init", wm_b, "--out", tmp_path / "rl_b", *RL_TINY)


def test_wrong_size_names_the_flag(pretrained, tmp_path):
    tok, wm = pretrained
    data = make_episodes(tmp_path / "d", n=3, T=6, size=64)
    out = run("eval", "video", "--model", wm, "--data", data, "--size", 32, "--lpips", "none",
              code=2)
    (err,) = [ln for ln in out.splitlines() if ln.startswith("error:")]  # one line
    assert "frames are brought to 32x32 (--size 32)" in err and "pass --size 64" in err
