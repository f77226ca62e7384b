"""The Task interface: everything the engines (MLE, GRPO, eval) know about a modality.

Engines in ``worldmodels/train`` never branch on a modality name; they only call these methods::

    task = get_task_class("video")(...)                # worldmodels.tasks registry
    ds = task.dataset("train")                          # torch Dataset of items
    batch = task.collate([ds[i] for i in range(8)])     # a batch dict
    lm = task.lm_batch(batch)                           # {"input_ids" (B,L), "labels" (B,L)}
    prompt, segs = task.rollout_request(batch)          # (B,P), list[Segment]
    out = rollout(model, prompt, segs)
    preds = task.decode(batch, out.completion_ids)      # video: frames (B,T,3,H,W)
    items = task.reward_items(batch)                    # video: {"target_frames": ...}
    group = task.repeat(batch, n)                       # each item n times, item-major

A batch dict holds tensors with the batch on dim 0 and/or lists of length B; ``repeat``'s
default implementation handles both.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

IGNORE_INDEX = -100  # label value that carries no loss (the HF / torch cross-entropy convention)


class Task:
    """Base class of a modality. Subclasses implement the methods that raise NotImplementedError."""

    #: human-readable name, e.g. "video"; used for logging only, never for branching
    name: str = "task"
    #: total vocabulary size the backbone must have (all token ids are < vocab_size)
    vocab_size: int = 0
    #: id used to pad sequences (never in the loss)
    pad_id: int = 0

    def dataset(self, split: str) -> Dataset:
        """The items of ``split`` ("train" or "test")."""
        raise NotImplementedError

    def collate(self, items: list) -> dict:
        """Stack items into a batch dict (default: torch ``default_collate``)."""
        return default_collate(items)

    def lm_batch(self, batch: dict) -> dict:
        """{"input_ids" (B,L) int64, "labels" (B,L) int64 with IGNORE_INDEX off the loss}.

        Labels are aligned with input_ids (HF convention: the model shifts them internally);
        an optional "attention_mask" (B,L) may be added for padded batches.
        """
        raise NotImplementedError

    def rollout_request(self, batch: dict) -> tuple[Tensor, list]:
        """(prompt_ids (B,P), list[Segment]) describing what to generate for this batch."""
        raise NotImplementedError

    def decode(self, batch: dict, completion_ids: Tensor) -> Any:
        """Turn generated completions (B,L) into predictions the rewards/metrics read."""
        raise NotImplementedError

    def reward_items(self, batch: dict) -> dict:
        """The ground truth rewards compare predictions to (video: {"target_frames": ...})."""
        raise NotImplementedError

    def repeat(self, batch: dict, n: int) -> dict:
        """Each item ``n`` times, item-major: [a, a, ..., b, b, ...] (GRPO groups)."""
        return repeat_batch(batch, n)

    def tokens_in(self, lm: dict) -> int:
        """Number of non-padding tokens in an ``lm_batch`` (for tokens/s logging)."""
        if "attention_mask" in lm:
            return int(lm["attention_mask"].sum())
        return int(lm["input_ids"].numel())


def repeat_batch(batch: Any, n: int) -> Any:
    """Repeat every batch-first tensor / list in a (nested) batch dict ``n`` times, item-major."""
    if n < 1:
        raise ValueError(f"repeat needs n >= 1, got {n}")
    if isinstance(batch, Tensor):
        return batch.repeat_interleave(n, dim=0) if batch.dim() > 0 else batch
    if isinstance(batch, dict):
        return {k: repeat_batch(v, n) for k, v in batch.items()}
    if isinstance(batch, list):
        return [x for x in batch for _ in range(n)]
    if isinstance(batch, tuple):
        return tuple(x for x in batch for _ in range(n))
    return batch  # scalars / metadata shared by the whole batch


def to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor in a (nested) batch to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [to_device(x, device) for x in batch]
    return batch
