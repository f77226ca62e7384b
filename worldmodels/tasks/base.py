"""The Task interface: everything the engines (MLE, GRPO, evaluation, ``predict``) know about a
modality, and the two value types a task hands to the rollout engine.

Engines in ``worldmodels/train`` never branch on a modality name; they only call these methods::

    task = get_task_class("video").from_meta(meta, model_dir)   # or the class's own constructor
    ds = task.dataset("train")                          # torch Dataset of items
    batch = task.collate([ds[i] for i in range(8)])     # a batch dict
    lm = task.lm_batch(batch)                           # {"input_ids" (B,L), "labels" (B,L)[, "attention_mask"]}
    req = task.rollout_request(batch)                   # RolloutRequest(prompt_ids, segments, prompt_mask)
    out = rollout(model, req)                           # RolloutOutput (ids, log-probs, masks, stop flags)
    preds = task.decode(batch, out)                     # video: frames; text: parsed states; ...
    items = task.reward_items(batch)                    # what rewards and metrics compare with
    values = task.metrics(preds, items)                 # {name: (B,) tensor}
    group = task.repeat(batch, n)                       # each item n times, item-major
    batch, req = task.predict_request(context, actions) # planners: the same path from raw inputs

A batch dict holds tensors with the batch on dim 0 and/or lists of length B; ``repeat``'s
default implementation handles both. A task is saved into a world-model directory by
``to_meta()`` (JSON-able dict, plus any files ``save_assets`` writes) and rebuilt by the class
method ``from_meta(meta, directory)``; ``worldmodel.json``'s ``kind`` names the registered task
class (``worldmodels.tasks.TASKS``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

IGNORE_INDEX = -100  # label value that carries no loss (the HF / torch cross-entropy convention)


@dataclass
class Segment:
    """One stretch of a completion, laid out after the prompt (see ``train/rollout.py``).

    kind: "generate" (sampled by the model) or "force" (given tokens, fed in one forward step).
    length: tokens in the segment; for a generate segment with ``stop_ids`` the *most* it may
        generate (rows that stop earlier are padded with the request's ``pad_id``).
    allowed: [lo, hi) token-id range a generate segment may emit; None = the whole vocabulary.
    tokens: (B, length) int64 ids of a force segment.
    stop_ids: ids that end a generate segment for that row (e.g. EOS and the chat template's
        end-of-turn); the stop token itself is kept and carries loss, what follows is padding.
    """

    kind: Literal["generate", "force"]
    length: int
    allowed: tuple[int, int] | None = None
    tokens: Tensor | None = None
    stop_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("generate", "force"):
            raise ValueError(f"Segment.kind must be 'generate' or 'force', got {self.kind!r}")
        if self.length < 1:
            raise ValueError(f"Segment.length must be >= 1, got {self.length}")
        if self.kind == "force":
            if self.tokens is None or self.tokens.dim() != 2 or self.tokens.shape[1] != self.length:
                shape = None if self.tokens is None else tuple(self.tokens.shape)
                raise ValueError(f"force Segment needs tokens of shape (B, {self.length}), got {shape}")
            if self.stop_ids:
                raise ValueError("a force Segment cannot have stop_ids (its tokens are given)")
        if self.allowed is not None and not (0 <= self.allowed[0] < self.allowed[1]):
            raise ValueError(f"Segment.allowed must be [lo, hi) with 0 <= lo < hi, got {self.allowed}")
        if isinstance(self.stop_ids, int):
            self.stop_ids = (self.stop_ids,)
        self.stop_ids = tuple(int(s) for s in self.stop_ids)
        if any(s < 0 for s in self.stop_ids):
            raise ValueError(f"Segment.stop_ids must be token ids >= 0, got {self.stop_ids}")


@dataclass
class RolloutRequest:
    """What a task asks the rollout engine to sample for a batch.

    prompt_ids: (B, P) int64. Prompts of different lengths are *left*-padded to P.
    segments: the completion's layout (a list of :class:`Segment`).
    prompt_mask: (B, P) bool, False on left padding; None when every prompt is full length.
    pad_id: id written after a row stops (never attended to, never in the loss).
    group_size: the number of adjacent rows that share one prompt (``task.repeat(batch, G)``
        gives G; set by GRPO); the rollout engine prefills each such prompt once. 1 (default):
        no sharing. B must be a multiple of it.
    """

    prompt_ids: Tensor
    segments: list[Segment]
    prompt_mask: Tensor | None = None
    pad_id: int = 0
    meta: dict = field(default_factory=dict)  # task-private extras (never read by engines)
    group_size: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.prompt_ids, Tensor) or self.prompt_ids.dim() != 2:
            raise ValueError(f"RolloutRequest.prompt_ids must be a (B, P) tensor, got "
                             f"{getattr(self.prompt_ids, 'shape', type(self.prompt_ids).__name__)}")
        if not self.segments:
            raise ValueError("RolloutRequest needs at least one segment")
        if self.prompt_mask is not None and tuple(self.prompt_mask.shape) != tuple(self.prompt_ids.shape):
            raise ValueError(f"prompt_mask {tuple(self.prompt_mask.shape)} must match prompt_ids "
                             f"{tuple(self.prompt_ids.shape)}")
        B = self.prompt_ids.shape[0]
        for s in self.segments:
            if s.kind == "force" and s.tokens.shape[0] != B:
                raise ValueError(f"force Segment tokens have batch {s.tokens.shape[0]}, prompts have {B}")
        if not isinstance(self.group_size, int) or self.group_size < 1 or B % self.group_size:
            raise ValueError(f"RolloutRequest.group_size must be an int >= 1 dividing the batch {B}, "
                             f"got {self.group_size!r}")

    @property
    def batch_size(self) -> int:
        return int(self.prompt_ids.shape[0])

    @property
    def completion_length(self) -> int:
        """Total (maximum) completion length L: the sum of the segments' lengths."""
        return sum(s.length for s in self.segments)

    def to(self, device: torch.device | str) -> RolloutRequest:
        """The same request with every tensor on ``device``."""
        segs = [Segment(s.kind, s.length, s.allowed,
                        s.tokens.to(device) if s.tokens is not None else None, s.stop_ids)
                for s in self.segments]
        mask = self.prompt_mask.to(device) if self.prompt_mask is not None else None
        return RolloutRequest(self.prompt_ids.to(device), segs, mask, self.pad_id, self.meta,
                              self.group_size)


class Task:
    """Base class of a modality. Subclasses implement the methods that raise NotImplementedError.

    Class attributes: ``name`` (the registry name, also written as ``worldmodel.json``'s
    ``kind``), ``vocab_size`` (all token ids are < it), ``pad_id`` (pads sequences; never in the
    loss), ``higher_is_better`` (per metric name, for best-of-n and `wm eval compare`'s "better";
    names not listed count as higher-is-better; ``None``: a diagnostic with no better direction,
    whose best-of-n is its maximum and which compare never calls better), ``right_or_wrong`` (the
    metrics whose every per-sample value is 0 or 1, e.g. exact-state accuracy: `wm eval` reports
    their pass@k when it draws several samples per item).
    """

    name: str = "task"
    vocab_size: int = 0
    pad_id: int = 0
    higher_is_better: dict[str, bool | None] = {}
    right_or_wrong: frozenset[str] = frozenset()

    # ----------------------------------------------------------------------------- data
    def dataset(self, split: str) -> Dataset:
        """The items of ``split`` ("train" or "test")."""
        raise NotImplementedError

    def collate(self, items: list) -> dict:
        """Stack items into a batch dict (default: torch ``default_collate``)."""
        return default_collate(items)

    def lm_batch(self, batch: dict) -> dict:
        """{"input_ids" (B,L) int64, "labels" (B,L) int64 with IGNORE_INDEX off the loss}.

        Labels are aligned with input_ids (HF convention: the model shifts them internally).
        Padded batches add "attention_mask" (B,L) (0 on padding); the engines derive position
        ids from it (``positions_from_mask``), so left padding does not shift positions.
        """
        raise NotImplementedError

    def noise_inputs(self, lm: dict, p: float, generator: torch.Generator) -> dict:
        """``train.input_noise``: ``lm`` with each noisable input token replaced, with
        probability ``p``, by a uniform random token of the same kind; labels untouched.
        Default: refused (this task marks no tokens as noisable)."""
        raise ValueError(f"train.input_noise is not supported by the {type(self).__name__} task "
                         f"(set it to 0)")

    # ------------------------------------------------------------------------- rollouts
    def rollout_request(self, batch: dict) -> RolloutRequest:
        """What to generate for this batch (prompts, segments, prompt mask)."""
        raise NotImplementedError

    def decode(self, batch: dict, output) -> Any:
        """Turn a ``RolloutOutput`` (completion ids, lengths, stop flags) into predictions that
        ``metrics`` and the rewards read."""
        raise NotImplementedError

    def reward_items(self, batch: dict) -> dict:
        """The ground truth that rewards and metrics compare predictions with."""
        raise NotImplementedError

    def metrics(self, predictions: Any, items: dict) -> dict[str, Tensor]:
        """Per-item metric values ``{name: (B,) float tensor}`` (see ``higher_is_better``)."""
        raise NotImplementedError

    def baselines(self, batch: dict) -> dict[str, Any]:
        """Predictions of reference predictors on ``batch`` (same format as ``decode``), scored
        by ``metrics`` beside the model's (e.g. copy-last-frame, "no change"). Default: none."""
        return {}

    def save_examples(self, out_dir: str | Path, batch: dict, predictions: Any, names: list[str]) -> list[str]:
        """Write one human-readable example per name (the first rows of ``batch`` and of
        ``predictions``) into ``out_dir``; returns the paths. Default: none."""
        return []

    def report(self, res: dict) -> tuple[dict, str]:
        """An evaluation result (``worldmodels.evaluate.evaluate``) as (JSON dict, markdown).
        Default: the result as it is and one table row per metric and baseline."""
        lines = [f"Items: {res['items']}, {res['n_samples']} sample(s) each.", "",
                 "| metric | model mean [95% CI] | best of n | " + " | ".join(res["baselines"]) + " |",
                 "|---|---|---|" + "---|" * len(res["baselines"])]
        for name, v in res["metrics"].items():
            ci = v.get("ci95")
            ci_s = f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""
            base = [f"{res['baselines'][b][name]['mean']:.4g}" if name in res["baselines"][b] else "–"
                    for b in res["baselines"]]
            lines.append(f"| {name} | {v['mean']:.4g}{ci_s} | {v['best_of_n']:.4g} | " + " | ".join(base) + " |")
        passk = {name: v["pass_at_k"] for name, v in res["metrics"].items() if "pass_at_k" in v}
        if passk:
            ks = list(next(iter(passk.values())))
            lines += ["", "| metric | " + " | ".join(f"pass@{k}" for k in ks) + " |",
                      "|---|" + "---|" * len(ks)]
            lines += [f"| {name} | " + " | ".join(f"{p[k]:.4g}" for k in ks) + " |" for name, p in passk.items()]
        return res, "\n".join(lines) + "\n"

    def repeat(self, batch: dict, n: int) -> dict:
        """Each item ``n`` times, item-major: [a, a, ..., b, b, ...] (GRPO groups)."""
        return repeat_batch(batch, n)

    def lm_dataset(self, split: str) -> Dataset:
        """Items for MLE (may leave out what only rewards and metrics need). Default: ``dataset``."""
        return self.dataset(split)

    def config_section(self, section: Any) -> Any:
        """The ``task:`` config section as this task was actually built (recorded in the run's
        config.yaml; e.g. the layout an ``--init`` model imposed). Default: ``section``."""
        return section

    def max_length(self) -> int | None:
        """Longest sequence ``lm_batch`` builds (checked against the backbone), None if unbounded."""
        return None

    def save_samples(self, out_dir: str | Path, step: int, batch: dict, predictions: Any,
                     rewards: Tensor, num_generations: int) -> None:
        """GRPO's periodic look at one group (``grpo.sample_table_steps``). Default: nothing."""

    def tokens_in(self, lm: dict) -> int:
        """Number of non-padding tokens in an ``lm_batch`` (for tokens/s logging)."""
        if "attention_mask" in lm:
            return int(lm["attention_mask"].sum())
        return int(lm["input_ids"].numel())

    # ----------------------------------------------------------------- consumers (predict)
    def predict_request(self, context: Any, actions: Any, n_samples: int = 1) -> tuple[dict, RolloutRequest]:
        """A batch dict and the rollout request that predict what follows ``context`` under
        ``actions``, each input ``n_samples`` times (item-major). ``decode(batch, output)`` then
        gives the predictions; :meth:`predict` runs the three steps."""
        raise NotImplementedError

    def predict(self, generate, context: Any, actions: Any, n_samples: int = 1) -> Any:
        """``generate(request) -> RolloutOutput`` wrapped into predictions for planners.

        Default: one request, one rollout, ``decode``. A task whose prediction needs several
        rollouts (a sliding context window) overrides this.
        """
        batch, req = self.predict_request(context, actions, n_samples)
        return self.decode(batch, generate(req))

    # --------------------------------------------------------------------- persistence
    def to_meta(self) -> dict:
        """JSON-able description from which :meth:`from_meta` rebuilds this task."""
        raise NotImplementedError

    def save_assets(self, directory: str | Path) -> None:
        """Write files the task needs next to ``worldmodel.json`` (a video tokenizer, a text
        tokenizer). Default: none."""

    @classmethod
    def from_meta(cls, meta: dict, directory: str | Path, device: torch.device | str = "cpu", **kw) -> Task:
        """Rebuild the task saved in ``directory`` (``meta`` = its ``worldmodel.json``)."""
        raise NotImplementedError

    def to(self, device: torch.device | str) -> Task:
        """Move task-owned modules (e.g. a video tokenizer) to ``device``; returns self."""
        return self


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
    """Move every tensor in a (nested) dict / list / tuple to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(x, device) for x in batch)
    return batch
