"""Small helpers shared by the command modules."""

from __future__ import annotations

import typer


def not_built(group: str, issue: str) -> typer.Typer:
    """A command group that exists in ``wm --help`` but is not implemented yet.

    Running it exits with status 2 and says so plainly, instead of pretending to work.
    """
    app = typer.Typer(
        help=f"(not built yet: {issue}) {group}",
        invoke_without_command=True,
        no_args_is_help=False,
    )

    @app.callback(invoke_without_command=True)
    def _missing() -> None:
        typer.echo(f"`wm {group}` is not built yet ({issue}).", err=True)
        raise typer.Exit(code=2)

    return app


def resume_help(may_change: tuple[str, ...], flags: dict[str, str] | None = None) -> str:
    """``--resume`` help text naming what may differ from the run's recorded settings.

    may_change: dotted config fields; flags: field -> the flag that sets it (shown instead)."""
    names = [(flags or {}).get(f, f"--set {f}") for f in may_change]
    return ("continue the run in --out with its recorded settings (config.yaml); other values "
            "given must equal them, except: " + ", ".join(names))


def resumed_config(cls, run_dir, *layers, may_change: tuple[str, ...], run_field: str | None = "out"):
    """The run's recorded config (``<run_dir>/config.yaml``) with the explicitly requested
    ``layers`` (see `worldmodels.config.requested_values`) checked against it; a conflict
    exits with status 2 and the helper's message (field, recorded and requested value)."""
    from worldmodels.config import ConfigError, requested_values, resume_config

    try:
        return resume_config(cls, run_dir, requested_values(*layers), set(may_change),
                             run_field=run_field)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the option ``name`` was given (command line or environment), not defaulted.
    (Compared by name: typer may ship its own copy of click's ParameterSource.)"""
    source = ctx.get_parameter_source(name)
    return getattr(source, "name", None) in ("COMMANDLINE", "ENVIRONMENT")
