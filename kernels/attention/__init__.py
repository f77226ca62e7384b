"""Fused attention: Triton FlashAttention-2 (forward + backward) with torch fallbacks.

    from kernels.attention import attention, register_with_transformers
    o = attention(q, k, v, causal=True)            # (B,H,N,D), k/v (B,Hkv,N,D)
    register_with_transformers("wm_triton")        # then attn_implementation="wm_triton"

See docs/kernels.md for the design and the dispatch rules.
"""

from kernels.attention.dispatch import FlashAttentionFunction, attention, triton_supports
from kernels.attention.hf import default_attn_implementation, register_with_transformers
from kernels.attention.reference import attention_reference

__all__ = ["FlashAttentionFunction", "attention", "attention_reference",
           "default_attn_implementation", "register_with_transformers", "triton_supports"]
