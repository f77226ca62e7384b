"""FlashAttention-2-style backward kernels (Triton): delta preprocess, dK/dV, dQ.

Given the forward's ``lse2`` (base-2 log-sum-exp per query row), the probabilities of any
tile are rebuilt as ``p = exp2(qk * scale * log2e - lse2)``; nothing of size Nq x Nk is stored.

* ``_bwd_preprocess``: ``delta_i = sum_d dO_id * O_id`` (B,H,Nq) fp32.
* ``_bwd_dkdv``: one program per (BLOCK_N keys, batch, kv head); it loops over the GROUP
  query heads that share this kv head and over their query tiles, accumulating
  ``dV += P^T dO`` and ``dK += dS^T Q`` (``dS = P * (dP - delta)``, ``dP = dO V^T``) in fp32
  registers. Summing the group inside one program gives GQA gradients without atomics or K/V
  copies.
* ``_bwd_dq``: one program per (BLOCK_M queries, batch, head), looping over key tiles:
  ``dQ += dS K``.

Out-of-range rows load as zeros (and ``lse2 = +inf``, so their probabilities are exactly 0);
only the causal mask needs ``tl.where``, and only on diagonal tiles.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from kernels.attention.triton_fwd import LOG2E


@triton.jit
def _bwd_preprocess(Out, DO, Delta, sob, soh, son, sod, sdb, sdh, sdn, sdd, H, NQ,
                    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr):
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m[:, None] < NQ
    o = tl.load(Out + b * sob + h * soh + offs_m[:, None] * son + offs_d[None, :] * sod,
                mask=row_ok, other=0.0).to(tl.float32)
    do = tl.load(DO + b * sdb + h * sdh + offs_m[:, None] * sdn + offs_d[None, :] * sdd,
                 mask=row_ok, other=0.0).to(tl.float32)
    tl.store(Delta + bh * NQ + offs_m, tl.sum(o * do, 1), mask=offs_m < NQ)


@triton.jit
def _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, sqn, sqd, sdn, sdd,
                offs_n, offs_m0, offs_d, lo, hi, NQ, qk_scale, BLOCK_M: tl.constexpr,
                MASKED: tl.constexpr, UPCAST: tl.constexpr):
    for start_m in range(lo, hi, BLOCK_M):
        rows = start_m + offs_m0  # (BLOCK_M,)
        row_ok = rows < NQ
        qt = tl.load(q_base + offs_d[:, None] * sqd + rows[None, :] * sqn,
                     mask=row_ok[None, :], other=0.0)  # (D, BLOCK_M)
        do = tl.load(do_base + rows[:, None] * sdn + offs_d[None, :] * sdd,
                     mask=row_ok[:, None], other=0.0)  # (BLOCK_M, D)
        if UPCAST:
            qt = qt.to(tl.float32)
            do = do.to(tl.float32)
        lse = tl.load(lse_base + rows, mask=row_ok, other=float("inf"))
        delta = tl.load(delta_base + rows, mask=row_ok, other=0.0)
        pt = tl.math.exp2(tl.dot(k, qt) * qk_scale - lse[None, :])  # (BLOCK_N, BLOCK_M)
        if MASKED:
            pt = tl.where(rows[None, :] >= offs_n[:, None], pt, 0.0)
        dv = tl.dot(pt.to(do.dtype), do, dv)
        dpt = tl.dot(v, tl.trans(do))  # (BLOCK_N, BLOCK_M)
        dst = pt * (dpt - delta[None, :])
        dk = tl.dot(dst.to(qt.dtype), tl.trans(qt), dk)
    return dk, dv


@triton.jit
def _bwd_dkdv(Q, K, V, DO, LSE, Delta, DK, DV, qk_scale, sm_scale,
              sqb, sqh, sqn, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
              sdb, sdh, sdn, sdd, sdkb, sdkh, sdkn, sdkd,
              H, HKV, GROUP, NQ, NK,
              HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
              CAUSAL: tl.constexpr, UPCAST: tl.constexpr):
    start_n = tl.program_id(0) * BLOCK_N
    bh = tl.program_id(1)
    b = bh // HKV
    hk = bh % HKV
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_m0 = tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)
    col_ok = offs_n[:, None] < NK
    k = tl.load(K + b * skb + hk * skh + offs_n[:, None] * skn + offs_d[None, :] * skd,
                mask=col_ok, other=0.0)  # (BLOCK_N, D)
    v = tl.load(V + b * svb + hk * svh + offs_n[:, None] * svn + offs_d[None, :] * svd,
                mask=col_ok, other=0.0)
    if UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    dk = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, HEAD_DIM], dtype=tl.float32)
    if CAUSAL:
        lo = (start_n // BLOCK_M) * BLOCK_M  # first query tile that sees any of these keys
        mid = tl.minimum(tl.cdiv(start_n + BLOCK_N - 1, BLOCK_M) * BLOCK_M, NQ)
        start2 = tl.maximum(mid, lo)  # first query tile needing no causal mask
    else:
        lo = 0
        mid = 0
        start2 = 0
    for g in range(GROUP):
        h = hk * GROUP + g
        q_base = Q + b * sqb + h * sqh
        do_base = DO + b * sdb + h * sdh
        lse_base = LSE + (b * H + h) * NQ
        delta_base = Delta + (b * H + h) * NQ
        dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, sqn, sqd,
                             sdn, sdd, offs_n, offs_m0, offs_d, lo, mid, NQ, qk_scale,
                             BLOCK_M, True, UPCAST)
        dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, lse_base, delta_base, sqn, sqd,
                             sdn, sdd, offs_n, offs_m0, offs_d, start2, NQ, NQ,
                             qk_scale, BLOCK_M, False, UPCAST)
    dk = dk * sm_scale
    out = b * sdkb + hk * sdkh + offs_n[:, None] * sdkn + offs_d[None, :] * sdkd
    tl.store(DK + out, dk.to(DK.dtype.element_ty), mask=col_ok)
    tl.store(DV + out, dv.to(DV.dtype.element_ty), mask=col_ok)


@triton.jit
def _dq_inner(dq, q, do, lse, delta, k_base, v_base, skn, skd, svn, svd, offs_m, offs_n0,
              offs_d, lo, hi, NK, qk_scale, BLOCK_N: tl.constexpr, MASKED: tl.constexpr,
              UPCAST: tl.constexpr):
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n0
        col_ok = cols[None, :] < NK
        kt = tl.load(k_base + offs_d[:, None] * skd + cols[None, :] * skn, mask=col_ok, other=0.0)
        vt = tl.load(v_base + offs_d[:, None] * svd + cols[None, :] * svn, mask=col_ok, other=0.0)
        if UPCAST:
            kt = kt.to(tl.float32)
            vt = vt.to(tl.float32)
        p = tl.math.exp2(tl.dot(q, kt) * qk_scale - lse[:, None])  # (BLOCK_M, BLOCK_N)
        if MASKED:
            p = tl.where(cols[None, :] <= offs_m[:, None], p, 0.0)
        dp = tl.dot(do, vt)
        ds = p * (dp - delta[:, None])
        dq = tl.dot(ds.to(kt.dtype), tl.trans(kt), dq)
    return dq


@triton.jit
def _bwd_dq(Q, K, V, DO, LSE, Delta, DQ, qk_scale, sm_scale,
            sqb, sqh, sqn, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
            sdb, sdh, sdn, sdd, sdqb, sdqh, sdqn, sdqd,
            H, GROUP, NQ, NK,
            HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
            CAUSAL: tl.constexpr, UPCAST: tl.constexpr):
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    hk = h // GROUP
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_n0 = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    row_ok = offs_m < NQ
    q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqn + offs_d[None, :] * sqd,
                mask=row_ok[:, None], other=0.0)
    do = tl.load(DO + b * sdb + h * sdh + offs_m[:, None] * sdn + offs_d[None, :] * sdd,
                 mask=row_ok[:, None], other=0.0)
    if UPCAST:
        q = q.to(tl.float32)
        do = do.to(tl.float32)
    lse = tl.load(LSE + bh * NQ + offs_m, mask=row_ok, other=float("inf"))
    delta = tl.load(Delta + bh * NQ + offs_m, mask=row_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
    k_base = K + b * skb + hk * skh
    v_base = V + b * svb + hk * svh
    if CAUSAL:
        hi = tl.minimum(NK, start_m + BLOCK_M)
        mid = tl.minimum(((start_m + 1) // BLOCK_N) * BLOCK_N, hi)
    else:
        hi = NK
        mid = NK
    dq = _dq_inner(dq, q, do, lse, delta, k_base, v_base, skn, skd, svn, svd, offs_m, offs_n0,
                   offs_d, 0, mid, NK, qk_scale, BLOCK_N, False, UPCAST)
    dq = _dq_inner(dq, q, do, lse, delta, k_base, v_base, skn, skd, svn, svd, offs_m, offs_n0,
                   offs_d, mid, hi, NK, qk_scale, BLOCK_N, True, UPCAST)
    dq = dq * sm_scale
    tl.store(DQ + b * sdqb + h * sdqh + offs_m[:, None] * sdqn + offs_d[None, :] * sdqd,
             dq.to(DQ.dtype.element_ty), mask=row_ok[:, None])


def bwd_blocks(head_dim: int, nq: int, nk: int, interpret: bool) -> tuple[int, ...]:
    """(dkdv BLOCK_M, dkdv BLOCK_N, dq BLOCK_M, dq BLOCK_N, num_warps, num_stages).

    One fixed config per head dim. GPU configs were picked so that the sm_90 build has no
    register spills (``benchmarks/kernels_aot_check.py``); they are not tuned by timing yet.
    """
    if interpret:
        bm = min(128, max(16, triton.next_power_of_2(nq)))
        bn = min(128, max(16, triton.next_power_of_2(nk)))
        return bm, bn, bm, bn, 4, 1
    if head_dim <= 64:
        return 32, 128, 128, 64, 8, 3
    if head_dim <= 128:
        return 16, 128, 128, 32, 8, 3
    return 16, 64, 64, 32, 8, 2


def flash_attn_bwd(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   o: torch.Tensor, lse2: torch.Tensor, causal: bool, scale: float | None = None,
                   blocks: tuple[int, int, int, int] | None = None):
    """Gradients (dq (B,H,Nq,D), dk (B,Hkv,Nk,D), dv (B,Hkv,Nk,D)) in the input dtype."""
    from kernels._runtime import interpreting

    bsz, h, nq, d = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    interp = interpreting()
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    m1, n1, m2, n2, warps, stages = bwd_blocks(d, nq, nk, interp)
    if blocks is not None:
        m1, n1, m2, n2 = blocks
    upcast = bool(interp and q.dtype == torch.bfloat16)
    delta = torch.empty(bsz, h, nq, device=q.device, dtype=torch.float32)
    _bwd_preprocess[(triton.cdiv(nq, m2), bsz * h)](
        o, do, delta, *o.stride(), *do.stride(), h, nq, HEAD_DIM=d, BLOCK_M=m2)
    lse2 = lse2.contiguous()
    # the interpreter truncates fp32->bf16 stores; write fp32 there and round in torch (RTNE)
    gdt = torch.float32 if upcast else q.dtype
    dq = torch.empty(q.shape, device=q.device, dtype=gdt)  # (B,H,Nq,D)
    dk = torch.empty(k.shape, device=k.device, dtype=gdt)  # (B,Hkv,Nk,D)
    dv = torch.empty(v.shape, device=v.device, dtype=gdt)
    common = (*q.stride(), *k.stride(), *v.stride(), *do.stride())
    _bwd_dkdv[(triton.cdiv(nk, n1), bsz * hkv)](
        q, k, v, do, lse2, delta, dk, dv, scale * LOG2E, scale, *common, *dk.stride(),
        h, hkv, h // hkv, nq, nk, HEAD_DIM=d, BLOCK_M=m1, BLOCK_N=n1, CAUSAL=bool(causal),
        UPCAST=upcast, num_warps=warps, num_stages=stages)
    _bwd_dq[(triton.cdiv(nq, m2), bsz * h)](
        q, k, v, do, lse2, delta, dq, scale * LOG2E, scale, *common, *dq.stride(),
        h, h // hkv, nq, nk, HEAD_DIM=d, BLOCK_M=m2, BLOCK_N=n2, CAUSAL=bool(causal),
        UPCAST=upcast, num_warps=warps, num_stages=stages)
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)
