"""Attention entry point: Triton FlashAttention where it can run, torch SDPA otherwise.

    from kernels.attention import attention
    o = attention(q, k, v, causal=True)      # q (B,H,N,D), k/v (B,Hkv,N,D) -> (B,H,N,D)

Two differentiable wrappers around the same kernels:

* ``FlashAttentionFunction`` (``torch.autograd.Function``), used in eager mode;
* ``torch.ops.wm_kernels.flash_attn`` (``torch.library.custom_op`` with ``register_fake`` and
  ``register_autograd``), used while ``torch.compile`` traces, so the kernel is an opaque
  node in the graph instead of a graph break.

Dispatch (see ``kernels._runtime``): Triton on CUDA for fp16/bf16 and head dims 16..256
(powers of two); under the CPU interpreter (tests) also fp32; causal needs Nq == Nk.
Everything else, including fp32 on CUDA, goes to ``F.scaled_dot_product_attention``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kernels._runtime import HAS_TRITON, interpreting, use_triton
from kernels.attention.reference import check_shapes

_HALF = (torch.float16, torch.bfloat16)


def _launch_fwd(q, k, v, causal, scale):
    from kernels.attention.triton_fwd import flash_attn_fwd

    return flash_attn_fwd(q, k, v, causal, scale)


def _launch_bwd(do, q, k, v, o, lse2, causal, scale):
    from kernels.attention.triton_bwd import flash_attn_bwd

    return flash_attn_bwd(do, q, k, v, o, lse2, causal, scale)


class FlashAttentionFunction(torch.autograd.Function):
    """Eager autograd wrapper: forward saves (q, k, v, o, lse2); backward runs the bwd kernels."""

    @staticmethod
    def forward(ctx, q, k, v, causal: bool, scale: float):
        o, lse2 = _launch_fwd(q, k, v, causal, scale)
        ctx.save_for_backward(q, k, v, o, lse2)
        ctx.causal, ctx.scale = causal, scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse2 = ctx.saved_tensors
        dq, dk, dv = _launch_bwd(do, q, k, v, o, lse2, ctx.causal, ctx.scale)
        return dq, dk, dv, None, None


# ---- torch.library custom op (what torch.compile sees) --------------------------------------
@torch.library.custom_op("wm_kernels::flash_attn_fwd", mutates_args=())
def flash_attn_fwd_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool,
                      scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward kernel as an op: (o (B,H,Nq,D), lse2 (B,H,Nq) float32; not differentiable)."""
    return _launch_fwd(q, k, v, causal, scale)


@flash_attn_fwd_op.register_fake
def _(q, k, v, causal, scale):
    b, h, n, d = q.shape
    o = q.new_empty(b, n, h, d).transpose(1, 2)  # same (B,Nq,H,D) storage order as the kernel
    return o, q.new_empty(b, h, n, dtype=torch.float32)


@torch.library.custom_op("wm_kernels::flash_attn_bwd", mutates_args=())
def flash_attn_bwd_op(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      o: torch.Tensor, lse2: torch.Tensor, causal: bool,
                      scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backward kernels as an op: (dq, dk, dv)."""
    return _launch_bwd(do, q, k, v, o, lse2, causal, scale)


@flash_attn_bwd_op.register_fake
def _(do, q, k, v, o, lse2, causal, scale):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx, inputs, output):
    q, k, v, causal, scale = inputs
    o, lse2 = output
    ctx.save_for_backward(q, k, v, o, lse2)
    ctx.causal, ctx.scale = causal, scale


def _op_backward(ctx, do, _dlse2):
    q, k, v, o, lse2 = ctx.saved_tensors
    dq, dk, dv = flash_attn_bwd_op(do, q, k, v, o, lse2, ctx.causal, ctx.scale)
    return dq, dk, dv, None, None


flash_attn_fwd_op.register_autograd(_op_backward, setup_context=_setup_context)


# ---- public entry point ------------------------------------------------------------------------
def triton_supports(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool,
                    interpret: bool | None = None) -> bool:
    """True when ``attention`` would run the Triton kernel for these inputs."""
    if not HAS_TRITON or not use_triton(q, k, v, interpret=interpret):
        return False
    dtypes = _HALF + ((torch.float32,) if interpreting() else ())
    d = q.shape[-1]
    return (q.dtype in dtypes and d in (16, 32, 64, 128, 256) and q.shape[2] > 0
            and (not causal or q.shape[2] == k.shape[2])
            and max(q.numel(), k.numel()) < 2**31)  # kernels index with int32 offsets


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True,
              scale: float | None = None, *, interpret: bool | None = None) -> torch.Tensor:
    """Scaled dot-product attention, (B,H,Nq,D) x (B,Hkv,Nk,D) -> (B,H,Nq,D) in q's dtype.

    ``causal`` is top-left aligned (query i sees keys <= i), as in SDPA. ``scale`` defaults
    to 1/sqrt(D). ``interpret`` forces the CPU-interpreter path on/off for CPU tensors
    (default: ``kernels.set_interpreter`` / ``WM_KERNELS_INTERPRET``).
    """
    group = check_shapes(q, k, v)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if triton_supports(q, k, v, causal, interpret):
        if torch.compiler.is_compiling():
            return flash_attn_fwd_op(q, k, v, causal, scale)[0]
        return FlashAttentionFunction.apply(q, k, v, causal, scale)
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale,
                                          enable_gqa=group > 1)
