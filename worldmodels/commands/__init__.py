"""One module per `wm` command group; each exposes a ``typer.Typer`` named ``app``."""
