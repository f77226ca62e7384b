"""Save / load for tokenizers: ``config.json`` (with ``"kind"``) + ``model.safetensors``.

    tok.save_pretrained("runs/tok_frame")
    tok = load_tokenizer("runs/tok_frame")       # FrameTokenizer or CompressiveTokenizer

Files are written to temporary names and moved into place with ``os.replace``. Loading is
strict: weights that miss, add or reshape a key raise :class:`WeightsMismatch` naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def _atomic_write_bytes(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PretrainedMixin:
    """Adds ``save_pretrained`` / ``from_pretrained`` to an ``nn.Module`` with a dataclass ``config``.

    Subclasses set ``kind`` (str), ``config_class`` (the dataclass) and ``presets`` (name ->
    config), take the config as their only constructor argument, and own a ``quantizer`` whose
    ``codebook_size`` is the number of visual ids.
    """

    kind: str = ""
    config_class: type = object
    presets: dict = {}

    @classmethod
    def from_preset(cls, name: str, **overrides):
        """A fresh model from a named preset; ``overrides`` replace config fields."""
        if name not in cls.presets:
            raise ValueError(f"unknown {cls.kind}-tokenizer preset {name!r}; known: {sorted(cls.presets)}")
        return cls(dataclasses.replace(cls.presets[name], **overrides))

    @property
    def vocab_size(self) -> int:
        """Visual token ids lie in ``[0, vocab_size)``."""
        return self.quantizer.codebook_size

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def save_pretrained(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cfg = {"kind": self.kind, **_plain(dataclasses.asdict(self.config))}
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        _atomic_write_bytes(d / WEIGHTS_NAME, lambda p: save_file(state, p))

        def write_json(p: str) -> None:
            Path(p).write_text(json.dumps(cfg, indent=2) + "\n")

        _atomic_write_bytes(d / CONFIG_NAME, write_json)
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu"):
        """The model saved in ``directory``, in eval mode on ``device``. Raises FileNotFoundError
        (no config / weights), ValueError (wrong kind, unknown config field) or
        :class:`WeightsMismatch` (weights that do not fit the config, keys named)."""
        d = Path(directory)
        cfg = read_config(d)
        if cfg.pop("kind") != cls.kind:
            raise ValueError(f"{d / CONFIG_NAME}: kind is not {cls.kind!r}; use load_tokenizer()")
        known = {f.name for f in dataclasses.fields(cls.config_class)}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"{d / CONFIG_NAME}: unknown field(s) {sorted(unknown)} for {cls.__name__}")
        model = cls(cls.config_class(**cfg))
        wpath = d / WEIGHTS_NAME
        if not wpath.is_file():
            raise FileNotFoundError(f"{wpath}: missing weights file (expected next to {CONFIG_NAME})")
        load_weights_strict(model, load_file(str(wpath)), wpath)
        return model.to(device).eval()


class WeightsMismatch(RuntimeError):
    """Saved tokenizer weights do not match the model (the message names the file and keys)."""


def load_weights_strict(model: torch.nn.Module, state: dict, source: str | Path) -> None:
    """``model.load_state_dict(state)`` that first compares keys and shapes and raises
    :class:`WeightsMismatch` naming ``source`` and the missing / unexpected / reshaped keys
    (first 5 of each, with counts). Nothing is loaded when anything differs."""
    expected = model.state_dict()

    def listing(keys, what):
        keys = sorted(keys)
        more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
        return f"{len(keys)} {what}: {keys[:5]}{more}" if keys else None

    shapes = [f"{k} saved {tuple(v.shape)} vs model {tuple(expected[k].shape)}" for k, v in state.items()
              if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    parts = [p for p in (listing(set(expected) - set(state), "missing key(s)"),
                         listing(set(state) - set(expected), "unexpected key(s)"),
                         listing(shapes, "shape mismatch(es)")) if p]
    if parts:
        raise WeightsMismatch(f"{source}: saved weights do not match {type(model).__name__}; "
                              + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def read_config(directory: str | Path) -> dict:
    """The parsed ``config.json`` of a tokenizer directory, with a clear error if absent."""
    p = Path(directory) / CONFIG_NAME
    if not p.is_file():
        raise FileNotFoundError(f"{p}: not a tokenizer directory (no {CONFIG_NAME}); "
                                "train one with `wm tokenizer train`")
    cfg = json.loads(p.read_text())
    if "kind" not in cfg:
        raise ValueError(f"{p}: missing 'kind' (expected 'frame' or 'compressive')")
    return cfg


def _plain(d):
    if isinstance(d, dict):
        return {k: _plain(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_plain(v) for v in d]
    return d
