"""The episode flags every command that reads episode files takes, mapped onto one dataclass
(``worldmodels.episode_config.EpisodeConfig``)::

    @app.command("video")
    @episode_options
    def video(..., episodes: dict | None = None):       # {field: value, or None when not given}
        flags.update(episode_overrides(episodes, "task.episodes."))   # dotted keys for build_config
        ep = episode_config(episodes)                                   # or the dataclass itself

Flags: ``--layout``, ``--image-key``, ``--action-key``, ``--channels-first/--channels-last``,
``--frame-stack``, ``--test-every``, ``--held-out`` (comma-separated, repeatable),
``--test-tail``, ``--size``, ``--crop``, ``--resize/--no-resize``.
"""

from __future__ import annotations

import functools
import inspect
import json

import typer

# field -> (type, typer option); defaults are None = "not given" (recorded or default value)
_OPTIONS = {
    "layout": (str, typer.Option(None, "--layout", help="episode key layout: rlvr | bair | metaworld "
                                 "(default: recorded by the input, else rlvr)")),
    "image_key": (str, typer.Option(None, "--image-key", help="array holding the frames")),
    "action_key": (str, typer.Option(None, "--action-key",
                                     help="array holding the actions; none: image-only data")),
    "channels_first": (bool, typer.Option(None, "--channels-first/--channels-last",
                                          help="frames stored (T,C,H,W)")),
    "frame_stack": (int, typer.Option(None, "--frame-stack",
                                      help="RGB frames stacked along channels (Meta-World: 3)")),
    "test_every": (int, typer.Option(None, "--test-every", help="split: sorted file i is held out "
                                     "iff i % N == 0 (default: meta.json's, else 100)")),
    "held_out": (list[str], typer.Option(None, "--held-out", help="split: files or sub-folders "
                                         "held out, comma-separated (e.g. door-lock)")),
    "test_tail": (int, typer.Option(None, "--test-tail",
                                    help="split: hold out the last N steps of every episode")),
    "size": (int, typer.Option(None, "--size", help="square side frames are centre-cropped and "
                               "resized to (default: the tokenizer's)")),
    "crop": (str, typer.Option(None, "--crop", help="center | none (resize the whole frame)")),
    "resize": (bool, typer.Option(None, "--resize/--no-resize",
                                  help="crop/resize frames of another size (default) or refuse them")),
}
FIELDS = tuple(_OPTIONS)


def episode_options(fn):
    """Add the episode flags to the typer command ``fn``; ``fn`` gets them as one keyword
    ``episodes``: ``{field: value or None}`` (``held_out`` split at commas)."""
    sig = inspect.signature(fn)
    kept = [p for p in sig.parameters.values() if p.name != "episodes"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=tp | None)
             for name, (tp, opt) in _OPTIONS.items()]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        values = {name: kwargs.pop(name, None) for name in FIELDS}
        if values["held_out"]:
            values["held_out"] = [h for item in values["held_out"] for h in item.split(",") if h.strip()]
        else:
            values["held_out"] = None
        return fn(*args, episodes=values, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=[*kept, *extra])
    wrapper.__annotations__ = {k: v for k, v in getattr(fn, "__annotations__", {}).items()
                               if k != "episodes"}
    return wrapper


def episode_overrides(values: dict | None, prefix: str) -> dict[str, str]:
    """``{prefix + field: JSON value}`` of the flags given (JSON parses as the YAML the config
    loader reads, so a list or a string like "on" keeps its type)."""
    return {f"{prefix}{k}": json.dumps(v) for k, v in (values or {}).items() if v is not None}


def episode_config(values: dict | None, base=None):
    """The :class:`EpisodeConfig` of the flags given; a bad value is a ``typer.BadParameter``."""
    from worldmodels.episode_config import EpisodeConfig

    given = {k: v for k, v in (values or {}).items() if v is not None}
    try:
        return EpisodeConfig(**given) if base is None else EpisodeConfig(**{**_asdict(base), **given})
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e


def _asdict(cfg) -> dict:
    import dataclasses

    return {k: v for k, v in dataclasses.asdict(cfg).items() if v is not None}
