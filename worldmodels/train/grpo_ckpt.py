"""Atomic GRPO checkpoints: policy weights (safetensors), optimizer state, counters.

Written to a temporary directory next to the target and renamed into place, so a crash never
leaves a half-written checkpoint; loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch


def save_checkpoint(path: str | Path, model: torch.nn.Module, optimizer, state: dict) -> Path:
    """Write ``path/{model.safetensors, optimizer.pt, state.json}`` atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    try:
        tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(_untie(tensors), str(tmp / "model.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        old = None
        if path.exists():
            old = path.parent / f".{path.name}-old"
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _untie(tensors: dict) -> dict:
    """safetensors refuses shared storage (tied embeddings): clone duplicates."""
    seen, out = set(), {}
    for k, v in tensors.items():
        key = (v.data_ptr(), v.numel())
        out[k] = v.clone() if key in seen else v
        seen.add(key)
    return out


def load_checkpoint(path: str | Path, model: torch.nn.Module, optimizer, map_location=None) -> dict:
    """Load weights + optimizer state from ``path``; returns the saved ``state`` dict."""
    from safetensors.torch import load_file

    path = Path(path)
    for f in ("model.safetensors", "optimizer.pt", "state.json"):
        if not (path / f).is_file():
            raise FileNotFoundError(f"checkpoint {path} is missing {f} (not a GRPO checkpoint?)")
    sd = load_file(str(path / "model.safetensors"), device=str(map_location or "cpu"))
    model.load_state_dict(sd, strict=True)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=map_location,
                                         weights_only=True))
    return json.loads((path / "state.json").read_text())
