"""Quantizers for video tokenizers: FSQ (finite scalar quantisation) and VQ (learned codebook).

    fsq = FSQ([7, 5, 5, 5, 5])            # 4,375 codes, code dim 5
    zq, ids, aux = fsq(z)                 # z (N,5) -> zq (N,5) in [-1,1], ids (N,) int64
    vq = VQ(codebook_size=1024, dim=64)
    zq, ids, aux = vq(z)                  # aux["loss"]: commitment (+ codebook) loss

Both quantise the last axis of ``z`` (any leading shape) and pass gradients straight through
to the encoder. ``aux`` carries the auxiliary loss (0 for FSQ), codebook usage (fraction of
codes hit in this batch) and perplexity.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from kernels.vq import nearest_code


def check_fsq_levels(levels, field: str = "fsq_levels") -> None:
    """Raise ValueError naming ``field`` unless ``levels`` is a non-empty list of integers >= 2
    (a level of 1 has no grid: FSQ's scale ``floor(L/2)`` is then 0 and codes divide by it)."""
    if not levels or any(int(v) != v or v < 2 for v in levels):
        raise ValueError(f"{field}: expected a non-empty list of integers >= 2, got {list(levels)}")


def check_vq_fields(codebook_size: int, dim: int, beta: float, decay: float,
                    restart_threshold: float, prefix: str = "vq_") -> None:
    """Raise ValueError naming the field (``prefix`` + name) of VQ settings that would crash or
    give NaN later: codebook_size >= 2, dim >= 1, finite beta >= 0, decay in (0, 1), finite
    restart_threshold."""
    if codebook_size < 2 or dim < 1:
        raise ValueError(f"{prefix}codebook_size must be >= 2 and {prefix}dim >= 1, got "
                         f"{codebook_size}, {dim}")
    if not (beta >= 0 and math.isfinite(beta)):
        raise ValueError(f"{prefix}beta (commitment weight) must be a finite number >= 0, got {beta}")
    if not 0.0 < decay < 1.0:
        raise ValueError(f"{prefix}decay must be in (0, 1), got {decay}")
    if not math.isfinite(restart_threshold):
        raise ValueError(f"{prefix}restart_threshold must be finite (<= 0 disables restarts), got "
                         f"{restart_threshold}")


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round with a straight-through gradient (identity backward)."""
    return x + (x.round() - x).detach()


def usage_stats(ids: torch.Tensor, codebook_size: int) -> dict[str, torch.Tensor]:
    """Fraction of codes used by ``ids`` and the perplexity of their histogram."""
    counts = torch.bincount(ids.reshape(-1), minlength=codebook_size).float()
    p = counts / counts.sum().clamp_min(1)
    ent = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return {"usage": (counts > 0).float().mean(), "perplexity": ent.exp()}


class FSQ(nn.Module):
    """Finite scalar quantisation (Mentzer et al. 2023): bound each channel, round to a grid.

    Channel ``i`` is bounded with ``tanh`` to ``levels[i]`` values, rounded with a
    straight-through estimator and rescaled to [-1, 1]. Codebook size is ``prod(levels)``;
    an index is the mixed-radix number of the per-channel digits (first channel fastest).
    """

    def __init__(self, levels: list[int] | tuple[int, ...], eps: float = 1e-3):
        super().__init__()
        check_fsq_levels(levels, "FSQ levels")
        levels = [int(v) for v in levels]
        if not 0.0 < eps < 1.0:  # eps >= 1 leaves no range; 0 puts an even level's offset at atanh(1)
            raise ValueError(f"FSQ eps must be in (0, 1), got {eps}")
        self.levels_list = levels
        self.eps = eps
        lv = torch.tensor(levels, dtype=torch.float32)
        basis = torch.cumprod(torch.tensor([1] + levels[:-1], dtype=torch.long), 0)
        self.register_buffer("levels", lv, persistent=False)
        self.register_buffer("basis", basis, persistent=False)
        self.register_buffer("half_width", torch.floor(lv / 2), persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels_list)

    @property
    def codebook_size(self) -> int:
        n = 1
        for v in self.levels_list:
            n *= v
        return n

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., D) in the open range that rounds to ``levels`` integer values.

        A level of 2 uses ``(1 + eps)`` (as the reference implementation does for every level):
        with ``(1 - eps)`` its shift ``atanh(0.5 / half_l)`` would be ``atanh(1/(1-eps)) = NaN``;
        its range (-1 - eps/2, eps/2) still rounds to the two values {-1, 0}. Other levels keep
        ``(1 - eps)``, so tokenizers trained with them quantise exactly as before."""
        scale = torch.where(self.levels == 2, 1 + self.eps, 1 - self.eps)
        half_l = (self.levels - 1) * scale / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """(..., D) float -> (..., D) codes on the grid, scaled to [-1, 1] (straight-through)."""
        return round_ste(self.bound(z.float())) / self.half_width

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., D) codes in [-1, 1] -> (...,) int64 indices in [0, codebook_size)."""
        digits = (codes.float() * self.half_width + self.half_width).round().long()
        return (digits * self.basis).sum(-1)

    def indices_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """(...,) int64 -> (..., D) codes in [-1, 1]."""
        digits = (ids.long().unsqueeze(-1) // self.basis) % self.levels.long()
        return (digits.float() - self.half_width) / self.half_width

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        if z.shape[-1] != self.dim:
            raise ValueError(f"FSQ{self.levels_list} expects last dim {self.dim}, got {tuple(z.shape)}")
        zq = self.quantize(z)
        ids = self.codes_to_indices(zq.detach())
        aux = {"loss": z.new_zeros(()).float(), **usage_stats(ids, self.codebook_size)}
        return zq.to(z.dtype), ids, aux


class VQ(nn.Module):
    """Vector quantisation with a learned codebook (van den Oord et al. 2017).

    Nearest code by ``kernels.vq.nearest_code`` (chunked; Triton on GPU when available).
    Loss: ``||sg(z) - e||^2 + beta ||z - sg(e)||^2``; with ``ema=True`` the codebook follows
    an exponential moving average of its assigned vectors instead and only the commitment
    term is returned. Dead-code restart: a code whose EMA usage falls below
    ``restart_threshold`` (expected assignments per batch) is re-seeded from a random recent
    encoder output (call :meth:`restart_dead_codes`, the training loop does every step).
    """

    def __init__(self, codebook_size: int, dim: int, beta: float = 0.25, ema: bool = True,
                 decay: float = 0.99, restart_threshold: float = 0.0, eps: float = 1e-5):
        super().__init__()
        check_vq_fields(codebook_size, dim, beta, decay, restart_threshold, prefix="VQ ")
        if not (eps > 0 and math.isfinite(eps)):  # 0: a code unused long enough divides 0 by 0
            raise ValueError(f"VQ eps (EMA count smoothing) must be a finite number > 0, got {eps}")
        self.codebook_size, self.dim, self.beta = codebook_size, dim, beta
        self.ema, self.decay, self.eps = ema, decay, eps
        self.restart_threshold = restart_threshold
        embed = torch.randn(codebook_size, dim) / dim**0.5
        if ema:
            self.register_buffer("embedding", embed)
            self.register_buffer("ema_sum", embed.clone())
            self.register_buffer("ema_count", torch.ones(codebook_size))
        else:
            self.embedding = nn.Parameter(embed)
        # EMA of assignments per batch, for dead-code detection (not a training quantity).
        self.register_buffer("usage_ema", torch.ones(codebook_size))
        self._recent: torch.Tensor | None = None

    @property
    def codebook(self) -> torch.Tensor:
        return self.embedding

    def indices_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """(...,) int64 -> (..., D)."""
        return F.embedding(ids.long(), self.embedding)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        if z.shape[-1] != self.dim:
            raise ValueError(f"VQ(dim={self.dim}) expects last dim {self.dim}, got {tuple(z.shape)}")
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.dim).float()  # (N,D)
        ids, _ = nearest_code(flat.detach(), self.embedding.detach().float())  # (N,)
        e = F.embedding(ids, self.embedding).float()  # (N,D), differentiable if learned
        commit = F.mse_loss(flat, e.detach())
        if self.ema:
            loss = self.beta * commit
            if self.training:
                self._ema_update(flat.detach(), ids)
        else:
            loss = F.mse_loss(e, flat.detach()) + self.beta * commit
        if self.training:
            self._track(flat.detach(), ids)
        zq = flat + (e - flat).detach()  # straight-through
        aux = {"loss": loss, **usage_stats(ids, self.codebook_size)}
        return zq.reshape(*lead, self.dim).to(z.dtype), ids.reshape(lead), aux

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, ids: torch.Tensor) -> None:
        onehot_sum = torch.zeros_like(self.ema_sum).index_add_(0, ids, flat)
        counts = torch.bincount(ids, minlength=self.codebook_size).float()
        if dist.is_available() and dist.is_initialized():  # same codebook on every rank
            dist.all_reduce(onehot_sum)
            dist.all_reduce(counts)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(onehot_sum, alpha=1 - self.decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (n + self.codebook_size * self.eps) * n
        self.embedding.copy_(self.ema_sum / smoothed.unsqueeze(1))

    @torch.no_grad()
    def _track(self, flat: torch.Tensor, ids: torch.Tensor) -> None:
        counts = torch.bincount(ids, minlength=self.codebook_size).float()
        if dist.is_available() and dist.is_initialized():  # identical dead-code sets on all ranks
            dist.all_reduce(counts)
        self.usage_ema.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        keep = flat[torch.randperm(flat.shape[0], device=flat.device)[: 4 * self.codebook_size]]
        self._recent = keep

    @torch.no_grad()
    def restart_dead_codes(self, generator: torch.Generator | None = None) -> int:
        """Re-seed codes whose usage EMA is below ``restart_threshold``; returns how many."""
        if self.restart_threshold <= 0 or self._recent is None or self._recent.shape[0] == 0:
            return 0
        dead = (self.usage_ema < self.restart_threshold).nonzero().squeeze(1)
        if dead.numel() == 0:
            return 0
        pick = torch.randint(0, self._recent.shape[0], (dead.numel(),), generator=generator,
                             device="cpu").to(self._recent.device)
        new = self._recent[pick].to(self.embedding.dtype)
        self.embedding.data[dead] = new
        if self.ema:
            self.ema_sum[dead] = new
            self.ema_count[dead] = 1.0
        self.usage_ema[dead] = self.restart_threshold * 2  # grace period before the next check
        if dist.is_available() and dist.is_initialized():  # rank 0's restarts win everywhere
            for buf in (self.embedding.data, self.usage_ema) + ((self.ema_sum, self.ema_count) if self.ema else ()):
                dist.broadcast(buf, src=0)
        return int(dead.numel())


def build_quantizer(kind: str, fsq_levels, vq_codebook_size: int, vq_dim: int, vq_beta: float,
                    vq_ema: bool, vq_decay: float, vq_restart_threshold: float) -> FSQ | VQ:
    """FSQ or VQ from tokenizer-config fields."""
    if kind == "fsq":
        return FSQ(fsq_levels)
    if kind == "vq":
        return VQ(vq_codebook_size, vq_dim, beta=vq_beta, ema=vq_ema, decay=vq_decay,
                  restart_threshold=vq_restart_threshold)
    raise ValueError(f"quantizer must be 'fsq' or 'vq', got {kind!r}")
