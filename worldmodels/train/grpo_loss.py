"""GRPO loss math: group advantages, PPO-clip (asymmetric + dual-clip), k3 KL, entropy bonus,
aggregation.

Pure tensor functions, no model and no modality. The trainer (``worldmodels/train/grpo.py``)
calls them; the tests check them against numbers computed by hand::

    adv, valid, stats = group_advantages(rewards, group_size=16, scale_rewards="group")
    loss, m = grpo_loss(logp, old_logp, adv, loss_mask, ref_logprobs=ref, beta=1e-3,
                        epsilon=0.2, dual_clip=3.0, loss_type="token_mean",
                        entropy=ent, entropy_coef=1e-3)     # ent: sequence_logprobs(..., return_entropy=True)

Conventions (RLVR-World / verl, TRL knob names):
- advantage ``(r - mean_group) / (std_group + 1e-6)``, unbiased std (``scale_rewards="group"``);
  ``"batch"`` divides by the std of all valid rewards in the batch; ``"none"`` only centres.
- per-token policy loss ``max(-A*ratio, -A*clip(ratio, 1-eps, 1+eps_high))``; with dual-clip
  ``c`` and ``A < 0`` it is further capped at ``-A*c``.
- KL to the reference: k3 / "low_var_kl" ``exp(ref-logp) - (ref-logp) - 1`` clamped to [-10, 10].
- entropy bonus (verl ``entropy_coeff``; RLVR-World's text runs 1e-3, video 0): per token
  ``- entropy_coef * H_t`` with ``H_t`` the entropy of the policy's full (vocab-masked,
  temperature-scaled) distribution at that position, aggregated like the policy loss, so
  ``loss = agg(pg + beta*kl) - entropy_coef * agg(H)`` (verl: ``pg_loss - entropy_loss *
  entropy_coeff``).
- ``token_mean``: sum over unmasked tokens / number of unmasked tokens; ``sequence_mean``: mean
  per sequence, then over sequences that have any unmasked token. ``normalizer`` overrides the
  denominator (the trainer passes the global count so data-parallel ranks sum exactly).
- Precision and masked positions: everything is computed in float32 (float64 stays float64)
  whatever the inputs' dtype; masked-out positions (forced tokens, padding, excluded samples)
  are *selected* away with ``torch.where`` before any arithmetic, so NaN/inf log-probs or
  advantages there reach neither the loss, the metrics nor the gradient (``x * mask`` would:
  ``nan * 0 = nan``, also in the backward pass).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

ScaleRewards = Literal["group", "batch", "none"]
LossType = Literal["token_mean", "sequence_mean"]

STD_EPS = 1e-6
KL_CLAMP = 10.0


def _at_least_f32(dtype: torch.dtype) -> torch.dtype:
    """float32 for float16/bfloat16/float32, float64 for float64."""
    return torch.promote_types(dtype, torch.float32)


def _masked_unbiased_std(x: torch.Tensor, valid: torch.Tensor, dim: int) -> torch.Tensor:
    """Unbiased std of ``x`` over ``valid`` entries along ``dim`` (0 when fewer than 2 valid)."""
    n = valid.sum(dim, keepdim=True).to(x.dtype)
    xz = torch.where(valid, x, torch.zeros_like(x))
    mean = xz.sum(dim, keepdim=True) / n.clamp(min=1)
    sq = torch.where(valid, (x - mean) ** 2, torch.zeros_like(x)).sum(dim, keepdim=True)
    var = sq / (n - 1).clamp(min=1)
    return torch.where(n > 1, var.sqrt(), torch.zeros_like(var))


def group_advantages(
    rewards: torch.Tensor,
    group_size: int,
    scale_rewards: ScaleRewards = "group",
    valid: torch.Tensor | None = None,
    batch_std: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Group-normalised advantages.

    rewards: (N,) with N = groups * group_size, item-major (the ``group_size`` samples of one
    prompt are adjacent, as ``Task.repeat`` lays them out). valid: (N,) bool; defaults to
    ``isfinite(rewards)``; invalid samples get advantage 0 and are left out of the group's
    mean/std. batch_std: the std to use for ``scale_rewards="batch"`` (the trainer passes the
    std over all ranks); computed from ``rewards`` when None.

    Returns (advantages (N,), valid (N,) bool, stats) where stats has ``frac_reward_zero_std``
    (fraction of groups whose valid rewards have zero std, i.e. no learning signal),
    ``reward_std`` (mean over groups of the unbiased within-group std, TRL's meaning) and
    ``invalid_rewards`` (count of excluded samples).
    """
    if rewards.ndim != 1 or rewards.numel() % group_size != 0:
        raise ValueError(
            f"rewards must be 1-D with a multiple of group_size={group_size} entries, "
            f"got shape {tuple(rewards.shape)}"
        )
    if scale_rewards not in ("group", "batch", "none"):
        raise ValueError(f"scale_rewards must be 'group', 'batch' or 'none', got {scale_rewards!r}")
    r = rewards.detach().to(torch.float64)
    ok = torch.isfinite(r) if valid is None else (valid.to(torch.bool) & torch.isfinite(r))
    g = r.view(-1, group_size)  # (G, n)
    gv = ok.view(-1, group_size)
    n = gv.sum(1, keepdim=True)
    mean = torch.where(gv, g, torch.zeros_like(g)).sum(1, keepdim=True) / n.clamp(min=1)
    std = _masked_unbiased_std(g, gv, dim=1)  # (G, 1)
    centred = torch.where(gv, g - mean, torch.zeros_like(g))
    if scale_rewards == "group":
        adv = centred / (std + STD_EPS)
    elif scale_rewards == "batch":
        if batch_std is None:
            batch_std = _masked_unbiased_std(r, ok, dim=0).squeeze()
        adv = centred / (torch.as_tensor(batch_std, dtype=torch.float64) + STD_EPS)
    else:
        adv = centred
    adv = torch.where(gv & (n > 1), adv, torch.zeros_like(adv))
    zero_std = ((std.squeeze(1) <= 1e-8) | (n.squeeze(1) < 2)).to(torch.float64)
    stats = {
        "frac_reward_zero_std": float(zero_std.mean()),
        "reward_std": float(std.mean()),
        "invalid_rewards": float((~ok).sum()),
    }
    out_dtype = _at_least_f32(rewards.dtype) if rewards.is_floating_point() else torch.float32
    return adv.reshape(-1).to(out_dtype), ok, stats


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 ("low_var_kl") estimate of KL(policy || ref), clamped to [-10, 10].

    Elementwise on same-shaped tensors; NaN where both are -inf (``grpo_loss`` never passes
    masked positions here).
    """
    d = (ref_logprobs - logprobs).clamp(-20.0, 20.0)
    return (torch.exp(d) - d - 1.0).clamp(-KL_CLAMP, KL_CLAMP)


def _aggregate(per_token: torch.Tensor, mask: torch.Tensor, loss_type: LossType,
               normalizer: float | None) -> torch.Tensor:
    """(B, L) per-token losses -> scalar over ``mask`` positions, which are selected (not multiplied)."""
    maskf = mask.to(per_token.dtype)
    kept = torch.where(mask, per_token, torch.zeros_like(per_token))
    if loss_type == "token_mean":
        denom = maskf.sum().clamp(min=1.0) if normalizer is None else max(float(normalizer), 1.0)
        return kept.sum() / denom
    if loss_type == "sequence_mean":
        tok = maskf.sum(1)  # (B,)
        seq = kept.sum(1) / tok.clamp(min=1.0)
        has = tok > 0
        denom = has.sum().to(per_token.dtype).clamp(min=1.0) if normalizer is None else max(float(normalizer), 1.0)
        return torch.where(has, seq, torch.zeros_like(seq)).sum() / denom
    raise ValueError(f"loss_type must be 'token_mean' or 'sequence_mean', got {loss_type!r}")


def loss_denominator(mask: torch.Tensor, loss_type: LossType) -> float:
    """The local count ``grpo_loss`` divides by (tokens or sequences); sum it over ranks."""
    if loss_type == "token_mean":
        return float(mask.sum())
    return float((mask.sum(1) > 0).sum())


def grpo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    loss_mask: torch.Tensor,
    ref_logprobs: torch.Tensor | None = None,
    beta: float = 0.0,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    dual_clip: float | None = None,
    loss_type: LossType = "token_mean",
    normalizer: float | None = None,
    entropy: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO-clip GRPO loss (to minimise) and detached metrics.

    logprobs: (B, L) under the current policy (differentiable); old_logprobs: (B, L) from the
    rollout; advantages: (B,); loss_mask: (B, L) bool, True on generated tokens that carry loss
    (forced tokens and excluded samples are False); ref_logprobs: (B, L) under the frozen
    reference (required when ``beta > 0``). Inputs may be float16/bfloat16/float32/float64;
    the loss is float32 (float64 for float64 log-probs). Values at positions where
    ``loss_mask`` is False may be anything, NaN and +-inf included: they change neither the
    loss nor the gradient (which is exactly 0 there). entropy: (B, L) per-token entropy (nats)
    of the current policy's full distribution (``sequence_logprobs(..., return_entropy=True)``;
    differentiable when ``entropy_coef > 0``, which requires it); logged as ``entropy`` (the
    masked token mean; absent without it). Raises ValueError for mismatched shapes or a missing
    input a coefficient needs.
    """
    if logprobs.shape != old_logprobs.shape or logprobs.shape != loss_mask.shape:
        raise ValueError(
            f"logprobs {tuple(logprobs.shape)}, old_logprobs {tuple(old_logprobs.shape)} and "
            f"loss_mask {tuple(loss_mask.shape)} must have the same (B, L) shape"
        )
    if beta > 0 and ref_logprobs is None:
        raise ValueError("beta > 0 needs ref_logprobs (log-probs under the reference model)")
    if entropy_coef != 0 and entropy is None:
        raise ValueError("entropy_coef != 0 needs entropy (per-token entropy of the policy, "
                         "sequence_logprobs(..., return_entropy=True))")
    if entropy is not None and entropy.shape != logprobs.shape:
        raise ValueError(f"entropy {tuple(entropy.shape)} must have the (B, L) shape of logprobs "
                         f"{tuple(logprobs.shape)}")
    eps_hi = epsilon if epsilon_high is None else epsilon_high
    mask = loss_mask.to(torch.bool)
    dtype = _at_least_f32(logprobs.dtype)
    zero = torch.zeros(logprobs.shape, dtype=dtype, device=logprobs.device)

    def keep(x: torch.Tensor) -> torch.Tensor:  # (B, L) in ``dtype``, 0 at masked positions
        return torch.where(mask, x.to(dtype), zero)

    # Select before any arithmetic: masked positions become 0 (ratio 1, advantage 0, KL 0), so
    # NaN/inf there cannot reach the sum, and the gradient flowing back to them is exactly 0.
    lp, old = keep(logprobs), keep(old_logprobs.detach())
    adv = keep(advantages.detach().unsqueeze(1).expand(logprobs.shape))  # (B, L)
    ratio = torch.exp(lp - old)
    pg1 = -adv * ratio
    pg2 = -adv * ratio.clamp(1.0 - epsilon, 1.0 + eps_hi)
    pg = torch.maximum(pg1, pg2)
    clipped = pg2 > pg1
    dual = torch.zeros_like(mask)
    if dual_clip is not None:
        pg3 = -adv * dual_clip
        dual = (adv < 0) & (pg > pg3)
        pg = torch.where(adv < 0, torch.minimum(pg, pg3), pg)
    per_token = pg
    kl = None
    if ref_logprobs is not None:
        kl = k3_kl(lp, keep(ref_logprobs.detach()))
        if beta > 0:
            per_token = per_token + beta * kl
    ent = keep(entropy) if entropy is not None else None
    if ent is not None and entropy_coef != 0:
        per_token = per_token - entropy_coef * ent  # aggregation is linear: agg(pg) - c * agg(H)
    loss = _aggregate(per_token, mask, loss_type, normalizer)

    with torch.no_grad():
        n = mask.sum().clamp(min=1).to(torch.float64)

        def mmean(x: torch.Tensor) -> float:
            return float(torch.where(mask, x.to(torch.float64), 0.0).sum() / n)

        metrics = {
            "clip_ratio": mmean(clipped.to(torch.float64)),
            "dual_clip_ratio": mmean(dual.to(torch.float64)),
            "ratio_mean": mmean(ratio),
            "pg_loss": mmean(pg),
            "kl": mmean(kl) if kl is not None else 0.0,
            "tokens": float(mask.sum()),
        }
        if ent is not None:
            metrics["entropy"] = mmean(ent)
    return loss, metrics


def sampled_entropy(old_logprobs: torch.Tensor, loss_mask: torch.Tensor) -> float:
    """Monte-Carlo entropy estimate of the sampling distribution: mean of ``-log p`` of the
    sampled (generated) tokens. Cheap (no full-vocabulary pass); nan when nothing is generated."""
    m = loss_mask.to(torch.bool)
    if not bool(m.any()):
        return math.nan
    return float(-(old_logprobs[m].to(torch.float64)).mean())
