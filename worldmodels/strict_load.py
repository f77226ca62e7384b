"""Strict weight loading: a load either fills every parameter of the model or raises.

``torch.nn.Module.load_state_dict(strict=False)`` and transformers' ``from_pretrained`` leave
missing weights at their random initialisation with at most a log line. Every load in this
package goes through :func:`load_state_dict_strict` (or :func:`check_loading_info` for
``from_pretrained``), which raises :class:`WeightsMismatch` naming the file or directory and
listing the missing, unexpected and wrongly shaped keys (the first few of each, with counts)::

    load_state_dict_strict(model, load_file(path), source=path)

One absence is allowed: the output embedding (``lm_head.weight``) of a model that really ties
it to its input embedding (``config.tie_word_embeddings`` and both modules hold one tensor),
since ``save_pretrained`` does not write the tied copy. A checkpoint whose ``lm_head.weight``
differs from its input embedding cannot go into such a tied model: that is an error too.

Imports only torch (a leaf: engines, backbones and planners may all use it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

SHOW = 5  # keys listed per kind of mismatch


class WeightsMismatch(RuntimeError):
    """Saved weights do not match the model they are loaded into (message names the keys)."""


def _listing(keys: Iterable[str], what: str) -> str | None:
    keys = sorted(keys)
    if not keys:
        return None
    more = f" (+{len(keys) - SHOW} more)" if len(keys) > SHOW else ""
    return f"{len(keys)} {what}: {keys[:SHOW]}{more}"


def mismatch_message(source, target: str, missing=(), unexpected=(), mismatched=()) -> str | None:
    """One message for ``source`` (file/dir) vs ``target`` (model name), or None when all match.

    ``mismatched`` holds ``(key, saved_shape, model_shape)`` triples.
    """
    shapes = [f"{k} saved {tuple(a)} vs model {tuple(b)}" for k, a, b in sorted(mismatched)]
    parts = [p for p in (_listing(missing, "missing key(s)"), _listing(unexpected, "unexpected key(s)"),
                         _listing(shapes, "shape mismatch(es)")) if p]
    if not parts:
        return None
    return f"{source}: saved weights do not match {target}; " + "; ".join(parts)


def tied_output_key(model: torch.nn.Module) -> str | None:
    """State-dict key of the output embedding when ``model`` really ties it to the input one.

    True tying means ``model.config.tie_word_embeddings`` is set **and** the output and input
    embedding modules share one weight tensor (same storage). Otherwise None.
    """
    cfg = getattr(model, "config", None)
    if not getattr(cfg, "tie_word_embeddings", False):
        return None
    try:
        out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    if out is None or inp is None or out.weight.data_ptr() != inp.weight.data_ptr():
        return None
    for name, mod in model.named_modules():
        if mod is out:
            return f"{name}.weight" if name else "weight"
    return None


def _input_key(model: torch.nn.Module) -> str | None:
    inp = model.get_input_embeddings()
    return next((f"{n}.weight" for n, m in model.named_modules() if m is inp), None)


def load_state_dict_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor],
                           source: str | Path, target: str | None = None) -> None:
    """Load ``state`` into ``model``; raise :class:`WeightsMismatch` unless keys and shapes match.

    ``source`` (the file or directory read) and ``target`` (default: the model's class name)
    appear in the message. The tied output embedding may be absent from ``state``
    (see :func:`tied_output_key`); if present it must equal the input embedding.
    """
    target = target or type(model).__name__
    expected = model.state_dict()
    tied = tied_output_key(model)
    missing = [k for k in expected if k not in state and k != tied]
    unexpected = [k for k in state if k not in expected]
    mismatched = [(k, state[k].shape, expected[k].shape) for k in state
                  if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    msg = mismatch_message(source, target, missing, unexpected, mismatched)
    if msg:
        raise WeightsMismatch(msg)
    if tied is not None and tied in state:
        inp = _input_key(model)
        if inp in state and not torch.equal(state[tied].to(state[inp].dtype), state[inp]):
            raise WeightsMismatch(
                f"{source}: holds an untied {tied} that differs from {inp}, but {target} ties them "
                f"(config.tie_word_embeddings=True); build the model with tie_word_embeddings=False")
    result = model.load_state_dict(state, strict=False)
    left = [k for k in result.missing_keys if k != tied]
    msg = mismatch_message(source, target, left, result.unexpected_keys)
    if msg:  # cannot happen after the checks above; kept so no future path loads silently
        raise WeightsMismatch(msg)
    if tied is not None and tied_output_key(model) != tied:
        raise WeightsMismatch(f"{source}: {tied} is absent and {target} no longer ties it after loading")


def check_loading_info(info: Mapping, source: str | Path, target: str) -> None:
    """Raise :class:`WeightsMismatch` for a transformers ``output_loading_info`` dict that
    reports missing, unexpected or mismatched keys (or error messages)."""
    msg = mismatch_message(source, target, info.get("missing_keys", ()), info.get("unexpected_keys", ()),
                           info.get("mismatched_keys", ()))
    errors = list(info.get("error_msgs", ()))
    if errors:
        msg = (msg or f"{source}: loading into {target} failed") + f"; errors: {errors[:SHOW]}"
    if msg:
        raise WeightsMismatch(msg)
