"""FlashAttention-2-style forward kernel (Triton): online softmax, log-sum-exp saved.

One program handles BLOCK_M query rows of one (batch, head); it streams key/value tiles of
BLOCK_N rows, keeping a running row max ``m``, row sum ``l`` and output accumulator in fp32
registers, so the (Nq x Nk) score matrix never exists in memory. Scores are kept in base 2
(``qk * scale * log2(e)``, then ``exp2``); the saved statistic is ``lse2 = m + log2(l)``
(natural LSE = lse2 * ln 2), which the backward pass uses to rebuild the probabilities.

Key tiles are visited in two stages: tiles that need no mask (fully in bounds and, when
causal, fully below the diagonal) run without ``tl.where``; the remaining diagonal/ragged
tiles apply the causal and bounds masks. Grouped-query attention is by index: query head
``h`` reads kv head ``h // GROUP``; K/V are never copied. Pointer arithmetic only (no
``make_block_ptr``), no libdevice, one fixed config (no autotune) so Triton's CPU
interpreter runs it. ``UPCAST`` converts loads to fp32 (needed for bf16 under the
interpreter, which has no bf16 arithmetic).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634
SUPPORTED_HEAD_DIMS = (16, 32, 64, 128, 256)


@triton.jit
def _fwd_inner(acc, l_i, m_i, q, k_base, v_base, skn, skd, svn, svd, offs_m, offs_n, offs_d,
               lo, hi, NK, qk_scale, BLOCK_N: tl.constexpr, MASKED: tl.constexpr,
               CAUSAL: tl.constexpr, UPCAST: tl.constexpr):
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n  # (BLOCK_N,)
        kt_ptrs = k_base + offs_d[:, None] * skd + cols[None, :] * skn  # (D, BLOCK_N)
        v_ptrs = v_base + cols[:, None] * svn + offs_d[None, :] * svd  # (BLOCK_N, D)
        if MASKED:
            kt = tl.load(kt_ptrs, mask=cols[None, :] < NK, other=0.0)
            v = tl.load(v_ptrs, mask=cols[:, None] < NK, other=0.0)
        else:
            kt = tl.load(kt_ptrs)
            v = tl.load(v_ptrs)
        if UPCAST:
            kt = kt.to(tl.float32)
            v = v.to(tl.float32)
        qk = tl.dot(q, kt) * qk_scale  # (BLOCK_M, BLOCK_N) fp32, base-2 units
        if MASKED:
            keep = cols[None, :] < NK
            if CAUSAL:
                keep = keep & (cols[None, :] <= offs_m[:, None])
            qk = tl.where(keep, qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        p = tl.math.exp2(qk - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        acc = tl.dot(p.to(v.dtype), v, acc)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _attn_fwd(Q, K, V, Out, LSE, qk_scale,
              sqb, sqh, sqn, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
              sob, soh, son, sod, slb, slh,
              H, GROUP, NQ, NK,
              HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
              CAUSAL: tl.constexpr, UPCAST: tl.constexpr):
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    hk = h // GROUP  # grouped-query attention by index
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)

    q_ptrs = Q + b * sqb + h * sqh + offs_m[:, None] * sqn + offs_d[None, :] * sqd
    q = tl.load(q_ptrs, mask=offs_m[:, None] < NQ, other=0.0)  # (BLOCK_M, D)
    if UPCAST:
        q = q.to(tl.float32)
    k_base = K + b * skb + hk * skh
    v_base = V + b * svb + hk * svh

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    full_tiles_end = (NK // BLOCK_N) * BLOCK_N
    if CAUSAL:
        hi = tl.minimum(NK, start_m + BLOCK_M)
        mid = tl.minimum(((start_m + 1) // BLOCK_N) * BLOCK_N, full_tiles_end)
    else:
        hi = NK
        mid = full_tiles_end
    # stage 1: tiles needing no mask; stage 2: diagonal / ragged tiles.
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, skn, skd, svn, svd,
                               offs_m, offs_n, offs_d, 0, mid, NK, qk_scale,
                               BLOCK_N, False, CAUSAL, UPCAST)
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, skn, skd, svn, svd,
                               offs_m, offs_n, offs_d, mid, hi, NK, qk_scale,
                               BLOCK_N, True, CAUSAL, UPCAST)

    acc = acc / l_i[:, None]
    row_ok = offs_m < NQ
    tl.store(LSE + b * slb + h * slh + offs_m, m_i + tl.math.log2(l_i), mask=row_ok)
    o_ptrs = Out + b * sob + h * soh + offs_m[:, None] * son + offs_d[None, :] * sod
    tl.store(o_ptrs, acc.to(Out.dtype.element_ty), mask=row_ok[:, None])


def default_blocks(head_dim: int, nq: int, nk: int, interpret: bool) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages): one fixed config per head dim.

    Under the interpreter every loop step costs milliseconds, so blocks are as large as the
    (small) test sequences allow. GPU configs were picked so that the sm_90 build has no
    register spills (``benchmarks/kernels_aot_check.py``); they are not tuned by timing yet.
    """
    if interpret:
        bm = min(128, max(16, triton.next_power_of_2(nq)))
        bn = min(128, max(16, triton.next_power_of_2(nk)))
        return bm, bn, 4, 1
    if head_dim <= 64:
        return 128, 64, 4, 3
    if head_dim <= 128:
        return 128, 64, 8, 3
    return 64, 32, 8, 2


def flash_attn_fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool,
                   scale: float | None = None, block_m: int | None = None,
                   block_n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the forward kernel.

    q (B,H,Nq,D), k/v (B,Hkv,Nk,D), any strides. Returns ``o`` (B,H,Nq,D) in q's dtype, stored
    as a (B,Nq,H,D)-contiguous buffer (so ``o.transpose(1, 2)`` is free), and ``lse2``
    (B,H,Nq) float32, the base-2 log-sum-exp of the scaled scores.
    """
    from kernels._runtime import interpreting

    bsz, h, nq, d = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    if d not in SUPPORTED_HEAD_DIMS:
        raise ValueError(f"head dim {d} not supported by the Triton kernel ({SUPPORTED_HEAD_DIMS})")
    if causal and nq != nk:
        raise ValueError(f"causal Triton attention needs Nq == Nk, got {nq} and {nk}")
    interp = interpreting()
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    bm, bn, warps, stages = default_blocks(d, nq, nk, interp)
    bm, bn = block_m or bm, block_n or bn
    upcast = bool(interp and q.dtype == torch.bfloat16)
    # the interpreter truncates fp32->bf16 stores; write fp32 there and round in torch (RTNE)
    out_dtype = torch.float32 if upcast else q.dtype
    o = torch.empty(bsz, nq, h, d, device=q.device, dtype=out_dtype).transpose(1, 2)  # (B,H,Nq,D)
    lse2 = torch.empty(bsz, h, nq, device=q.device, dtype=torch.float32)
    grid = (triton.cdiv(nq, bm), bsz * h)
    _attn_fwd[grid](
        q, k, v, o, lse2, scale * LOG2E,
        *q.stride(), *k.stride(), *v.stride(), *o.stride(), lse2.stride(0), lse2.stride(1),
        h, h // hkv, nq, nk,
        HEAD_DIM=d, BLOCK_M=bm, BLOCK_N=bn, CAUSAL=bool(causal),
        UPCAST=upcast, num_warps=warps, num_stages=stages,
    )
    return o.to(q.dtype), lse2
