"""`wm plan` / `wm real2sim` command lines: bad input exits 2 with a message naming the fix."""

from typer.testing import CliRunner

from worldmodels.cli import app

runner = CliRunner()


def test_plan_robot_bad_inputs(tmp_path):
    r = runner.invoke(app, ["plan", "robot", "--model", str(tmp_path / "nope"), "--episodes", "1",
                            "--image-size", "32", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "not 'random', 'oracle' or an existing directory" in r.output
    r = runner.invoke(app, ["plan", "robot", "--planner", "rrt", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "cem or mppi" in r.output
    r = runner.invoke(app, ["plan", "robot", "--set", "knobs.num_elites=999", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "num_elites" in r.output


def test_real2sim_bad_inputs(tmp_path):
    r = runner.invoke(app, ["real2sim", "run", "--model", "oracle-loop", "--readout", str(tmp_path / "ro"),
                            "--report", str(tmp_path / "rep")])
    assert r.exit_code == 2 and "wm plan readout" in r.output
    r = runner.invoke(app, ["real2sim", "run", "--model", "oracle-loop", "--tasks", "stack",
                            "--report", str(tmp_path / "rep")])
    assert r.exit_code == 2 and "'push' or 'drawer'" in r.output


def test_plan_robot_resume_keeps_each_runs_own_settings(tmp_path):
    """--resume continues the runs under --out with their recorded config.yaml: a differing
    value is an error naming the field and both values; --out X --resume alone continues (the
    recorded drawer task, not the default push); more --episodes run only the missing ones."""
    import json

    import pytest
    import yaml

    pytest.importorskip("mujoco")
    out = tmp_path / "plan"
    first = ["plan", "robot", "--task", "drawer", "--model", "random", "--episodes", "2", "--max-steps", "2",
             "--image-size", "16", "--videos", "0", "--out", str(out)]
    r = runner.invoke(app, first)
    assert r.exit_code == 0, r.output
    run = out / "drawer_cem_random"
    recorded, summary = (run / "config.yaml").read_text(), json.loads((run / "summary.json").read_text())

    # (a) conflicting values: named with both; nothing run or rewritten
    r = runner.invoke(app, ["plan", "robot", "--out", str(out), "--resume", "--max-steps", "5",
                            "--set", "knobs.horizon=3", "--episodes", "3", "--image-size", "16"])
    assert r.exit_code == 2, r.output
    assert "max_steps: recorded 2, requested 5" in r.output
    assert "knobs.horizon: recorded 5, requested 3" in r.output
    assert "image_size" not in r.output.split("May change")[0]  # equal to the recorded value
    assert (run / "config.yaml").read_text() == recorded
    assert json.loads((run / "summary.json").read_text())["per_episode"] == summary["per_episode"]
    r = runner.invoke(app, ["plan", "robot", "--out", str(out), "--resume", "--model", "oracle"])
    assert r.exit_code == 2 and "model(s) ['oracle']" in r.output and "drawer_cem_random" in r.output

    # (b) --out X --resume alone: every episode is there already, none is re-run
    r = runner.invoke(app, ["plan", "robot", "--out", str(out), "--resume"])
    assert r.exit_code == 0, r.output
    again = json.loads((run / "summary.json").read_text())
    assert again["episodes_resumed"] == 2 and again["per_episode"] == summary["per_episode"]
    assert again["task"] == "drawer" and (run / "config.yaml").read_text() == recorded

    # an interrupted run (one episode logged, no summary) resumes from its episodes.jsonl
    lines = (run / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(x)["index"] for x in lines] == [0, 1]
    (run / "episodes.jsonl").write_text(lines[0] + "\n")
    (run / "summary.json").unlink()
    # (c) an allowed change: one more episode; the finished one is kept, seeds 0..2
    r = runner.invoke(app, ["plan", "robot", "--out", str(out), "--resume", "--episodes", "3",
                            "--task", "drawer"])
    assert r.exit_code == 0, r.output
    now = json.loads((run / "summary.json").read_text())
    assert now["episodes_resumed"] == 1 and [e["seed"] for e in now["per_episode"]] == [0, 1, 2]
    assert now["per_episode"][0] == summary["per_episode"][0]
    before, after = yaml.safe_load(recorded), yaml.safe_load((run / "config.yaml").read_text())
    assert (before["episodes"], after["episodes"]) == (2, 3)
    after["episodes"] = 2
    assert after == before
    assert (out / "compare_drawer_cem.json").is_file()
    help_text = " ".join(runner.invoke(app, ["plan", "robot", "--help"]).output.replace("│", " ").split())
    assert "except: --episodes, --videos" in help_text
