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
