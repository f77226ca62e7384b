"""Fused nearest-code search (Triton): running argmin over codebook tiles, gather, sq-error.

One program owns BLOCK_N input vectors. It streams the codebook in tiles of BLOCK_K codes,
scores each tile as ``||c||^2 - 2 x.c`` (``||x||^2`` is constant per row, added at the end),
and keeps a running (min, argmin) per row in registers, so the N x K distance matrix never
exists in memory: memory is O(N + K) (inputs, outputs, one tile per program). With
``WITH_CODES`` the chosen codes are gathered in the same program and the exact squared error
``||x - c||^2`` of each row is stored (the commitment-loss term). Ties keep the smallest
index (strict ``<`` across tiles, first index inside a tile).

fp32 inputs use ``PRECISION="tf32x3"`` on GPU: three TF32 tensor-core products that recover
close to fp32 accuracy (plain TF32 would flip near-ties against the fp32 reference, and the
IEEE fp32 dot spills registers badly on sm_90, see ``benchmarks/kernels_aot_check.py``);
fp16/bf16 inputs use tensor cores with fp32 accumulation. The input block stays in
registers for the whole codebook loop, so very wide vectors (D > 128) spill; VQ latents are
usually 4-64 wide.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _vq_kernel(X, C, IDX, DIST, CODES, ERR, N, K, D,
               sxn, sxd, scn, scd, son, sod,
               BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr,
               WITH_CODES: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    dims = tl.arange(0, BLOCK_D)
    row_ok = rows < N
    dim_ok = dims < D
    x = tl.load(X + rows[:, None] * sxn + dims[None, :] * sxd,
                mask=row_ok[:, None] & dim_ok[None, :], other=0.0)  # (BLOCK_N, BLOCK_D)
    if UPCAST:
        x = x.to(tl.float32)
    xf = x.to(tl.float32)
    x_sq = tl.sum(xf * xf, 1)  # (BLOCK_N,)
    best = tl.full([BLOCK_N], float("inf"), dtype=tl.float32)
    best_i = tl.zeros([BLOCK_N], dtype=tl.int32)
    offs_k = tl.arange(0, BLOCK_K)
    for start_k in range(0, K, BLOCK_K):
        ks = start_k + offs_k
        k_ok = ks < K
        ct = tl.load(C + dims[:, None] * scd + ks[None, :] * scn,
                     mask=dim_ok[:, None] & k_ok[None, :], other=0.0)  # (BLOCK_D, BLOCK_K)
        if UPCAST:
            ct = ct.to(tl.float32)
        cf = ct.to(tl.float32)
        c_sq = tl.sum(cf * cf, 0)  # (BLOCK_K,)
        d = c_sq[None, :] - 2.0 * tl.dot(x, ct, input_precision=PRECISION)  # (BLOCK_N, BLOCK_K)
        d = tl.where(k_ok[None, :], d, float("inf"))
        tile_min = tl.min(d, 1)
        tile_arg = tl.argmin(d, 1)
        better = tile_min < best
        best_i = tl.where(better, tile_arg.to(tl.int32) + start_k, best_i)
        best = tl.where(better, tile_min, best)
    tl.store(IDX + rows, best_i.to(tl.int64), mask=row_ok)
    tl.store(DIST + rows, tl.maximum(x_sq + best, 0.0), mask=row_ok)
    if WITH_CODES:
        mask2 = row_ok[:, None] & dim_ok[None, :]
        code = tl.load(C + best_i[:, None] * scn + dims[None, :] * scd, mask=mask2, other=0.0)
        if UPCAST:
            code = code.to(tl.float32)
        diff = xf - code.to(tl.float32)
        tl.store(ERR + rows, tl.sum(diff * diff, 1), mask=row_ok)
        tl.store(CODES + rows[:, None] * son + dims[None, :] * sod,
                 code.to(CODES.dtype.element_ty), mask=mask2)


def _blocks(n: int, k: int, d: int, interpret: bool) -> tuple[int, int, int, int]:
    """(BLOCK_N, BLOCK_K, num_warps, num_stages): one fixed config per width (no spills on
    sm_90 up to D=64 for fp32 and D=128 for half; not tuned by timing yet)."""
    if interpret:
        return (min(128, max(16, triton.next_power_of_2(n))),
                min(128, max(16, triton.next_power_of_2(k))), 4, 1)
    if d <= 64:
        return 128, 64, 8, 3
    if d <= 128:
        return 64, 64, 8, 2
    return 64, 32, 8, 2


def vq_triton(x: torch.Tensor, codebook: torch.Tensor, with_codes: bool = False,
              block_n: int | None = None, block_k: int | None = None):
    """Run the fused kernel. x (N,D), codebook (K,D), same dtype.

    Returns (indices (N,) int64, sq_dist (N,) float32) and, with ``with_codes``, also
    (codes (N,D) in x's dtype, sq_err (N,) float32 = exact ||x - codes||^2 per row).
    """
    from kernels._runtime import interpreting

    n, d = x.shape
    k = codebook.shape[0]
    interp = interpreting()
    bn, bk, warps, stages = _blocks(n, k, d, interp)
    bn, bk = block_n or bn, block_k or bk
    bd = max(16, triton.next_power_of_2(d))
    upcast = bool(interp and x.dtype == torch.bfloat16)
    idx = torch.empty(n, device=x.device, dtype=torch.int64)
    dist = torch.empty(n, device=x.device, dtype=torch.float32)
    code_dtype = torch.float32 if upcast else x.dtype  # interpreter truncates bf16 stores
    codes = torch.empty((n, d) if with_codes else (1, 1), device=x.device, dtype=code_dtype)
    err = torch.empty(n if with_codes else 1, device=x.device, dtype=torch.float32)
    _vq_kernel[(triton.cdiv(n, bn),)](
        x, codebook, idx, dist, codes, err, n, k, d,
        *x.stride(), *codebook.stride(), *codes.stride(),
        BLOCK_N=bn, BLOCK_K=bk, BLOCK_D=bd, WITH_CODES=with_codes, UPCAST=upcast,
        PRECISION="tf32x3" if x.dtype == torch.float32 else "tf32",
        num_warps=warps, num_stages=stages)
    if with_codes:
        return idx, dist, codes.to(x.dtype), err
    return idx, dist
