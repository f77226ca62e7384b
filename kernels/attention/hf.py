"""Register the Triton attention with transformers (>= 5) under a name without "flash".

    from kernels.attention import register_with_transformers
    register_with_transformers()                                   # name "wm_triton"
    model = LlamaForCausalLM(config)  # with config._attn_implementation = "wm_triton", or
    model = AutoModelForCausalLM.from_config(config, attn_implementation="wm_triton")

Two registrations are needed: the attention function (``AttentionInterface``) and the mask
builder (``AttentionMaskInterface``, here transformers' own ``sdpa_mask``). ``sdpa_mask``
returns ``None`` exactly when the mask is a plain causal mask with no padding (and for
single-token decode steps); only then, and only when q_len == k_len > 1 (prefill/training,
no KV cache), no dropout and no extra bias, is the kernel used. Every other call (padded
batches, decode steps, prefill into a non-empty cache, CPU without the interpreter switch)
goes to transformers' ``sdpa_attention_forward`` unchanged.

``CALLS`` counts both outcomes so tests can prove which path ran.
"""

from __future__ import annotations

from collections import Counter

import torch

CALLS: Counter = Counter()  # {"triton": n, "sdpa": n}
DEFAULT_NAME = "wm_triton"


def wm_attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                         value: torch.Tensor, attention_mask: torch.Tensor | None,
                         dropout: float = 0.0, scaling: float | None = None,
                         is_causal: bool | None = None, **kwargs):
    """transformers attention function: q (B,H,Nq,D), k/v (B,Hkv,Nk,D) -> ((B,Nq,H,D), None)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from kernels.attention.dispatch import (
        FlashAttentionFunction,
        flash_attn_fwd_op,
        triton_supports,
    )

    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    q_len, k_len = query.shape[2], key.shape[2]
    plain_causal = (attention_mask is None and causal and q_len == k_len and q_len > 1
                    and not dropout and kwargs.get("position_bias") is None
                    and kwargs.get("softcap") is None and kwargs.get("cache") is None
                    and not kwargs.get("output_attentions", False))
    if not (plain_causal and triton_supports(query, key, value, True)):
        CALLS["sdpa"] += 1
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    CALLS["triton"] += 1
    scale = float(scaling) if scaling is not None else query.shape[-1] ** -0.5
    if torch.compiler.is_compiling():
        out = flash_attn_fwd_op(query, key, value, True, scale)[0]
    else:
        out = FlashAttentionFunction.apply(query, key, value, True, scale)  # (B,H,N,D)
    # the kernel stores o as (B,N,H,D)-contiguous, so this transpose is a free view
    return out.transpose(1, 2), None


def register_with_transformers(name: str = DEFAULT_NAME) -> str:
    """Register ``wm_attention_forward`` and ``sdpa_mask`` under ``name``; returns the name.

    The name must not contain "flash": transformers treats such names as flash-attention
    variants and applies their (different) mask and padding conventions.
    """
    if "flash" in name.lower():
        raise ValueError(f"attention implementation name {name!r} must not contain 'flash'")
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(name, wm_attention_forward)
    AttentionMaskInterface.register(name, sdpa_mask)
    return name


def default_attn_implementation(device: torch.device | str | None = None) -> str:
    """"wm_triton" (registered on the fly) when the kernel can run on ``device``, else "sdpa".

    Meant for model presets: ``attn_implementation=default_attn_implementation(device)``.
    """
    from kernels._runtime import HAS_TRITON

    dev = torch.device(device) if device is not None else (
        torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    if dev.type == "cuda" and HAS_TRITON and torch.cuda.is_available():
        return register_with_transformers(DEFAULT_NAME)
    return "sdpa"
