"""`wm data build robot` rerun into a built folder continues with its recorded config.yaml
(issue 17, kind 5): a differing seed/policy mix is an error naming the field and both values
(no episode written), ``--out DIR`` alone continues, and more episodes are built and recorded."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from worldmodels.cli import app

pytest.importorskip("mujoco")
runner = CliRunner()


def build(*args):
    return runner.invoke(app, ["data", "build", "robot", "--quiet", *args])


def test_rerun_keeps_the_folders_own_settings(tmp_path):
    out = tmp_path / "robot"
    r = build("--out", str(out), "--episodes", "2", "--episode-len", "3", "--image-size", "16",
              "--tasks", "push", "--workers", "1")
    assert r.exit_code == 0, r.output
    recorded = (out / "config.yaml").read_text()

    # (a) a different seed and policy mix: refused, naming both values; nothing built
    r = build("--out", str(out), "--episodes", "3", "--seed", "3", "--set", "random_fraction=0.5",
              "--tasks", "push")
    assert r.exit_code == 2, r.output
    assert "seed: recorded 0, requested 3" in r.output
    assert "random_fraction: recorded 0.2, requested 0.5" in r.output
    assert "tasks" not in r.output.split("May change")[0]  # equal to the recorded value
    assert not (out / "ep_000002.npz").exists() and (out / "config.yaml").read_text() == recorded

    # (b) --out alone: the recorded 3-frame 16x16 push episodes, not the defaults (50, 64x64)
    r = build("--out", str(out))
    assert r.exit_code == 0, r.output
    assert "2 episodes (0 built, 2 already there)" in r.output
    assert (out / "config.yaml").read_text() == recorded

    # (c) an allowed change: one more episode, built with the recorded settings and recorded
    r = build("--out", str(out), "--episodes", "3")
    assert r.exit_code == 0, r.output
    assert "3 episodes (1 built, 2 already there)" in r.output
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["episodes"], meta["episode_len"], meta["image_size"], meta["tasks"]) == (3, 3, 16, ["push"])
    before, after = yaml.safe_load(recorded), yaml.safe_load((out / "config.yaml").read_text())
    assert (before["episodes"], after["episodes"]) == (2, 3)
    after["episodes"] = 2
    assert after == before


def test_build_help_says_what_may_change():
    text = " ".join(runner.invoke(app, ["data", "build", "robot", "--help"]).output.replace("│", " ").split())
    assert "recorded" in text and "--episodes, --test-every and --workers" in text


def test_recipe_rerun_is_the_same_request(tmp_path):
    """The same --config recipe plus flags again is no conflict (only explicit values count)."""
    recipe = Path(__file__).resolve().parents[2] / "data" / "recipes" / "robot_tiny.yaml"
    out = tmp_path / "r"
    args = ["--config", str(recipe), "--out", str(out), "--set", "episodes=1", "--set", "episode_len=2",
            "--set", "image_size=16", "--workers", "1"]
    assert build(*args).exit_code == 0
    r = build(*args)
    assert r.exit_code == 0 and "(0 built, 1 already there)" in r.output, r.output
