"""`wm data build robot` and `wm data info` through typer's CliRunner."""

import json
import os
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from worldmodels.cli import app

runner = CliRunner()
RECIPE = Path(__file__).resolve().parents[2] / "data" / "recipes" / "robot_tiny.yaml"


def build(out, *extra):
    args = ["data", "build", "robot", "--out", str(out), "--episodes", "4", "--episode-len", "8",
            "--image-size", "32", "--quiet", *extra]
    return runner.invoke(app, args)


def mtimes(folder):
    return {p.name: os.stat(p).st_mtime_ns for p in sorted(Path(folder).glob("ep_*.npz"))}


def test_build_in_parallel_then_resume_without_rewriting(tmp_path):
    out = tmp_path / "robot"
    res = build(out, "--workers", "2")
    assert res.exit_code == 0, res.output
    assert "4 episodes (4 built, 0 already there)" in res.output
    first = mtimes(out)
    assert list(first) == [f"ep_{i:06d}.npz" for i in range(4)]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["episodes"] == 4 and meta["image_size"] == 32 and meta["episode_len"] == 8
    assert meta["action_names"] == ["vx", "vy"] and meta["test_every"] == 10

    res = build(out, "--workers", "1")
    assert res.exit_code == 0, res.output
    assert "(0 built, 4 already there)" in res.output
    assert mtimes(out) == first

    # an interrupted build: one file truncated, one missing -> only those two are rebuilt
    (out / "ep_000002.npz").write_bytes((out / "ep_000002.npz").read_bytes()[:64])
    saved = np.load(out / "ep_000003.npz")["image"]
    (out / "ep_000003.npz").unlink()
    res = build(out, "--workers", "1")
    assert res.exit_code == 0, res.output
    assert "(2 built, 2 already there)" in res.output
    now = mtimes(out)
    assert now["ep_000000.npz"] == first["ep_000000.npz"]
    assert now["ep_000001.npz"] == first["ep_000001.npz"]
    assert np.array_equal(np.load(out / "ep_000003.npz")["image"], saved)  # parallel == serial


def test_config_recipe_and_set_overrides(tmp_path):
    out = tmp_path / "r"
    res = runner.invoke(app, ["data", "build", "robot", "--config", str(RECIPE), "--out", str(out),
                              "--set", "episodes=2", "--set", "episode_len=4",
                              "--set", "image_size=16", "--set", "tasks=[drawer]",
                              "--workers", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["tasks"] == ["drawer"] and meta["episodes"] == 2 and meta["image_size"] == 16
    saved = (out / "config.yaml").read_text()
    assert "episode_len: 4" in saved and "random_fraction: 0.2" in saved


def test_bad_flags_fail_clearly(tmp_path):
    res = build(tmp_path / "x", "--tasks", "push,juggle")
    assert res.exit_code == 2 and "unknown robot task 'juggle'; valid tasks:" in res.output
    res = build(tmp_path / "x", "--set", "lr=1")
    assert res.exit_code == 2 and "unknown config field" in res.output
    res = build(tmp_path / "x", "--noise", "0,abc")
    assert res.exit_code == 2 and "0,abc" in res.output
    res = build(tmp_path / "x", "--config", str(tmp_path / "missing.yaml"))
    assert res.exit_code == 2 and "missing.yaml does not exist" in res.output
    assert not list((tmp_path).glob("x/*.npz"))


def test_info_on_built_folder(tmp_path):
    out = tmp_path / "robot"
    assert build(out, "--workers", "1", "--episodes", "3").exit_code == 0
    res = runner.invoke(app, ["data", "info", str(out)])
    assert res.exit_code == 0, res.output
    assert "episodes:   3 (train 2, test 1; test_every=10)" in res.output
    assert "frames:     24" in res.output and "image size: 32x32" in res.output
    for task in ("push", "drawer_open", "drawer_close"):
        assert f"success[{task}]" in res.output


def test_info_on_foreign_layouts(shared_data):
    mw = shared_data / "robot" / "metaworld"
    res = runner.invoke(app, ["data", "info", str(mw), "--layout", "metaworld"])
    assert res.exit_code == 0, res.output
    assert "episodes:   10" in res.output and "frames:     1010" in res.output
    assert "image size: 64x64" in res.output and "action dim: [4]" in res.output
    explicit = runner.invoke(app, ["data", "info", str(mw), "--image-key", "observation",
                                   "--channels-first", "--frame-stack", "3"])
    assert explicit.exit_code == 0 and "frames:     1010" in explicit.output
    plain = runner.invoke(app, ["data", "info", str(mw)])
    assert plain.exit_code == 2 and "missing key 'image'" in plain.output
    bair = runner.invoke(app, ["data", "info", str(shared_data / "robot" / "bair_sample.npz"),
                               "--layout", "bair"])
    assert bair.exit_code == 0 and "frames:     30" in bair.output


def test_info_errors(tmp_path):
    res = runner.invoke(app, ["data", "info", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "no such data folder" in res.output
    res = runner.invoke(app, ["data", "info", str(tmp_path), "--layout", "rt2"])
    assert res.exit_code == 2 and "known layouts: rlvr, bair, metaworld" in res.output


def write_folder(root, sizes=(64, 64, 64, 32, 64), dims=None, channels=None, T=10):
    """Episode i: (T, sizes[i], sizes[i], channels[i]) uint8 frames, (T, dims[i]) actions."""
    root.mkdir(parents=True, exist_ok=True)
    dims = dims or [2] * len(sizes)
    channels = channels or [3] * len(sizes)
    for i, (s, a, c) in enumerate(zip(sizes, dims, channels, strict=True)):
        np.savez(root / f"ep_{i:06d}.npz", image=np.full((T, s, s, c), i, np.uint8),
                 action=np.zeros((T, a), np.float32))
    return root


def test_info_reports_a_file_with_another_frame_size(tmp_path):
    d = write_folder(tmp_path / "d")  # four (10,64,64,3) episodes, ep_000003 (10,32,32,3)
    res = runner.invoke(app, ["data", "info", str(d)])
    assert res.exit_code == 2, res.output
    assert "episodes:   5" in res.output and "image size: 32x32, 64x64" in res.output  # summary
    assert "error: 1 problem(s) in 5 episode files" in res.output
    assert (f"{d / 'ep_000003.npz'}: frames (H,W,C) = (32, 32, 3), expected (64, 64, 3) "
            f"(the frame size of 4 of 5 files)") in res.output
    assert "ep_000000.npz" not in res.output


def test_info_reports_action_dim_channel_and_meta_size_mismatches(tmp_path):
    d = write_folder(tmp_path / "a", sizes=(8,) * 5, dims=(2, 2, 2, 2, 7))
    res = runner.invoke(app, ["data", "info", str(d)])
    assert res.exit_code == 2 and "action dim: [2, 7]" in res.output
    assert f"{d / 'ep_000004.npz'}: actions (T,A) = (10, 7), expected (10, 2)" in res.output
    d = write_folder(tmp_path / "c", sizes=(8,) * 5, channels=(3, 4, 3, 3, 3))
    res = runner.invoke(app, ["data", "info", str(d)])
    assert res.exit_code == 2 and "episodes:   5 (train 4, test 1; test_every=100); only 4 load" in res.output
    assert f"{d / 'ep_000001.npz'}: 'image' of shape (10, 8, 8, 4) has 4 channels; expected 3" in res.output
    # meta.json's image_size is the expected size: here every file differs from it
    d = write_folder(tmp_path / "m", sizes=(8, 8))
    (d / "meta.json").write_text(json.dumps({"image_size": 16, "test_every": 10}))
    res = runner.invoke(app, ["data", "info", str(d)])
    assert res.exit_code == 2 and "2 problem(s) in 2 episode files" in res.output
    assert f"expected (16, 16, 3) (image_size in {d / 'meta.json'})" in res.output
    # values the headers cannot show (NaN actions) are listed too
    d = write_folder(tmp_path / "n", sizes=(8, 8))
    np.savez(d / "ep_000001.npz", image=np.zeros((10, 8, 8, 3), np.uint8),
             action=np.full((10, 2), np.nan, np.float32))
    res = runner.invoke(app, ["data", "info", str(d)])
    assert res.exit_code == 2 and "ep_000001.npz: 'action' contains NaN or inf" in res.output
