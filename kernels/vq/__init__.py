"""Nearest-code search for vector quantisation.

    from kernels.vq import nearest_code, quantize
    idx, sq_dist = nearest_code(x, codebook)      # x (N,D), codebook (K,D)
    out = quantize(x, codebook)                   # + gathered codes and squared errors
    commit = out.sq_err_sum / x.numel()           # = F.mse_loss(x, codebook[idx])

One entry point per operation: the fused Triton kernel on CUDA (Triton installed), or on CPU
under Triton's interpreter when switched on (``kernels.set_interpreter(True)`` /
``interpret=True``, with ``TRITON_INTERPRET=1``; tests only), and the chunked torch reference
otherwise. Outputs carry no gradient (indices are discrete); do the straight-through /
codebook-loss terms in the caller, e.g. with ``codebook[idx]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from kernels._runtime import use_triton
from kernels.vq.reference import nearest_code_reference


class VQOutput(NamedTuple):
    """indices (N,) int64; codes (N,D) = codebook[indices] in x's dtype; sq_dist (N,) float32
    (expansion ||x||^2-2x.c+||c||^2); sq_err (N,) float32 (exact ||x-c||^2); sq_err_sum ()."""

    indices: torch.Tensor
    codes: torch.Tensor
    sq_dist: torch.Tensor
    sq_err: torch.Tensor
    sq_err_sum: torch.Tensor


def _check(x: torch.Tensor, codebook: torch.Tensor) -> None:
    if x.ndim != 2 or codebook.ndim != 2 or x.shape[1] != codebook.shape[1]:
        raise ValueError(f"expected x (N,D) and codebook (K,D), got {tuple(x.shape)} and "
                         f"{tuple(codebook.shape)}")
    if codebook.shape[0] == 0:
        raise ValueError("codebook is empty (K=0)")


def _triton_ok(x: torch.Tensor, codebook: torch.Tensor, interpret: bool | None) -> bool:
    return (x.shape[0] > 0 and x.dtype == codebook.dtype
            and max(x.numel(), codebook.numel()) < 2**31  # int32 offsets in the kernel
            and x.dtype in (torch.float32, torch.float16, torch.bfloat16)
            and x.device == codebook.device and use_triton(x, codebook, interpret=interpret))


@torch.no_grad()
def nearest_code(x: torch.Tensor, codebook: torch.Tensor, *,
                 interpret: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices (N,) int64, squared distances (N,) float32) of the nearest code per row."""
    _check(x, codebook)
    if _triton_ok(x, codebook, interpret):
        from kernels.vq.triton_vq import vq_triton

        return vq_triton(x.detach(), codebook.detach())
    return nearest_code_reference(x.detach(), codebook.detach())


@torch.no_grad()
def quantize_reference(x: torch.Tensor, codebook: torch.Tensor) -> VQOutput:
    """Torch path of ``quantize``: chunked search, then gather and exact squared error."""
    _check(x, codebook)
    idx, dist = nearest_code_reference(x, codebook)
    codes = codebook.index_select(0, idx).to(x.dtype)  # (N,D)
    err = (x.float() - codes.float()).pow(2).sum(1)  # (N,)
    return VQOutput(idx, codes, dist, err, err.sum())


@torch.no_grad()
def quantize(x: torch.Tensor, codebook: torch.Tensor, *,
             interpret: bool | None = None) -> VQOutput:
    """Nearest code, gathered codes and squared errors in one fused pass (see ``VQOutput``)."""
    _check(x, codebook)
    if _triton_ok(x, codebook, interpret):
        from kernels.vq.triton_vq import vq_triton

        idx, dist, codes, err = vq_triton(x.detach(), codebook.detach(), with_codes=True)
        return VQOutput(idx, codes, dist, err, err.sum())
    return quantize_reference(x.detach(), codebook.detach())


__all__ = ["VQOutput", "nearest_code", "nearest_code_reference", "quantize", "quantize_reference"]
