"""Batched, KV-cached autoregressive rollouts over any HF causal LM, with per-segment vocab masks.

The one generation path used by evaluation, RLVR (GRPO) and the planners. A completion is a
list of segments laid out after the prompt:

    segs = [Segment("generate", 64, allowed=(0, 4375)),       # 64 sampled, vocab-masked tokens
            Segment("force", 7, tokens=action_ids),           # given tokens, fed in one step
            Segment("generate", 64, allowed=(0, 4375))]
    out = rollout(model, prompt_ids, segs, temperature=1.0)   # out.completion_ids (B, 135)
    lp = sequence_logprobs(model, out.sequences, prompt_ids.shape[1], segs,
                           attention_mask=out.attention_mask)  # == out.logprobs

Forced segments are fed through the model in one forward step (multi-step "interact" mode).
``logprobs`` are the log-probabilities of each generated token under the *masked,
temperature-scaled* distribution (logits outside ``allowed`` = -inf, then ``/ temperature``);
top-k / top-p only truncate what is sampled, not the reported log-probs, so
``sequence_logprobs`` reproduces them exactly with one differentiable forward pass.

Variable-length completions (the defaults give fixed-length segments and no attention mask):
- ``prompt_mask`` (B,P) bool for *left*-padded prompts of different lengths;
- ``Segment.stop_ids``: once a row samples one of them inside that generate segment, the rest
  of the segment is ``pad_id`` (log-prob 0, loss_mask False, attention_mask 0: never attended
  to). When every row has stopped, the rest of the segment is filled without calling the model
  (early exit). A later segment starts afresh for every row.
Position ids then come from the attention mask (:func:`positions_from_mask`), so a row's
tokens sit at the same positions whatever padding surrounds them; ``mle.py`` uses the same
helper, so training and sampling agree.

Speed (:mod:`worldmodels.train.rollout_cache`, knobs in :class:`DecodeConfig`): with
``group_size`` G (``RolloutRequest.group_size``; GRPO's G adjacent samples of one prompt) each
distinct prompt is prefilled once and its KV cache shared by the group's rows; decode steps run
on a static cache with preallocated buffers, leaving rows that have stopped out of the batch;
the one-token step can be compiled (CUDA graphs on GPU). The samples are the same with and
without these, the log-probs too up to float rounding (``docs/rollout.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from worldmodels.tasks.base import RolloutRequest, Segment
from worldmodels.train.rollout_cache import DecodeConfig, Stepper, cache_keyword

__all__ = ["SAMPLERS", "RolloutOutput", "RolloutRequest", "Segment", "cache_keyword",
           "completion_attention_mask", "completion_length", "draw", "entropy_from_logits",
           "positions_from_mask", "rollout",
           "segment_masks", "sequence_logprobs"]


@dataclass
class RolloutOutput:
    """What :func:`rollout` returns (B rows, prompt length P, completion length L).

    sequences: (B,P+L) int64, prompt + completion.
    completion_ids: (B,L) int64; ``pad_id`` after a row's stop token.
    logprobs: (B,L) float32 log-prob of each generated token (0 on forced / padded tokens).
    loss_mask: (B,L) bool, True on tokens the model generated (up to and including a stop).
    stopped: (B,) bool, True when the row emitted a stop id in every generate segment that has
        ``stop_ids`` (all False when no segment has any); ``~stopped`` marks truncated rows.
    lengths: (B,) int64, real completion tokens per row: generated ones up to and including
        each stop token, plus forced ones. With one generate segment the answer is
        ``completion_ids[r, :lengths[r]]``.
    attention_mask: (B,P+L) int64, 1 on real prompt tokens, generated tokens up to and
        including a stop and forced tokens; 0 on prompt padding and post-stop padding. None
        when the request had neither a prompt mask nor stop ids (nothing is padded).
    ``stopped`` / ``lengths`` default to "not stopped, full length" when not given.
    """

    sequences: Tensor
    completion_ids: Tensor
    logprobs: Tensor
    loss_mask: Tensor
    stopped: Tensor | None = None
    lengths: Tensor | None = None
    attention_mask: Tensor | None = None

    def __post_init__(self) -> None:
        B, L = self.completion_ids.shape
        dev = self.completion_ids.device
        if self.stopped is None:
            self.stopped = torch.zeros(B, dtype=torch.bool, device=dev)
        if self.lengths is None:
            self.lengths = torch.full((B,), L, dtype=torch.long, device=dev)


def completion_length(segments: list[Segment]) -> int:
    return sum(s.length for s in segments)


def positions_from_mask(attention_mask: Tensor) -> Tensor:
    """Position ids (B,T) int64 from an attention mask (B,T) (1/True = real token).

    ``cumsum - 1`` clamped at 0: real tokens get 0, 1, 2, ... in order whatever padding
    precedes them (HF ``generate``'s convention for left padding); padding gets the position of
    the last real token before it (0 before the first), which does not matter since it is
    never attended to.
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


# ------------------------------------------------------------------------------ logits
def _mask_logits(logits: Tensor, allowed: tuple[int, int] | None) -> Tensor:
    """logits (..., V) with everything outside [lo, hi) set to -inf (float32)."""
    logits = logits.float()
    if allowed is None:
        return logits
    lo, hi = allowed
    if hi > logits.shape[-1]:
        raise ValueError(f"Segment.allowed {allowed} exceeds the model vocabulary {logits.shape[-1]}")
    out = torch.full_like(logits, float("-inf"))
    out[..., lo:hi] = logits[..., lo:hi]
    return out


def _filter_top_k_top_p(logits: Tensor, top_k: int | None, top_p: float | None) -> Tensor:
    """logits (B,V) -> logits with tokens outside top-k / the top-p nucleus set to -inf."""
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        remove = cum - sorted_logits.softmax(-1) > top_p  # keep the token that crosses top_p
        remove = torch.zeros_like(remove).scatter(-1, idx, remove)
        logits = logits.masked_fill(remove, float("-inf"))
    return logits


SAMPLERS = ("inverse_cdf", "multinomial")


def draw(probs: Tensor, generator: torch.Generator | None = None, sampler: str = "inverse_cdf") -> Tensor:
    """One index per row (B,1) int64, drawn from the categorical distributions ``probs`` (B,V)
    (non-negative, each row with a positive, finite sum; normalised here).

    ``inverse_cdf`` (default): one uniform number per row, located in the row's cumulative sum
    (float64) by binary search; an index of probability 0 is never drawn. ``multinomial``:
    ``torch.multinomial``, which draws V exponential variates per row (``model.generate``'s
    draws: same tokens for the same seed). Both are exact samplers of the same distribution;
    on CPU the first costs ~1/15 of the second (40 x 2,048: 0.18 vs 2.6 ms per step), which
    was 13 % of a tiny model's decode step. Raises ValueError on an unknown ``sampler`` or, on
    CPU, a row whose sum is not positive and finite (NaN logits; on an accelerator such a row
    draws an arbitrary valid index, as the check would wait for the device every step).
    """
    if sampler == "multinomial":
        return torch.multinomial(probs, 1, generator=generator)
    if sampler != "inverse_cdf":
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    cdf = probs.double().cumsum(-1)
    total = cdf[:, -1:]
    if probs.device.type == "cpu" and not bool(((total > 0) & torch.isfinite(total)).all()):
        # checked on CPU only: on an accelerator the check would wait for the device each step
        raise ValueError("draw: a row of probs has a sum that is not positive and finite (NaN logits?)")
    # u in [0, total): rand < 1 and a product below 1 * total never rounds up to total (float64)
    u = torch.rand(total.shape, generator=generator, device=probs.device, dtype=torch.float64) * total
    idx = torch.searchsorted(cdf, u, right=True)  # first index whose cdf exceeds u: p > 0
    return idx if probs.device.type == "cpu" else idx.clamp_(max=probs.shape[-1] - 1)  # NaN rows


def _sample(logits: Tensor, top_k: int | None, top_p: float | None, generator,
            sampler: str = "inverse_cdf") -> Tensor:
    """One token per row (B,1) from float logits (B,V). ``top_k=1`` is greedy: the argmax, which
    is what sampling the one-hot top-1 distribution gives, without drawing from ``generator``."""
    if top_k == 1:
        return logits.argmax(-1, keepdim=True)
    return draw(_filter_top_k_top_p(logits, top_k, top_p).softmax(-1), generator, sampler)


def _model_device(model, fallback: torch.device) -> torch.device:
    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    p = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return p.device if p is not None else fallback


@torch.no_grad()
def rollout(model, prompt_ids: Tensor | RolloutRequest, segments: list[Segment] | None = None,
            temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
            generator: torch.Generator | None = None,
            prompt_mask: Tensor | None = None, pad_id: int = 0, group_size: int = 1,
            decode: DecodeConfig | None = None, sampler: str = "inverse_cdf") -> RolloutOutput:
    """Sample the completion described by ``segments`` after ``prompt_ids`` (B,P); or pass one
    :class:`RolloutRequest` (``rollout(model, task.rollout_request(batch), temperature=...)``).

    ``group_size``: the number of adjacent rows that share one prompt (GRPO: ``task.repeat``'s
    item-major copies; a request brings its own); each such prompt is prefilled once (rows
    that turn out to differ are prefilled one by one, with a warning). ``decode``: how the
    model is run (:class:`DecodeConfig`; default: shared prefill, static cache where
    supported, not compiled). Neither changes the samples. ``sampler``: how a token is drawn
    from its distribution (:func:`draw`; ``"multinomial"`` draws what ``model.generate``
    draws for the same seed).
    Inputs are moved to the model's device (``generator`` must live there). Returns a
    :class:`RolloutOutput` on that device. Raises ValueError on bad arguments (temperature
    <= 0, no segments, a force segment or prompt mask whose shape does not match the prompts,
    an ``allowed`` range beyond the vocabulary, ``group_size`` < 1).
    """
    if isinstance(prompt_ids, RolloutRequest):
        req = prompt_ids
        if segments is not None:
            raise ValueError("pass either a RolloutRequest or prompt_ids + segments, not both")
        prompt_ids, segments, prompt_mask, pad_id = req.prompt_ids, req.segments, req.prompt_mask, req.pad_id
        group_size = getattr(req, "group_size", 1)
    if segments is None:
        raise ValueError("rollout needs segments (or a RolloutRequest)")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature} (use top_k=1 for greedy)")
    if not segments:
        raise ValueError("rollout needs at least one segment")
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be an int >= 1, got {group_size!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    device = _model_device(model, prompt_ids.device)
    prompt_ids = prompt_ids.to(device=device, dtype=torch.long)
    B, P = prompt_ids.shape
    L = completion_length(segments)
    if prompt_mask is not None and tuple(prompt_mask.shape) != (B, P):
        raise ValueError(f"prompt_mask has shape {tuple(prompt_mask.shape)}, prompt_ids {(B, P)}")
    stopping = any(s.kind == "generate" and s.stop_ids for s in segments)
    masked = prompt_mask is not None or stopping
    pmask = (prompt_mask.to(device).long() if prompt_mask is not None
             else torch.ones(B, P, dtype=torch.long, device=device))
    step = Stepper(model, B, P + L, masked, group_size, decode or DecodeConfig(), device)
    pend_ids, pend_mask = prompt_ids, pmask  # tokens not yet fed through the model
    ids = torch.full((B, L), pad_id, dtype=torch.long, device=device)
    lps = torch.zeros(B, L, device=device)
    loss = torch.zeros(B, L, dtype=torch.bool, device=device)
    real = torch.zeros(B, L, dtype=torch.bool, device=device)
    stopped = torch.full((B,), stopping, dtype=torch.bool, device=device)
    col = 0  # completion column of the segment's first token
    for seg in segments:
        if seg.kind == "force":
            tok = seg.tokens.to(device=device, dtype=torch.long)
            if tok.shape[0] != B:
                raise ValueError(f"force Segment tokens have batch {tok.shape[0]}, prompts have {B}")
            ids[:, col:col + seg.length] = tok
            real[:, col:col + seg.length] = True
            pend_ids = torch.cat([pend_ids, tok], 1)
            pend_mask = torch.cat([pend_mask, torch.ones_like(tok)], 1)
            col += seg.length
            continue
        stops = torch.tensor(seg.stop_ids, device=device) if seg.stop_ids else None
        done = torch.zeros(B, dtype=torch.bool, device=device)
        for i in range(seg.length):
            logits = _mask_logits(step.feed(pend_ids, pend_mask, need=~done), seg.allowed) / temperature
            tok = _sample(logits, top_k, top_p, generator, sampler)  # (B,1)
            lp = logits.log_softmax(-1).gather(-1, tok)
            live = ~done[:, None]
            tok = torch.where(live, tok, torch.full_like(tok, pad_id))
            ids[:, col + i] = tok[:, 0]
            lps[:, col + i] = torch.where(live, lp, torch.zeros_like(lp))[:, 0]
            loss[:, col + i] = live[:, 0]
            real[:, col + i] = live[:, 0]
            pend_ids, pend_mask = tok, live.long()
            if stops is not None:
                done = done | (live[:, 0] & torch.isin(tok[:, 0], stops))
                if i + 1 < seg.length and bool(done.all()):  # early exit: the rest stays padding
                    break
        if stops is not None:
            stopped &= done
        col += seg.length
    return RolloutOutput(
        sequences=torch.cat([prompt_ids, ids], 1),
        completion_ids=ids,
        logprobs=lps,
        loss_mask=loss,
        stopped=stopped,
        lengths=real.sum(1),
        attention_mask=torch.cat([pmask, real.long()], 1) if masked else None,
    )


def segment_masks(completion_ids: Tensor, segments: list[Segment]) -> Tensor:
    """loss mask (B,L) bool recomputed from a completion: True on generated tokens up to and
    including a segment's stop token, False on forced tokens and post-stop padding."""
    return _completion_flags(completion_ids, segments, forced=False)


def completion_attention_mask(completion_ids: Tensor, segments: list[Segment]) -> Tensor:
    """(B,L) bool, True on real completion tokens (generated up to and including a stop, and
    forced): the completion half of ``RolloutOutput.attention_mask``, recomputed from ids."""
    return _completion_flags(completion_ids, segments, forced=True)


def _completion_flags(completion_ids: Tensor, segments: list[Segment], forced: bool) -> Tensor:
    B, dev = completion_ids.shape[0], completion_ids.device
    parts, start = [], 0
    for seg in segments:
        piece = completion_ids[:, start : start + seg.length]
        if seg.kind == "force" or not seg.stop_ids:
            value = forced if seg.kind == "force" else True
            parts.append(torch.full((B, seg.length), value, dtype=torch.bool, device=dev))
        else:
            hit = torch.isin(piece, torch.tensor(seg.stop_ids, device=dev)).long()
            parts.append((hit.cumsum(1) - hit) == 0)  # no stop token strictly before
        start += seg.length
    return torch.cat(parts, 1)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy (nats) of ``softmax(logits)`` over the last axis: (..., V) -> (...), float32
    (float64 stays float64). ``-inf`` logits (masked-out tokens) contribute 0, so a masked
    distribution's entropy is that of its allowed tokens; differentiable. ``H = logsumexp(z)
    - sum(softmax(z) * z)`` as verl's ``entropy_from_logits``, written as ``-sum p log p``
    with ``p log p`` taken as 0 where ``p = 0``."""
    return _entropy_from_logprobs(F.log_softmax(
        logits.float() if logits.dtype != torch.float64 else logits, -1))


def _entropy_from_logprobs(logp: Tensor) -> Tensor:
    """``-sum exp(logp) * logp`` over the last axis for normalised log-probs (..., V)."""
    # p = 0 at -inf; log p replaced by 0 there *before* the product, so neither the value nor
    # the gradient meets 0 * inf
    finite_logp = torch.where(torch.isfinite(logp), logp, torch.zeros_like(logp))
    return -(logp.exp() * finite_logp).sum(-1)


def sequence_logprobs(model, sequences: Tensor, prompt_len: int, segments: list[Segment],
                      temperature: float = 1.0, attention_mask: Tensor | None = None,
                      return_entropy: bool = False,
                      window: int | None = None) -> Tensor | tuple[Tensor, Tensor]:
    """Per-token log-probs (B,L) float32 of the completion in ``sequences`` (B,P+L), one forward.

    Same vocab masks and temperature as ``rollout``; 0 on forced / post-stop tokens;
    differentiable (GRPO uses it for the policy and the reference model). Pass the rollout's
    ``attention_mask`` (B,P+L) (``out.attention_mask``; it is required for left-padded
    prompts); position ids come from it via :func:`positions_from_mask`. Without one, and with
    stop ids in ``segments``, the completion part is recomputed from the ids
    (:func:`completion_attention_mask`) and the prompt counts as unpadded.
    ``return_entropy``: also return the entropy (B,L) float32 (nats) of the policy's full
    distribution over the vocabulary at each completion position, under the same vocab mask
    and temperature (:func:`entropy_from_logits`; GRPO's entropy bonus), 0 where the
    log-probs are 0; differentiable like them.
    ``window``: run the forward in windows of this many tokens with a recurrent backbone's
    state carried and detached between them (:func:`worldmodels.train.tbptt.windowed_logprobs`;
    equal in value, gradient truncated at the borders); ValueError for a KV-cache backbone.
    Raises ValueError when the lengths or the mask's shape do not match.
    """
    target, kwargs = logprob_inputs(sequences, prompt_len, segments, attention_mask)
    L, B = target.shape[1], sequences.shape[0]
    if window is not None:
        from worldmodels.train.tbptt import windowed_logprobs

        parts = list(windowed_logprobs(model, sequences, prompt_len, segments, window, temperature,
                                       attention_mask, return_entropy))
        dev = sequences.device
        lp, ent = torch.zeros(B, L, device=dev), torch.zeros(B, L, device=dev)
        for c0, c1, w_lp, w_ent in parts:
            lp[:, c0:c1] = w_lp
            if return_entropy:
                ent[:, c0:c1] = w_ent
        return (lp, ent) if return_entropy else lp
    # logits at positions P-1 .. P+L-2 predict completion tokens 0 .. L-1
    logits = model(input_ids=sequences, logits_to_keep=L + 1, **kwargs).logits[:, :-1]  # (B,L,V)
    lp, ent = completion_logprobs(logits, target, 0, segments, temperature, return_entropy)
    keep = segment_masks(target, segments)
    lp = torch.where(keep, lp, torch.zeros_like(lp))
    if not return_entropy:
        return lp
    return lp, torch.where(keep, ent, torch.zeros_like(ent))


def logprob_inputs(sequences: Tensor, prompt_len: int, segments: list[Segment],
                   attention_mask: Tensor | None) -> tuple[Tensor, dict]:
    """The completion ids (B,L) and the forward's mask/position keywords for
    :func:`sequence_logprobs` (its rules and errors)."""
    L = completion_length(segments)
    B, T = sequences.shape
    if T != prompt_len + L:
        raise ValueError(f"sequences have length {T}, expected prompt_len {prompt_len} + segments {L}")
    target = sequences[:, prompt_len:]
    if attention_mask is None and any(s.kind == "generate" and s.stop_ids for s in segments):
        ones = torch.ones(B, prompt_len, dtype=torch.long, device=sequences.device)
        attention_mask = torch.cat([ones, completion_attention_mask(target, segments).long()], 1)
    kwargs = {}
    if attention_mask is not None:
        if tuple(attention_mask.shape) != (B, T):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected "
                             f"(B, P+L) = {(B, T)} like sequences")
        am = attention_mask.to(sequences.device).long()
        kwargs = {"attention_mask": am, "position_ids": positions_from_mask(am)}
    return target, kwargs


def completion_logprobs(logits: Tensor, target: Tensor, col0: int, segments: list[Segment],
                        temperature: float, return_entropy: bool) -> tuple[Tensor, Tensor | None]:
    """Log-probs (B,n) (and entropies (B,n) when ``return_entropy``, else None) of completion
    columns [col0, col0+n) from the logits (B,n,V) that predict them, under each segment's vocab
    mask and ``temperature``; 0 on forced columns. ``target``: the whole completion (B,L)."""
    B, n = logits.shape[:2]
    out, ents, start = [], [], 0
    for seg in segments:
        a, b = max(start, col0), min(start + seg.length, col0 + n)
        start += seg.length
        if a >= b:
            continue
        sl = slice(a - col0, b - col0)
        if seg.kind == "force":
            out.append(torch.zeros(B, b - a, device=logits.device))
            ents.append(torch.zeros(B, b - a, device=logits.device))
        else:
            logp = F.log_softmax(_mask_logits(logits[:, sl], seg.allowed) / temperature, -1)
            out.append(logp.gather(-1, target[:, a:b, None]).squeeze(-1))
            if return_entropy:
                ents.append(_entropy_from_logprobs(logp))
    return torch.cat(out, 1), (torch.cat(ents, 1) if return_entropy else None)
