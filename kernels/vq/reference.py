"""Chunked torch reference for nearest-code search (never builds an N x K matrix past a budget)."""

from __future__ import annotations

import torch


def nearest_code_reference(x: torch.Tensor, codebook: torch.Tensor, *,
                           budget_elements: int = 1 << 22) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the nearest code and its squared distance, for each row of ``x``.

    Args:
        x: (N, D) vectors.
        codebook: (K, D) codes.
        budget_elements: the largest (rows x K) distance block materialised at once.

    Returns:
        indices (N,) int64 and squared L2 distances (N,) float32, computed as
        ``||x||^2 - 2 x.c + ||c||^2`` in float32 (clamped at 0).
    """
    if x.ndim != 2 or codebook.ndim != 2 or x.shape[1] != codebook.shape[1]:
        raise ValueError(f"expected x (N,D) and codebook (K,D), got {tuple(x.shape)} and "
                         f"{tuple(codebook.shape)}")
    n, k = x.shape[0], codebook.shape[0]
    xf, cf = x.float(), codebook.float()
    c_sq = (cf * cf).sum(1)  # (K,)
    rows = max(1, budget_elements // max(k, 1))
    idx = torch.empty(n, dtype=torch.long, device=x.device)
    dist = torch.empty(n, dtype=torch.float32, device=x.device)
    for s in range(0, n, rows):
        xs = xf[s : s + rows]
        d = (xs * xs).sum(1, keepdim=True) - 2.0 * (xs @ cf.t()) + c_sq  # (rows, K)
        m, i = d.min(1)
        idx[s : s + rows] = i
        dist[s : s + rows] = m.clamp_min_(0)
    return idx, dist
