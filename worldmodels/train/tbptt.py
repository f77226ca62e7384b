"""Truncated backpropagation through time (T-BPTT) for backbones with a recurrent state.

A sequence of T tokens runs through the model in windows of W tokens. The backbone's state
(its cache: RWKV-7's :class:`~worldmodels.models.rwkv7_cache.RWKV7State`) is carried from one
window to the next and detached there, so a window's backward stores only that window's
activations: training memory is O(W), not O(T) (seeds.md §6, §8: the Among Us T-BPTT loop).

    lm = task.lm_batch(batch)
    run = WindowedLM(model, lm, window=512)
    for k in range(len(run)):
        loss_sum = run.loss_sum(k)             # summed token cross-entropy of window k
        (loss_sum / total_tokens).backward()   # frees window k's activations

Window borders. Window k feeds input positions [s, e); the loss of the label at position e
(the first token of window k+1) is predicted by window k's last logit. ``border="attached"``
(default) takes that loss in window k, where the logit's graph still lives, so it gets its
full gradient (RWKV-LM's infctx layout: inputs ``x[s:e]``, targets ``x[s+1:e+1]``).
``border="detached"`` reproduces the Among Us code (``src/utils.py::do_train``): the
previous window's last logit is kept *detached* and scored in window k+1, so that token's
loss counts in the value but sends no gradient. Either way the windows' label positions
partition 1..T-1: every label the full pass scores is scored once, the loss summed over the
windows equals the full-sequence loss in value (the carried state makes the forward exact),
and with one window (W >= T-1 attached, W >= T detached) the gradient equals full BPTT.

A backbone qualifies when the cache its forward returns has a ``detach()`` method (a state of
constant size). A KV cache (Llama) does not: windows would still attend to every earlier
key, so the cache, and memory, would grow with T -- :func:`require_recurrent` refuses it,
naming the flag.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor

from worldmodels.tasks.base import IGNORE_INDEX
from worldmodels.train.rollout_cache import cache_keyword, is_recurrent_cache, output_cache

BORDERS = ("attached", "detached")
STEPS = ("window", "sequence")


def require_recurrent(cache, model, flag: str) -> None:
    """Raise ValueError naming ``flag`` unless ``cache`` (what ``model``'s forward returned with
    ``use_cache=True``) is a recurrent state."""
    if is_recurrent_cache(cache):
        return
    name = type(getattr(model, "module", model)).__name__
    what = ("no cache" if cache is None else f"{type(cache).__name__}, a cache that grows with the "
            f"sequence (a KV cache), so windows would not save memory")
    raise ValueError(
        f"{flag}: truncated BPTT needs a backbone whose cache is a recurrent state (a cache with "
        f"detach(), e.g. model.family=rwkv7); {name} returned {what}. Unset {flag} or use a "
        f"recurrent backbone.")


def windows(length: int, window: int, border: str = "attached") -> list[tuple[int, int, int, int]]:
    """The windows of a sequence of ``length`` tokens: ``(s, e, lo, hi)`` per window, input
    positions [s, e) (at most ``window``) and the label positions [lo, hi) it scores.

    attached: inputs cover [0, length-1) (the last token predicts nothing), labels [s+1, e+1);
    detached: inputs cover [0, length), labels [max(s, 1), e) (label s from the previous
    window's detached last logit). The label ranges partition [1, length) in both."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    n_in = length - 1 if border == "attached" else length
    out = []
    for s in range(0, max(n_in, 0), window):
        e = min(s + window, n_in)
        out.append((s, e, s + 1, e + 1) if border == "attached" else (s, e, max(s, 1), e))
    return out


class WindowedLM:
    """One ``lm_batch`` (``input_ids`` (B,T), ``labels`` (B,T), optional ``attention_mask``)
    run window by window with the model's state carried and detached between windows.

    Windows must be run in order (``loss_sum(0)``, ``loss_sum(1)``, ...). Position ids come
    from the whole mask (:func:`~worldmodels.train.rollout.positions_from_mask`) and each
    window gets the mask of every position so far (B, e), as a rollout feeds it. ``flag``
    names the config field in errors. The full-pass counterpart is
    :func:`worldmodels.train.mle.token_loss_sum`.
    """

    def __init__(self, model, lm: dict, window: int, border: str = "attached",
                 flag: str = "train.tbptt_window"):
        from worldmodels.train.rollout import positions_from_mask

        self.model, self.flag, self.border = model, flag, border
        self.ids, self.labels = lm["input_ids"], lm["labels"]
        self.am = lm.get("attention_mask")
        self.pos = None if self.am is None else positions_from_mask(self.am)
        self.spans = windows(self.ids.shape[1], window, border)
        self.key = cache_keyword(model)
        self.state = None
        self.prev: Tensor | None = None  # (B,V) detached last logit (border="detached")
        self.next = 0

    def __len__(self) -> int:
        return len(self.spans)

    def loss_tokens(self, k: int) -> int:
        """Labelled positions window ``k`` scores (over the batch)."""
        _, _, lo, hi = self.spans[k]
        return int((self.labels[:, lo:hi] != IGNORE_INDEX).sum())

    def forward(self, k: int) -> Tensor:
        """Logits (B, e-s, V) of window ``k`` from the carried state; the state is then
        detached for window k+1. Raises ValueError (naming the flag) when the model's cache is
        not a recurrent state, RuntimeError when windows are skipped."""
        if k != self.next:
            raise RuntimeError(f"WindowedLM: window {k} requested, next is {self.next}")
        s, e, _, _ = self.spans[k]
        kw = {} if self.am is None else {"attention_mask": self.am[:, :e],
                                          "position_ids": self.pos[:, s:e]}
        out = self.model(input_ids=self.ids[:, s:e], use_cache=True, **{self.key: self.state}, **kw)
        state = output_cache(out)
        require_recurrent(state, self.model, self.flag)
        self.state = state.detach()  # the graph built above keeps its own references
        self.next = k + 1
        return out.logits

    def loss_sum(self, k: int) -> Tensor:
        """Summed next-token cross-entropy (float32, nats) over window ``k``'s labelled
        positions; its graph reaches only window ``k`` (0 without loss tokens)."""
        s, e, lo, hi = self.spans[k]
        logits = self.forward(k)
        if self.border == "attached":
            pred = logits  # positions s..e-1 predict labels s+1..e
        else:
            pred = logits[:, :hi - 1 - s]  # positions s..e-2 predict labels s+1..e-1
            if lo - 1 < s:  # label s from the previous window's last logit
                pred = torch.cat([self.prev[:, None].to(pred.dtype), pred], 1)
            self.prev = logits[:, -1].detach()
        tgt = self.labels[:, lo:hi]
        keep = tgt != IGNORE_INDEX
        return F.cross_entropy(pred[keep].float(), tgt[keep], reduction="sum")


def windowed_logprobs(model, sequences: Tensor, prompt_len: int, segments: list, window: int,
                      temperature: float = 1.0, attention_mask: Tensor | None = None,
                      return_entropy: bool = False, flag: str = "grpo.tbptt_window"):
    """:func:`~worldmodels.train.rollout.sequence_logprobs` window by window (GRPO's log-prob
    pass under T-BPTT, the Among Us ``reevaluate_logprobs``): the inputs (B, P+L-1) run in
    windows of ``window`` tokens with the recurrent state carried and detached; windows that
    predict no completion token run without gradient. Yields ``(c0, c1, logprobs (B,c1-c0),
    entropy (B,c1-c0) | None)`` per window that predicts completion columns [c0, c1), 0 on
    forced / post-stop columns like ``sequence_logprobs``, whose values these equal; each
    window's graph reaches only that window, so a caller can backpropagate a window's loss
    before asking for the next (memory O(window)). Raises ValueError like
    ``sequence_logprobs``, and naming ``flag`` for a KV-cache backbone."""
    from worldmodels.train.rollout import completion_logprobs, logprob_inputs, segment_masks

    if window < 1:
        raise ValueError(f"{flag} must be >= 1, got {window}")
    target, kw = logprob_inputs(sequences, prompt_len, segments, attention_mask)
    keep = segment_masks(target, segments)
    key, state, first = cache_keyword(model), None, prompt_len - 1  # position predicting column 0
    T = sequences.shape[1]
    for s in range(0, T - 1, window):
        e = min(s + window, T - 1)
        lo = max(s, first)  # positions lo..e-1 predict completion columns lo-first..e-1-first
        wkw = {} if not kw else {"attention_mask": kw["attention_mask"][:, :e],
                                 "position_ids": kw["position_ids"][:, s:e]}
        with contextlib.nullcontext() if lo < e else torch.no_grad():
            out = model(input_ids=sequences[:, s:e], use_cache=True, logits_to_keep=max(e - lo, 1),
                        **{key: state}, **wkw)
        state = output_cache(out)
        require_recurrent(state, model, flag)
        state = state.detach()
        if lo >= e:
            continue
        c0, c1 = lo - first, e - first
        lp, ent = completion_logprobs(out.logits, target, c0, segments, temperature, return_entropy)
        k = keep[:, c0:c1]
        lp = torch.where(k, lp, torch.zeros_like(lp))
        yield c0, c1, lp, (torch.where(k, ent, torch.zeros_like(ent)) if return_entropy else None)


def windowed_grpo_backward(model, cfg, c, rows: slice, attention_mask, denom: float) -> Tensor:
    """GRPO's forward/backward of chunk ``c``'s ``rows`` with ``cfg.tbptt_window`` (a
    :class:`~worldmodels.train.grpo_config.GRPOConfig`): the token-mean loss split by window
    (``normalizer=denom`` for all, so the windows' losses sum to the full one), each window's
    backward run before the next window's forward (:func:`windowed_logprobs`). Returns the
    token-weighted metric sums (clip, dual, kl, ratio, entropy, tokens) float64, as
    ``GRPOTrainer._forward_backward``."""
    from worldmodels.train.grpo_chunk import segment_rows
    from worldmodels.train.grpo_loss import grpo_loss

    ref = c.ref_logprobs[rows] if c.ref_logprobs is not None else None
    sums = torch.zeros(6, dtype=torch.float64)
    for c0, c1, logp, ent in windowed_logprobs(
            model, c.sequences[rows], c.prompt_len, segment_rows(c.segments, rows),
            cfg.tbptt_window, cfg.temperature, attention_mask, return_entropy=True):
        cols = slice(c0, c1)
        loss, m = grpo_loss(logp.float(), c.old_logprobs[rows, cols], c.advantages[rows],
                            c.loss_mask[rows, cols], ref_logprobs=None if ref is None else ref[:, cols],
                            beta=cfg.beta, epsilon=cfg.epsilon, epsilon_high=cfg.epsilon_high,
                            dual_clip=cfg.dual_clip, loss_type=cfg.loss_type, normalizer=denom,
                            entropy=(ent if cfg.entropy_coef else ent.detach()).float(),
                            entropy_coef=cfg.entropy_coef)
        loss.backward()
        t = m["tokens"]
        sums += torch.tensor([m["clip_ratio"] * t, m["dual_clip_ratio"] * t, m["kl"] * t,
                              m["ratio_mean"] * t, m["entropy"] * t, t], dtype=torch.float64)
    return sums


__all__ = ["BORDERS", "STEPS", "WindowedLM", "is_recurrent_cache", "require_recurrent", "windowed_grpo_backward",
           "windowed_logprobs", "windows"]
