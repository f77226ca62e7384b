"""The data of one GRPO rollout chunk, and how an update splits it into micro-batches.

``GRPOTrainer`` (``grpo.py``) fills one :class:`Chunk` per ``rollout`` call and runs each
update's forward/backward over ``micro_batches(rows, train_micro_batch)`` of it.
"""

from __future__ import annotations

import dataclasses

from torch import Tensor


@dataclasses.dataclass
class Chunk:
    """One rollout call's data: rows = chunk_prompts * num_generations sequences."""

    index: int                 # global chunk index within the step
    minibatch: int             # global mini-batch it belongs to
    sequences: Tensor          # (R, P+L)
    prompt_len: int
    segments: list
    attention_mask: Tensor | None  # (R, P+L): 0 on left / post-stop padding; None = no padding
    old_logprobs: Tensor       # (R, L)
    ref_logprobs: Tensor | None
    loss_mask: Tensor          # (R, L) bool, False on forced tokens, invalid-reward (and
                               # with mask_truncated_completions, truncated) rows
    advantages: Tensor | None  # (R,)
    rewards: Tensor            # (R,) float64, nan where invalid
    valid: Tensor              # (R,) bool
    parts: dict                # name -> (R,)
    prompt_ids: list           # dataset indices of the chunk's prompts
    gen_tokens: float          # generated tokens in the chunk
    neg_logp: float            # sum of -log p over generated tokens (entropy estimate)
    truncated: Tensor          # (R,) bool: hit a length limit without a stop id
    lengths: Tensor            # (R,) completion tokens per row (up to and including stops)


def micro_batches(n: int, size: int) -> list[slice]:
    """Row slices of at most ``size`` rows covering ``range(n)`` (``size`` 0: one slice)."""
    size = size or n
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def segment_rows(segments: list, rows: slice) -> list:
    """The segments of ``rows`` of a batch (force segments' tokens sliced; others shared)."""
    return [dataclasses.replace(s, tokens=s.tokens[rows]) if s.tokens is not None else s
            for s in segments]
