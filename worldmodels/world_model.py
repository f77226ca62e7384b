"""A trained video world model as one directory, and its ``predict`` API for consumers.

    wm = VideoWorldModel.from_pretrained("runs/wm_video")
    pred = wm.predict(context_frames, actions, n_samples=4)   # (B,4,N,3,H,W) in [0,1]

``context_frames`` (B,k,3,H,W) in [0,1]; ``actions`` (B,k-1+N,A) raw (continuous) actions:
``actions[:, :k-1]`` sit between the context frames and ``actions[:, k-1+i]`` leads to
predicted frame i. A model trained with ``frame_skip = s`` takes actions at the environment's
rate, (B,(k-1+N)*s,A): each group of s consecutive actions leads from one frame to the next
(context frames are then s recorded steps apart too). Directory layout::

    worldmodel.json   {"kind": "video", "backbone": "backbone", "tokenizer": "tokenizer", layout...}
    backbone/         transformers save_pretrained (config.json + model.safetensors)
    tokenizer/        a copy of the video tokenizer (save_pretrained)
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path

import torch
from torch import Tensor

WM_FILE = "worldmodel.json"


def _tokenizer_class_path(tok) -> str:
    return f"{type(tok).__module__}:{type(tok).__qualname__}"


def load_video_tokenizer(directory: str | Path, class_path: str | None = None, device="cpu"):
    """tokenizers_video.load_tokenizer, or ``class_path`` ("module:Class"; also read from the
    tokenizer's config.json key "class") for other tokenizers."""
    cfg_file = Path(directory) / "config.json"
    if class_path is None and cfg_file.is_file():
        class_path = json.loads(cfg_file.read_text()).get("class")
    if class_path and not class_path.startswith("tokenizers_video"):
        mod, cls = class_path.split(":")
        tok = getattr(importlib.import_module(mod), cls).from_pretrained(directory)
    else:
        from tokenizers_video import load_tokenizer

        tok = load_tokenizer(directory)
    return tok.to(device).eval()


def write_world_model_meta(directory: str | Path, task, tokenizer_source: str | None,
                           extra: dict | None = None) -> None:
    """Write ``worldmodel.json`` and copy the tokenizer into ``directory/tokenizer`` (atomically)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tok_dir = d / "tokenizer"
    if not tok_dir.exists():
        tmp = d / ".tmp-tokenizer"
        shutil.rmtree(tmp, ignore_errors=True)
        task.tokenizer.save_pretrained(tmp)
        os.replace(tmp, tok_dir)
    meta = {"format": 1, "kind": "video", "backbone": "backbone", "tokenizer": "tokenizer",
            "tokenizer_class": _tokenizer_class_path(task.tokenizer),
            "tokenizer_source": str(tokenizer_source) if tokenizer_source else None,
            "layout": task.layout(), **(extra or {})}
    tmp = d / ".worldmodel.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, d / WM_FILE)


def export_backbone(directory: str | Path, model) -> None:
    """Replace ``directory/backbone`` with ``model``'s weights (write aside, then swap)."""
    d = Path(directory)
    tmp, old = d / ".tmp-backbone", d / ".old-backbone"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    if (d / "backbone").exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(d / "backbone", old)
    os.replace(tmp, d / "backbone")
    shutil.rmtree(old, ignore_errors=True)


def read_world_model_meta(directory: str | Path) -> dict:
    p = Path(directory) / WM_FILE
    if not p.is_file():
        raise FileNotFoundError(f"{directory}: not a world model directory (no {WM_FILE}; "
                                f"train one with `wm pretrain video --out {directory}`)")
    return json.loads(p.read_text())


def task_from_meta(meta: dict, tokenizer, **kw):
    from worldmodels.tasks.video import VideoSpec, VideoTask
    from worldmodels.tasks.video_data import ActionCodec

    lay = meta["layout"]
    codec = ActionCodec(lay["actions"]["low"], lay["actions"]["high"], lay["actions"]["bins"])
    return VideoTask(tokenizer, VideoSpec(**lay["spec"]), codec, **kw)


class VideoWorldModel:
    """Backbone + VideoTask (tokenizer, action codec, layout); see the module docstring."""

    def __init__(self, model, task, device: torch.device | str = "cpu"):
        self.model, self.task, self.device = model.eval(), task, torch.device(device)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "auto",
                        attn_implementation: str = "sdpa", dtype=None) -> VideoWorldModel:
        from worldmodels.models import load_backbone
        from worldmodels.train.distributed import pick_device

        d = Path(directory)
        meta = read_world_model_meta(d)
        dev = pick_device(device)
        tok = load_video_tokenizer(d / meta["tokenizer"], meta.get("tokenizer_class"), dev)
        task = task_from_meta(meta, tok, data_root=meta.get("data_root"),
                              tokenizer_dir=str(d / meta["tokenizer"]))
        model = load_backbone(d / meta["backbone"], attn_implementation, device=dev, dtype=dtype)
        if model.config.vocab_size != task.vocab_size:
            raise ValueError(f"{d}: backbone vocab {model.config.vocab_size} != layout vocab "
                             f"{task.vocab_size}")
        return cls(model, task, dev)

    def save_pretrained(self, directory: str | Path) -> None:
        write_world_model_meta(directory, self.task, self.task.tokenizer_dir)
        export_backbone(directory, self.model)

    def eval(self) -> VideoWorldModel:
        """Inference mode (the backbone is always kept in eval mode here); returns self."""
        self.model.eval()
        return self

    def to(self, device) -> VideoWorldModel:
        self.device = torch.device(device)
        self.model.to(self.device)
        self.task.tokenizer.to(self.device)
        return self

    @property
    def action_dim(self) -> int:
        return self.task.action_dim

    @property
    def frame_skip(self) -> int:
        """Environment steps per model step (predicted frames are this many steps apart)."""
        return self.task.frame_skip

    @torch.no_grad()
    def predict(self, context_frames: Tensor, actions: Tensor, n_samples: int = 1,
                temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """(B,k,3,H,W) frames + (B,(k-1+N)*s,A) actions -> (B,n_samples,N,3,H,W) predicted frames
        (s = ``frame_skip``, 1 unless the model was trained with a frame skip)."""
        from worldmodels.tasks.video_data import encode_compressive, encode_frames

        t = self.task
        if context_frames.dim() != 5:
            raise ValueError(f"context_frames must be (B,k,3,H,W), got {tuple(context_frames.shape)}")
        B, k = context_frames.shape[:2]
        s = t.frame_skip
        if actions.dim() != 3 or actions.shape[1] % s or actions.shape[1] // s - (k - 1) < 1:
            raise ValueError(f"actions must be (B, (k-1+N)*{s}, A) with N >= 1 (k={k} context "
                             f"frames, frame_skip={s}), got {tuple(actions.shape)}")
        n_future = actions.shape[1] // s - (k - 1)
        size = getattr(t.tokenizer, "image_size", context_frames.shape[-1])
        if tuple(context_frames.shape[-2:]) != (size, size):
            raise ValueError(f"frames are {tuple(context_frames.shape[-2:])}, the tokenizer expects "
                             f"{size}x{size}")
        frames = context_frames.float()
        slots = actions.float().cpu().reshape(B, -1, t.action_tokens)  # (B,k-1+N,s*A): s per slot
        act_ids = t.codec.encode_groups(slots)
        ctx = None
        if t.compressive:
            ctx, fids = encode_compressive(t.tokenizer, frames)
        else:
            fids = encode_frames(t.tokenizer, frames)
        ids = self.predict_ids(fids, act_ids, n_future, ctx, n_samples, temperature, top_k, top_p,
                               generator)
        if ctx is not None:
            ctx = ctx.repeat_interleave(n_samples, 0)
        out = t.decode_ids(ids, ctx)  # (B*n,N,3,H,W)
        return out.reshape(B, n_samples, *out.shape[1:]).cpu()

    @torch.no_grad()
    def predict_ids(self, frame_ids: Tensor, action_ids: Tensor, n_future: int,
                    ctx_ids: Tensor | None = None, n_samples: int = 1, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
        """Token-level predict: context frame ids (B,k,N) + action bins (B,k-1+N',s*A) ->
        generated frame ids (B*n_samples, n_future, N), samples item-major."""
        fids = frame_ids.repeat_interleave(n_samples, 0)
        act = action_ids.repeat_interleave(n_samples, 0)
        ctx = ctx_ids.repeat_interleave(n_samples, 0) if ctx_ids is not None else None
        if self.task.spec.mode == "single":
            return self._predict_sliding(fids, act, n_future, temperature, top_k, top_p, generator)
        return self._generate(fids, act, n_future, ctx, temperature, top_k, top_p, generator)

    def _generate(self, fids, act_ids, n_future, ctx, temperature, top_k, top_p, generator):
        from worldmodels.train.rollout import rollout

        prompt, segs = self.task.prompt_and_segments(fids, act_ids, n_future, ctx)
        segs = [_seg_to(s, self.device) for s in segs]
        out = rollout(self.model, prompt.to(self.device), segs, temperature, top_k, top_p,
                      generator=generator)
        return self.task.generated_frame_ids(out.completion_ids, n_future).cpu()

    def _predict_sliding(self, fids, act_ids, n_future, temperature, top_k, top_p, generator):
        k = self.task.spec.context_frames
        if fids.shape[1] < k:
            raise ValueError(f"this single-step model needs {k} context frames, got {fids.shape[1]}")
        c0 = fids.shape[1]
        frames, preds = fids[:, -k:], []
        for i in range(n_future):
            a = act_ids[:, c0 - k + i : c0 + i]  # actions of the k frames in the window
            new = self._generate(frames, a, 1, None, temperature, top_k, top_p, generator)
            preds.append(new)
            frames = torch.cat([frames[:, 1:], new], 1)
        return torch.cat(preds, 1)


def _seg_to(seg, device):
    if seg.tokens is not None:
        seg.tokens = seg.tokens.to(device)
    return seg
