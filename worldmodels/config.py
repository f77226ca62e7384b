"""Dataclass configs: YAML files, dotted overrides, and the resolved config written per run.

Every run config is a (possibly nested) dataclass whose fields carry a docstring-style
comment in the class docstring and are validated in ``__post_init__``. This module only moves
values in and out of them::

    cfg = load_config(PretrainConfig, "data/recipes/pretrain_tiny.yaml", ["train.lr=1e-4"])
    save_config(cfg, "runs/wm_tiny")          # -> runs/wm_tiny/config.yaml

Overrides are ``dotted.key=value``; the value is parsed as YAML (so ``1e-4``, ``true``,
``[7,5,5]`` and ``null`` mean what they look like) and type-checked against the field.

Resuming a run continues it with the settings recorded in its ``config.yaml``; only what the
user explicitly asked for (flags, ``--set`` items, ``--config`` file values -- never defaults)
is compared with them, and a difference is an error unless the field may change on resume::

    asked = requested_values(read_config_file("recipe.yaml"), parse_overrides(["grpo.max_steps=9"]))
    cfg = resume_config(RLVRVideoConfig, "runs/rl", asked, may_change={"grpo.max_steps"})
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from worldmodels.atomic import atomic_write

T = TypeVar("T")

CONFIG_FILENAME = "config.yaml"


class ConfigError(ValueError):
    """A config file or override names an unknown field or a value of the wrong type."""


def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a dataclass config (tuples become lists, paths strings)."""

    def convert(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: convert(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [convert(x) for x in v]
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return convert(cfg)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert one value against a field annotation; raise ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {value!r} matches none of {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, prefix=where + ".")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if tp is Path:
        return Path(value)
    return value


def legacy_key(cls: type, key: str) -> str:
    """``key`` (dotted) renamed by ``cls.LEGACY_KEYS`` ({old dotted prefix: new}), else itself."""
    for old, new in getattr(cls, "LEGACY_KEYS", {}).items():
        if key == old or key.startswith(old + "."):
            return new + key[len(old):]
    return key


def _apply_legacy(cls: type, data: dict) -> dict:
    """Move values at ``cls.LEGACY_KEYS`` old paths to their new paths (recipes and recorded
    configs written before a field moved keep loading); a new path already present is updated."""
    legacy = getattr(cls, "LEGACY_KEYS", None)
    if not legacy:
        return data
    data = copy.deepcopy(data)
    for old, new in legacy.items():
        value = _get(data, old)
        if value is _ABSENT:
            continue
        _delete(data, old)
        current = _get(data, new)
        if isinstance(value, dict) and isinstance(current, dict):
            _deep_update(current, value, new)
        else:
            _set(data, new, value)
    return data


def _delete(data: dict, key: str) -> None:
    node, parts = data, key.split(".")
    for p in parts[:-1]:
        node = node[p]
    del node[parts[-1]]


def from_dict(cls: type[T], data: dict, prefix: str = "") -> T:
    """Build ``cls`` from a nested dict; unknown keys are an error that lists the known ones.
    At the top level, keys a config class renamed (its ``LEGACY_KEYS``) are moved first."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or cls.__name__}: expected a mapping, got {data!r}")
    if not prefix:
        data = _apply_legacy(cls, data)
    hints = _field_types(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = set(data) - set(names)
    if unknown:
        raise ConfigError(
            f"unknown config field(s) {sorted(prefix + k for k in unknown)}; "
            f"known fields of {cls.__name__}: {names}"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Apply ``a.b.c=value`` strings onto a nested dict (values parsed as YAML)."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected dotted.key=value (e.g. train.lr=1e-4)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({e})") from e
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f"override {item!r}: {p!r} is not a config section")
            node = node[p]
        node[parts[-1]] = value
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None,
                base: T | None = None) -> T:
    """Defaults (or ``base``) <- YAML file <- dotted overrides, validated by ``cls``."""
    data = to_dict(base if base is not None else cls())
    if path is not None:
        _deep_update(data, read_config_file(path), str(path))
    data = _apply_legacy(cls, data)  # a recipe's old keys, then overrides by old or new names
    renamed = [f"{legacy_key(cls, o.split('=', 1)[0].strip())}={o.split('=', 1)[1]}" if "=" in o else o
               for o in overrides or []]
    apply_overrides(data, renamed)
    try:
        return from_dict(cls, data)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(str(e)) from e


def read_config_file(path: str | Path) -> dict:
    """The mapping in a YAML config file ({} when empty); ConfigError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path}: not valid YAML ({e})") from e
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    return loaded


def _deep_update(dst: dict, src: dict, where: str) -> None:
    if not isinstance(src, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_update(dst[k], v, f"{where}:{k}")
        else:
            dst[k] = v


def save_config(cfg: Any, run_dir: str | Path, filename: str = CONFIG_FILENAME) -> Path:
    """Write the resolved config as YAML next to the run's checkpoints (atomically)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / filename
    return atomic_write(target, lambda f: yaml.safe_dump(to_dict(cfg), f, sort_keys=False),
                        text=True)


# --- resuming a run with its recorded settings ------------------------------------------------

_ABSENT = object()


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["a.b=1", "c=[2,3]"]`` -> ``{"a.b": 1, "c": [2, 3]}`` (values parsed as YAML; a later
    item for the same key wins). Raises ConfigError naming a malformed item."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected dotted.key=value (e.g. train.lr=1e-4)")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({e})") from e
    return out


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"dotted.key": leaf}`` (lists and empty mappings are leaves)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def requested_values(*layers: dict | None) -> dict[str, Any]:
    """What the user explicitly asked for, as ``{"dotted.key": value}``: the layers (nested
    mappings, dataclass configs inside them included, or already-dotted ones: a preset section,
    a ``--config`` file, flags, ``--set`` items; None is skipped) in the order the command
    applies them, a later layer winning. Defaults are never a layer."""
    out: dict[str, Any] = {}
    for layer in layers:
        out.update(flatten(to_dict(layer or {})))
    return out


def _get(data: dict, key: str) -> Any:
    node: Any = data
    for p in key.split("."):
        if not isinstance(node, dict) or p not in node:
            return _ABSENT
        node = node[p]
    return node


def _set(data: dict, key: str, value: Any) -> None:
    node, parts = data, key.split(".")
    for i, p in enumerate(parts[:-1]):
        if not isinstance(node.get(p, {}), dict):
            raise ConfigError(f"{key}: {'.'.join(parts[:i + 1])!r} is not a config section")
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def read_recorded_config(cls: type[T], run_dir: str | Path, filename: str = CONFIG_FILENAME) -> T | None:
    """The config a run recorded in ``<run_dir>/<filename>`` (None when there is none);
    ConfigError naming the file when it no longer loads as ``cls``."""
    path = Path(run_dir) / filename
    if not path.is_file():
        return None
    try:
        return from_dict(cls, read_config_file(path))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: the run's recorded config does not load ({e})") from e


def resume_config(cls: type[T], run_dir: str | Path, requested: dict[str, Any],
                  may_change: set[str] | frozenset[str] | tuple[str, ...] = (), *,
                  run_field: str | None = "out", filename: str = CONFIG_FILENAME) -> T:
    """The run's recorded config with the explicitly ``requested`` changes that are allowed.

    run_dir: the run being continued; ``<run_dir>/<filename>`` holds its recorded config.
    requested: ``{"dotted.field": value}`` the user explicitly passed (`requested_values`);
        values are type-checked as the fields are, so ``1e-4`` and ``0.0001`` are the same.
    may_change: dotted fields that may differ from the recorded value (the step budget,
        logging frequency: what does not change what the run computes).
    run_field: the field that names the run directory itself; it is set to ``run_dir`` and
        never compared (a moved run continues where it is now). None: no such field.

    Returns ``cls`` built from the recorded values with the allowed requests applied.
    Raises ConfigError: no recorded config; the recorded config no longer loads; or requested
    values that differ from the recorded ones on fields not in ``may_change``, each named with
    both values: ``reward: recorded 'mae', requested 'psnr'``.
    """
    recorded_cfg = read_recorded_config(cls, run_dir, filename)
    path = Path(run_dir) / filename
    if recorded_cfg is None:
        raise ConfigError(f"cannot resume {run_dir}: it holds no recorded config ({path})")
    recorded = to_dict(recorded_cfg)
    asked = {legacy_key(cls, k): v for k, v in requested.items() if k != run_field}
    merged = copy.deepcopy(recorded)
    for key, value in asked.items():
        _set(merged, key, value)
    if run_field is not None:
        _set(merged, run_field, str(run_dir))
    try:  # the requests as the fields read them (types coerced, unknown fields named)
        cfg = from_dict(cls, merged)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"resume {run_dir}: {e}") from e
    normalised = to_dict(cfg)
    conflicts = [(k, _get(recorded, k), _get(normalised, k)) for k in asked
                 if _get(normalised, k) != _get(recorded, k) and k not in may_change]
    if conflicts:
        shown = "; ".join(f"{k}: recorded {_show(a)}, requested {_show(b)}" for k, a, b in conflicts)
        allowed = ", ".join(sorted(may_change)) or "nothing"
        raise ConfigError(
            f"cannot resume {run_dir} with other settings than its own ({path}): {shown}. "
            f"May change on resume: {allowed}. Drop the others to continue the run, or start a "
            f"new run elsewhere.")
    return cfg


def _show(value: Any) -> str:
    return "(not set)" if value is _ABSENT else repr(value)
