"""Atomic training checkpoints with exact resume, generic over engines (MLE, GRPO).

    save_checkpoint(run_dir, step, models={"model": model}, optimizer=opt, scheduler=sched,
                    state={"sampler": sampler.state_dict(), "tokens": n})
    ckpt = latest_checkpoint(run_dir)                      # runs/x/checkpoints/step_00000100
    state = load_checkpoint(ckpt, models={"model": model}, optimizer=opt, scheduler=sched)

A checkpoint directory holds ``<name>/`` per model (``save_pretrained`` when the model has it,
else ``model.safetensors``; for a LoRA/peft model only its adapter, the base being frozen),
``optimizer.pt``, ``scheduler.pt``, ``rng_rank<r>.pt`` (torch /
CUDA / numpy / python RNG of every rank) and ``trainer_state.json`` (step + engine state such as
the sampler position). It is written into ``.tmp-step_*`` and renamed into place; a ``latest``
file names the newest; older ones beyond ``keep`` are deleted. Everything loads with
``torch.load(weights_only=True)`` or safetensors, strictly: a key that is missing, extra or
of another shape is an error naming the directory and the keys (``worldmodels.strict_load``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from worldmodels.atomic import atomic_write
from worldmodels.strict_load import WeightsMismatch, load_state_dict_strict

CKPT_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
_MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "sum")




def rng_state() -> dict:
    """torch / CUDA / numpy / python RNG states as tensors + plain values (weights_only-safe)."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": py_gauss},
    }


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    if s.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])
    n = s["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["gauss"]))
    p = s["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["state"].tolist()), p["gauss"]))


def _save_model(model, directory: Path) -> None:
    from worldmodels.models import lora

    m = lora.unwrap(model)
    if lora.is_peft_model(m):  # only the adapter: the frozen base is the run's starting point
        lora.save_adapter(m, directory)
    elif hasattr(m, "save_pretrained"):
        m.save_pretrained(directory)
    else:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous().cpu().clone() for k, v in m.state_dict().items()},
                  str(directory / "model.safetensors"))


def _load_model(model, directory: Path) -> None:
    """Strict: every key of the model from ``directory/*.safetensors`` with matching shapes, or
    :class:`WeightsMismatch` naming ``directory`` and the keys (only a truly tied ``lm_head``
    may be absent; see ``worldmodels.strict_load``). A LoRA model loads its adapter the same
    way (keys, shapes and LoRA settings; ``worldmodels.models.lora.load_adapter_state``)."""
    from safetensors.torch import load_file

    from worldmodels.models import lora

    m = lora.unwrap(model)
    if lora.is_peft_model(m):
        lora.load_adapter_state(m, directory)
        return
    if (directory / lora.ADAPTER_CONFIG).is_file():
        raise WeightsMismatch(f"{directory}: holds a LoRA adapter, but {type(m).__name__} has none "
                              f"(resume with the same model.lora settings)")
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{directory}: no .safetensors weights in this checkpoint")
    state = {}
    for f in files:
        state.update(load_file(str(f)))
    load_state_dict_strict(m, state, directory)


def _load_torch_state(obj, file: Path, what: str, map_location) -> None:
    """``obj.load_state_dict(torch.load(file, weights_only=True))``, naming ``file`` on failure."""
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing; the checkpoint was saved without a {what} "
                                f"(resume with a fresh {what}, or pass {what}=None)")
    sd = torch.load(file, map_location=map_location, weights_only=True)
    try:
        obj.load_state_dict(sd)
    except (ValueError, KeyError, RuntimeError) as e:
        raise WeightsMismatch(f"{file}: does not match this {what} ({type(obj).__name__}): {e}") from e
    if what == "optimizer":
        _check_optimizer_shapes(obj, file)


def _check_optimizer_shapes(opt, file: Path) -> None:
    """Per-parameter moment buffers must have their parameter's shape (torch checks only counts)."""
    bad = []
    for gi, group in enumerate(opt.param_groups):
        for pi, p in enumerate(group["params"]):
            for name, v in opt.state.get(p, {}).items():
                if name in _MOMENTS and torch.is_tensor(v) and v.shape != p.shape:
                    bad.append(f"group {gi} param {pi} {name} saved {tuple(v.shape)} vs param {tuple(p.shape)}")
    if bad:
        raise WeightsMismatch(f"{file}: optimizer state does not fit the model's parameters; "
                              f"{len(bad)} shape mismatch(es): {bad[:5]}")


def save_checkpoint(run_dir: str | Path, step: int, models: dict, optimizer=None, scheduler=None,
                    state: dict | None = None, keep: int = 2, rank: int = 0,
                    world_size: int = 1) -> Path | None:
    """Write ``run_dir/checkpoints/step_<step>`` atomically (rank 0 writes weights and state;
    every rank writes its RNG file into a shared temp dir, so call it on all ranks)."""
    root = Path(run_dir) / CKPT_DIR
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp-step_{step:08d}"
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    _barrier(world_size)
    torch.save(rng_state(), tmp / f"rng_rank{rank}.pt")
    if rank == 0:
        for name, model in models.items():
            _save_model(model, tmp / name)
        if optimizer is not None:
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        if scheduler is not None:
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, "world_size": world_size,
                                                  **(state or {})}, indent=1))
    _barrier(world_size)
    if rank != 0:
        return None
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_latest(root, final.name)
    _prune(root, keep)
    return final


def _write_latest(root: Path, name: str) -> None:
    atomic_write(root / "latest", lambda f: f.write(name + "\n"), text=True)


def _prune(root: Path, keep: int) -> None:
    if keep <= 0:
        return
    ckpts = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in ckpts[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run (None when there is none)."""
    root = Path(run_dir) / CKPT_DIR
    marker = root / "latest"
    if marker.is_file():
        p = root / marker.read_text().strip()
        if (p / STATE_FILE).is_file():
            return p
    ckpts = sorted(p for p in root.glob("step_*") if (p / STATE_FILE).is_file())
    return ckpts[-1] if ckpts else None


def load_checkpoint(path: str | Path, models: dict, optimizer=None, scheduler=None, rank: int = 0,
                    restore_rng: bool = True, map_location="cpu") -> dict:
    """Restore models / optimizer / scheduler / this rank's RNG; returns ``trainer_state.json``.

    Strict: a model whose saved weights miss, add or reshape a key raises
    :class:`~worldmodels.strict_load.WeightsMismatch` naming ``path/<name>`` and the keys; an
    ``optimizer`` / ``scheduler`` passed in needs its ``optimizer.pt`` / ``scheduler.pt``
    (FileNotFoundError naming it) and must fit it (WeightsMismatch naming the file).
    """
    path = Path(path)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"{path}: not a checkpoint (no {STATE_FILE})")
    absent = [name for name in models if not (path / name).is_dir()]
    if absent:
        saved = sorted(p.name for p in path.iterdir() if p.is_dir())
        raise FileNotFoundError(f"{path}: no saved model(s) {absent} in this checkpoint (it has {saved})")
    for name, model in models.items():
        _load_model(model, path / name)
    if optimizer is not None:
        _load_torch_state(optimizer, path / "optimizer.pt", "optimizer", map_location)
    if scheduler is not None:
        _load_torch_state(scheduler, path / "scheduler.pt", "scheduler", "cpu")
    state = json.loads((path / STATE_FILE).read_text())
    if restore_rng:
        rng_file = path / f"rng_rank{rank}.pt"
        if not rng_file.is_file():
            raise FileNotFoundError(f"{rng_file}: missing; was the run saved with fewer ranks "
                                    f"(world_size {state.get('world_size')})?")
        set_rng_state(torch.load(rng_file, weights_only=True))
    return state


def _barrier(world_size: int) -> None:
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()
