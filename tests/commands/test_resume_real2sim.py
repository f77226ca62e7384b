"""`wm real2sim run --resume` continues the run in --report with its recorded config.yaml (issue
17, kind 5): a differing value is an error naming the field and both values, ``--report X
--resume`` alone continues (measuring only unfinished rows), and --batch may change. Tiny: a
1-step readout on 16x16 frames, the perfect closed-loop simulator, 2 episodes of 2 steps."""

import json

import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("mujoco")

from worldmodels.cli import app  # noqa: E402

runner = CliRunner()
SIZE = 16


@pytest.fixture(scope="module")
def readout_dir(tmp_path_factory):
    from worldmodels.envs.robot_readout import collect_frames, train_readout

    f, s, _ = collect_frames(("drawer",), episodes=2, steps=2, image_size=SIZE, seed=0)
    d = tmp_path_factory.mktemp("ro") / "readout"
    train_readout(f, s, steps=1, width=4, seed=0).save(d)
    return d


def r2s(*args):
    return runner.invoke(app, ["real2sim", "run", *args])


def test_real2sim_resume_keeps_the_runs_own_settings(readout_dir, tmp_path):
    rep = tmp_path / "rep"
    r = r2s("--model", "oracle-loop", "--tasks", "drawer", "--readout", str(readout_dir), "--policies", "",
            "--episodes", "2", "--max-steps", "2", "--image-size", str(SIZE), "--batch", "2",
            "--seed", "7", "--report", str(rep))
    assert r.exit_code == 0, r.output
    recorded = (rep / "config.yaml").read_text()
    success = json.loads((rep / "results.json").read_text())["success"]
    rows = (rep / "rows.jsonl").read_text().splitlines()
    assert [json.loads(x)["policy"] for x in rows] == list(success["drawer"])  # one line per row

    # (a) conflicting values: named with both; nothing measured or rewritten
    r = r2s("--report", str(rep), "--resume", "--episodes", "3", "--seed", "7", "--set", "contact_gate=true")
    assert r.exit_code == 2, r.output
    assert "episodes: recorded 2, requested 3" in r.output
    assert "contact_gate: recorded False, requested True" in r.output
    assert "seed" not in r.output.split("May change")[0]  # equal to the recorded value
    assert (rep / "config.yaml").read_text() == recorded and (rep / "rows.jsonl").read_text().splitlines() == rows

    # (b) --report X --resume alone (no --model: it is recorded); an interrupted run: two rows
    # finished, the last line cut -- only the other rows are measured
    (rep / "rows.jsonl").write_text("\n".join(rows[:2]) + "\n" + rows[2][:20])
    (rep / "results.json").unlink()
    r = r2s("--report", str(rep), "--resume")
    assert r.exit_code == 0, r.output
    assert r.output.count("kept from the interrupted run") == 2
    assert json.loads((rep / "results.json").read_text())["success"] == success  # deterministic rows
    assert (rep / "config.yaml").read_text() == recorded

    # (c) an allowed change: --batch, recorded; everything kept
    r = r2s("--report", str(rep), "--resume", "--batch", "1")
    assert r.exit_code == 0, r.output
    assert r.output.count("kept from the interrupted run") == len(success["drawer"])
    before, after = yaml.safe_load(recorded), yaml.safe_load((rep / "config.yaml").read_text())
    assert (before["batch"], after["batch"]) == (2, 1)
    after["batch"] = 2
    assert after == before
    text = " ".join(runner.invoke(app, ["real2sim", "run", "--help"]).output.replace("│", " ").split())
    assert "except: --batch" in text


def test_resume_without_a_recorded_run_says_so(tmp_path):
    r = r2s("--report", str(tmp_path / "none"), "--resume")
    assert r.exit_code == 2 and "holds no recorded config" in r.output
    r = r2s("--report", str(tmp_path / "none"))  # a fresh run still needs a model
    assert r.exit_code == 2 and "--model" in r.output


def test_reuse_real_from_a_run_with_other_policies_is_refused(readout_dir, tmp_path):
    """--reuse-real takes an earlier run's real side only if it was measured with the same
    episodes and policies (the scripted experts read the state through --readout, BC policies
    come from --policies): a differing one is named with both values, before anything runs."""
    rep = tmp_path / "rep"
    common = ["--model", "oracle-loop", "--tasks", "drawer", "--readout", str(readout_dir), "--episodes", "1",
              "--max-steps", "1", "--image-size", str(SIZE)]
    assert r2s(*common, "--policies", "", "--report", str(rep)).exit_code == 0
    r = r2s(*common, "--policies", str(tmp_path / "pols"), "--reuse-real", str(rep / "results.json"),
            "--report", str(tmp_path / "rep2"))
    assert r.exit_code == 2, r.output
    assert f"has policies='', this run '{tmp_path / 'pols'}'" in r.output
    assert not (tmp_path / "rep2").exists()
    r = r2s(*common, "--policies", "", "--reuse-real", str(rep / "results.json"), "--report", str(tmp_path / "rep3"))
    assert r.exit_code == 0, r.output
