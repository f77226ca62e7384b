"""`wm pretrain video --resume` continues with the run's recorded config.yaml (issue 17, kind 5):
a differing value is an error naming the field and both values, ``--out X --resume`` alone
works, and an allowed change (more steps) is applied and recorded. Tiny: a 16x16 stand-in
tokenizer (tests/tasks/wm_fakes.py) and the "test" backbone preset."""

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from wm_fakes import FakeFrameTokenizer, make_episodes  # noqa: E402

from worldmodels.cli import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def data_and_tokenizer(tmp_path_factory):
    root = tmp_path_factory.mktemp("pre")
    data = make_episodes(root / "data", n=6, T=8, test_every=3)
    FakeFrameTokenizer().save_pretrained(root / "tok")
    return data, root / "tok"


def pretrain(*args):
    return runner.invoke(app, ["pretrain", "video", *args])


def steps_logged(out: Path) -> list[int]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return sorted({r["step"] for r in rows if "loss" in r})


def test_pretrain_resume_keeps_the_runs_own_settings(data_and_tokenizer, tmp_path):
    data, tok = data_and_tokenizer
    out = tmp_path / "wm"
    r = pretrain("--data", str(data), "--tokenizer", str(tok), "--out", str(out), "--preset", "test",
                 "--steps", "1", "--set", "train.batch_size=2", "--set", "train.log_every=1",
                 "--set", "train.device=cpu", "--set", "train.tensorboard=false",
                 "--set", "data.layout.future_frames=3")
    assert r.exit_code == 0, r.output
    recorded = (out / "config.yaml").read_text()

    # (a) conflicting values: each named with the recorded and the requested value; nothing written
    r = pretrain("--out", str(out), "--resume", "--preset", "tiny", "--steps", "2",
                 "--set", "train.optim.lr=1e-3", "--set", "train.batch_size=2")
    assert r.exit_code == 2, r.output
    assert "model.preset: recorded 'test', requested 'tiny'" in r.output
    assert "train.optim.lr: recorded 0.0005, requested 0.001" in r.output
    assert "train.batch_size" not in r.output.split("May change")[0]  # equal to the recorded value
    assert (out / "config.yaml").read_text() == recorded

    # (b) --out X --resume alone: the recorded data, tokenizer and layout (the defaults would
    # point at data/robot and runs/tok_frame, which do not exist here); already at train.steps
    r = pretrain("--out", str(out), "--resume")
    assert r.exit_code == 0, r.output
    assert (out / "config.yaml").read_text() == recorded and steps_logged(out) == [1]

    # (c) an allowed change: two more steps, recorded; everything else unchanged
    r = pretrain("--out", str(out), "--resume", "--steps", "3")
    assert r.exit_code == 0, r.output
    assert steps_logged(out) == [1, 2, 3]
    before, after = yaml.safe_load(recorded), yaml.safe_load((out / "config.yaml").read_text())
    assert (before["train"]["steps"], after["train"]["steps"]) == (1, 3)
    after["train"]["steps"] = 1
    assert after == before


def test_pretrain_resume_help_lists_what_may_change():
    r = runner.invoke(app, ["pretrain", "video", "--help"], terminal_width=200)
    text = " ".join(r.output.replace("│", " ").split()).split("--resume", 1)[1]
    for name in ("--steps", "train.max_minutes", "train.log_every", "train.save_every"):
        assert name in text, text
