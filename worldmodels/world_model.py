"""A trained world model as one directory, and its ``predict`` API for consumers (planners,
agents, evaluators), for every modality.

    wm = WorldModel.from_pretrained("runs/wm_video")          # dispatches on worldmodel.json's kind
    pred = wm.predict(context, actions, n_samples=4)          # what the task predicts (video: frames)
    wm.save_pretrained("runs/copy")

``predict`` is the task's: ``task.predict_request`` -> rollout -> ``task.decode`` (a task whose
prediction needs several rollouts, like a single-step video model sliding its window,
overrides ``Task.predict``). Attributes the world model does not have come from its task, so
a video model answers ``wm.action_dim`` and ``wm.frame_skip``. Directory layout::

    worldmodel.json   {"format": 1, "kind": <task name>, "backbone": "backbone", <task.to_meta()>, ...}
    backbone/         the causal LM (transformers save_pretrained, or a LoRA adapter + its base)
    <task assets>     whatever task.save_assets writes (a video tokenizer, a text tokenizer)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from worldmodels.meta import FORMAT, WM_FILE, read_world_model_meta

__all__ = ["FORMAT", "WM_FILE", "VideoWorldModel", "WorldModel", "export_backbone",
           "read_world_model_meta", "task_from_meta", "write_world_model_meta"]


def write_world_model_meta(directory: str | Path, task, extra: dict | None = None) -> None:
    """Write ``worldmodel.json`` for ``task`` (atomically) and the task's assets."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    task.save_assets(d)
    meta = {"format": FORMAT, "kind": task.name, "backbone": "backbone", **task.to_meta(), **(extra or {})}
    tmp = d / f".{WM_FILE}.tmp"
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, d / WM_FILE)


def export_backbone(directory: str | Path, model, merge: bool = True, base: str | Path | None = None) -> None:
    """Replace ``directory/backbone`` with ``model``'s weights (written aside, then swapped).

    A LoRA (peft) model is merged into its base weights (``merge=True``) or saved as its adapter
    plus the base's path (``models/lora.py``); ``load_backbone`` reads either."""
    from worldmodels.models import lora

    d = Path(directory)
    tmp, old = d / ".tmp-backbone", d / ".old-backbone"
    shutil.rmtree(tmp, ignore_errors=True)
    lora.export(model, tmp, merge=merge, base=base)
    if (d / "backbone").exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(d / "backbone", old)
    os.replace(tmp, d / "backbone")
    shutil.rmtree(old, ignore_errors=True)


def task_from_meta(meta: dict, directory: str | Path, device="cpu", **kw):
    """The task recorded in ``meta`` (``kind`` through the task registry), rebuilt from ``directory``."""
    from worldmodels.tasks import get_task_class

    try:
        cls = get_task_class(meta["kind"])
    except KeyError as e:
        raise ValueError(f"{Path(directory) / WM_FILE}: unknown kind {meta['kind']!r} ({e})") from e
    return cls.from_meta(meta, directory, device=device, **kw)


class WorldModel:
    """Backbone + Task; see the module docstring."""

    def __init__(self, model, task, device: torch.device | str = "cpu"):
        self.model, self.task, self.device = model.eval(), task, torch.device(device)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "auto",
                        attn_implementation: str | None = "sdpa", dtype=None, **task_kw) -> WorldModel:
        """Load ``directory`` (see module doc); ``task_kw`` override the recorded task's
        settings (e.g. ``data_root``). Raises FileNotFoundError / ValueError naming the file."""
        from worldmodels.models import load_backbone
        from worldmodels.train.distributed import pick_device

        d = Path(directory)
        meta = read_world_model_meta(d)
        dev = pick_device(device)
        task = task_from_meta(meta, d, device=dev, **task_kw)
        model = load_backbone(d / meta.get("backbone", "backbone"), attn_implementation, device=dev,
                              dtype=dtype)
        vocab = model.get_input_embeddings().weight.shape[0]
        if vocab < task.vocab_size:
            raise ValueError(f"{d}: the backbone's vocabulary ({vocab}) is smaller than the task's "
                             f"({task.vocab_size})")
        wm = cls(model, task, dev)
        wm.meta = meta
        return wm

    def save_pretrained(self, directory: str | Path, extra: dict | None = None) -> None:
        write_world_model_meta(directory, self.task, extra)
        export_backbone(directory, self.model)

    def eval(self) -> WorldModel:
        """Inference mode (the backbone is always kept in eval mode here); returns self."""
        self.model.eval()
        return self

    def to(self, device) -> WorldModel:
        self.device = torch.device(device)
        self.model.to(self.device)
        self.task.to(self.device)
        return self

    def __getattr__(self, name: str):
        # only called for attributes not found normally: ask the task (e.g. action_dim)
        if name in ("model", "task", "device") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.task, name)

    def generate(self, request, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, generator: torch.Generator | None = None,
                 sampler: str = "inverse_cdf"):
        """One rollout of ``request`` (a ``RolloutRequest``) on this model's device.
        ``sampler``: ``rollout``'s token sampler ("inverse_cdf" or "multinomial", the draws of
        runs made before 2026-11-30); ValueError on another name."""
        from worldmodels.train.rollout import rollout

        return rollout(self.model, request.to(self.device), temperature=temperature, top_k=top_k,
                       top_p=top_p, generator=generator, sampler=sampler)

    @torch.no_grad()
    def predict(self, context, actions, n_samples: int = 1, temperature: float = 1.0,
                top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None):
        """What follows ``context`` under ``actions``, ``n_samples`` times: the task's
        ``predict`` (video: (B,k,3,H,W) frames + (B,(k-1+N)*s,A) actions -> (B,n,N,3,H,W))."""

        def generate(req):
            return self.generate(req, temperature, top_k, top_p, generator)

        return self.task.predict(generate, context, actions, n_samples)


VideoWorldModel = WorldModel  # the name planners and scripts used before text and web arrived
