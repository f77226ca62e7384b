"""Atomic training checkpoints, the loss log and reconstruction grids for tokenizer runs.

Layout of a run directory::

    config.json, model.safetensors     the tokenizer (load_tokenizer(run_dir))
    checkpoint/                        model + train_state.pt (optimiser, scheduler, disc, step, RNG)
    log.jsonl                          one JSON line per logged step
    samples/step_000200.png            rows of input | reconstruction

``checkpoint/`` is written to a temporary directory and swapped in with ``os.replace``.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tokenizers_video.pretrained import WeightsMismatch, load_weights_strict
from tokenizers_video.quantizers import VQ

CHECKPOINT_DIR = "checkpoint"
STATE_NAME = "train_state.pt"
_STATE_KEYS = ("step", "optimizer", "scheduler", "disc", "disc_optimizer", "rng", "vq_recent")


def _unwrap(m: nn.Module) -> nn.Module:
    return getattr(m, "module", m)


def _rng_state() -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(out: Path, model, opt, sched, disc, dopt, step: int) -> Path:
    """Write ``out/checkpoint`` atomically and export the tokenizer to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".checkpoint-"))
    try:
        model.save_pretrained(tmp)
        recent = {n: m._recent for n, m in model.named_modules() if isinstance(m, VQ)}
        state = {"step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                 "disc": _unwrap(disc).state_dict(), "disc_optimizer": dopt.state_dict(),
                 "rng": _rng_state(), "vq_recent": recent}
        torch.save(state, tmp / STATE_NAME)
        target, old = out / CHECKPOINT_DIR, out / f".{CHECKPOINT_DIR}-old"
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    model.save_pretrained(out)
    return out / CHECKPOINT_DIR


def load(out: Path, model, opt, sched, disc, dopt, device) -> int:
    """Restore everything ``save`` wrote; returns the step to continue from.

    Strict: tokenizer or discriminator weights that miss, add or reshape a key, a missing
    ``train_state.pt`` entry, or optimiser / scheduler state that does not fit raise
    :class:`~tokenizers_video.pretrained.WeightsMismatch` naming the file (and entry)."""
    d = out / CHECKPOINT_DIR
    if not (d / STATE_NAME).is_file():
        old = out / f".{CHECKPOINT_DIR}-old"  # a crash between the two renames
        if (old / STATE_NAME).is_file():
            d = old
        else:
            raise FileNotFoundError(f"--resume: no checkpoint at {d / STATE_NAME}; "
                                    "start without --resume")
    from safetensors.torch import load_file

    wpath = d / "model.safetensors"
    if not wpath.is_file():
        raise FileNotFoundError(f"--resume: {wpath} is missing (the checkpoint is incomplete)")
    load_weights_strict(_unwrap(model), load_file(str(wpath)), wpath)
    model.to(device)
    try:
        state = torch.load(d / STATE_NAME, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        raise RuntimeError(f"{d / STATE_NAME}: not loadable with weights_only=True (written by an "
                           f"older tokenizers_video?); start a new run instead of --resume ({e})") from e
    absent = [k for k in _STATE_KEYS if k not in state]
    if absent:
        raise WeightsMismatch(f"{d / STATE_NAME}: missing entries {absent} (expected {list(_STATE_KEYS)})")
    load_weights_strict(_unwrap(disc), state["disc"], f"{d / STATE_NAME} ['disc']")
    for key, obj in (("optimizer", opt), ("scheduler", sched), ("disc_optimizer", dopt)):
        try:
            obj.load_state_dict(state[key])
        except (ValueError, KeyError, RuntimeError) as e:
            raise WeightsMismatch(f"{d / STATE_NAME} [{key!r}]: does not match this "
                                  f"{type(obj).__name__}: {e}") from e
    for n, m in model.named_modules():
        if isinstance(m, VQ):
            m._recent = state["vq_recent"].get(n)
    state["rng"]["torch"] = state["rng"]["torch"].cpu()
    _set_rng_state(state["rng"])
    return int(state["step"])


def trim_log(path: Path, step: int) -> None:
    """Keep only log lines up to ``step`` (a resumed run rewrites what came after)."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
    path.write_text("".join(ln + "\n" for ln in keep))


def save_grid(path: Path, target: torch.Tensor, recon: torch.Tensor, rows: int = 8) -> None:
    """PNG with ``rows`` rows of [input | reconstruction] from (N,3,H,W) tensors in [0,1].

    The last ``rows`` frames are shown (for the compressive tokenizer: future frames).
    """
    import imageio.v3 as iio

    n = min(rows, target.shape[0])
    pair = torch.cat([target[-n:], recon[-n:].detach().float().clamp(0, 1)], dim=3)  # (n,3,H,2W)
    grid = pair.permute(0, 2, 3, 1).reshape(-1, pair.shape[3], 3)  # (n*H, 2W, 3)
    img = (grid.cpu().numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, img)
