"""The `wm` entry point: every command group is listed; unbuilt groups say so and exit non-zero."""

from __future__ import annotations

from typer.testing import CliRunner

from worldmodels.cli import GROUPS, app

runner = CliRunner()


def test_help_lists_every_group():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for group in ["data", "tokenizer", "pretrain", "rlvr", "eval", "plan", "real2sim",
                  "webagent", "bench"]:
        assert group in GROUPS
        assert group in result.output


def test_version():
    from worldmodels import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_webagent_group_lists_its_commands():
    result = runner.invoke(app, ["webagent", "--help"])
    assert result.exit_code == 0
    assert all(cmd in result.output for cmd in ("run", "show", "eval"))


def test_each_group_has_help():
    for group in GROUPS:
        result = runner.invoke(app, [group, "--help"])
        assert result.exit_code == 0, (group, result.output)
