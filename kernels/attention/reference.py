"""Plain-torch attention math: the reference every kernel is tested against.

    o = softmax(scale * q k^T + causal_mask) v

q (B,H,Nq,D); k, v (B,Hkv,Nk,D) with H % Hkv == 0 (grouped-query attention: query head h
reads kv head h // (H // Hkv)). "causal" is top-left aligned (query i sees keys j <= i), the
same convention as ``scaled_dot_product_attention(is_causal=True)``. Computed in float32 and
returned in q's dtype; memory is O(Nq*Nk), so keep it to test sizes.
"""

from __future__ import annotations

import math

import torch


def check_shapes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> int:
    """Validate (B,H,Nq,D)/(B,Hkv,Nk,D) shapes; returns the GQA group size H // Hkv."""
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"attention expects 4-D q/k/v (B,H,N,D); got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    b, h, _, d = q.shape
    if k.shape != v.shape or k.shape[0] != b or k.shape[3] != d:
        raise ValueError(f"k and v must be (B={b}, Hkv, Nk, D={d}); got k {tuple(k.shape)}, "
                         f"v {tuple(v.shape)}")
    if h % k.shape[1] != 0:
        raise ValueError(f"query heads ({h}) must be a multiple of kv heads ({k.shape[1]})")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype; got {q.dtype}, {k.dtype}, {v.dtype}")
    return h // k.shape[1]


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True,
                        scale: float | None = None, return_lse: bool = False):
    """Attention output (B,H,Nq,D) in q's dtype; with ``return_lse`` also the natural-log
    log-sum-exp of the scaled scores, (B,H,Nq) float32."""
    group = check_shapes(q, k, v)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    kf = k.float().repeat_interleave(group, dim=1)  # (B,H,Nk,D): a copy, fine for a reference
    vf = v.float().repeat_interleave(group, dim=1)
    s = scale * (q.float() @ kf.transpose(-1, -2))  # (B,H,Nq,Nk)
    if causal:
        nq, nk = q.shape[2], k.shape[2]
        keep = torch.ones(nq, nk, dtype=torch.bool, device=q.device).tril()
        s = s.masked_fill(~keep, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)  # (B,H,Nq)
    o = (torch.softmax(s, dim=-1) @ vf).to(q.dtype)
    return (o, lse) if return_lse else o
