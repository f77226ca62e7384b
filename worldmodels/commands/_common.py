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
