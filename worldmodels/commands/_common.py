"""Small helpers shared by the command modules."""

from __future__ import annotations

import typer


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


def build_config(cls, *, config=None, flags: dict | None = None, sets: list[str] | None = None,
                 resume: bool = False, may_change: tuple[str, ...] = (), base=None,
                 preset_layer: dict | None = None, run_field: str = "out"):
    """The run config of a command: defaults (or ``base``) <- ``--config`` file <- flags <-
    ``--set`` items; or, with ``--resume`` on a run that recorded its config, that recorded
    config with the explicitly given values checked against it (``resumed_config``).

    flags: ``{dotted.field: value}`` of the command's own flags (None = not given); a bad value
    is a ``typer.BadParameter`` naming the field, so the command exits 2 with usage help.
    """
    from pathlib import Path

    from worldmodels.config import (
        CONFIG_FILENAME,
        ConfigError,
        load_config,
        parse_overrides,
        read_config_file,
        requested_values,
    )

    given_flags = {k: v for k, v in (flags or {}).items() if v is not None}
    overrides = [f"{k}={v}" for k, v in given_flags.items()] + list(sets or [])
    try:
        layers = (preset_layer, read_config_file(config) if config else None, parse_overrides(overrides))
        run_dir = requested_values(*layers).get(run_field) or getattr(cls, run_field, None)
        if resume and run_dir and (Path(run_dir) / CONFIG_FILENAME).is_file():
            return resumed_config(cls, run_dir, *layers, may_change=may_change, run_field=run_field)
        return load_config(cls, config, overrides, base=base)
    except (ConfigError, ValueError) as e:
        raise typer.BadParameter(str(e)) from e


def config_epilog(cls, title: str = "Every --set key (default: what it does)") -> str:
    """Help text listing every dotted field of the config dataclass ``cls`` with its default and
    the first line of its docstring entry, for a command's ``--help``."""
    rows = [f"{key} = {default!r}: {doc}" if doc else f"{key} = {default!r}"
            for key, default, doc in config_fields(cls)]
    return title + ":\n\n\b\n" + "\n".join(rows)


def config_fields(cls, prefix: str = "", instance=None) -> list[tuple[str, object, str]]:
    """``[(dotted key, default, first docstring line)]`` of a (nested) dataclass config."""
    import dataclasses
    import re

    obj = instance if instance is not None else cls()
    docs = {}
    lines = [ln for k in cls.__mro__ for ln in (k.__doc__ or "").splitlines()]  # own doc first
    for f in dataclasses.fields(cls):
        for i, line in enumerate(lines):
            m = re.match(rf"^(\s*){re.escape(f.name)}:\s*(.*)$", line)
            if not m:
                continue
            indent, parts = len(m.group(1)), [m.group(2).strip()]
            for more in lines[i + 1:]:  # continuation lines are indented deeper
                if not more.strip() or len(more) - len(more.lstrip()) <= indent:
                    break
                parts.append(more.strip())
            docs[f.name] = _first_sentence(" ".join(parts))
            break
    out = []
    for f in dataclasses.fields(cls):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out += config_fields(type(value), f"{prefix}{f.name}.", value)
        else:
            out.append((f"{prefix}{f.name}", value, docs.get(f.name, "")))
    return out


def _first_sentence(text: str, limit: int = 110) -> str:
    """Up to the first ". " (kept short for a help listing)."""
    import re

    m = re.search(r"(?<!e\.g)(?<!i\.e)\. ", text)
    text = text if m is None else text[: m.start() + 1]
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
