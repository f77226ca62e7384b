"""The ``llama`` family: a freshly initialised transformers ``LlamaForCausalLM`` from a preset.

    from worldmodels.models.llama import build_backbone
    model = build_backbone("tiny", vocab_size=4700, max_positions=1024)

Presets (parameter counts exclude embeddings, which depend on the vocabulary):
- ``tiny``: hidden 128, 4 layers, 4 heads, FFN 512 (CPU: ~0.8M + 2*V*128 params).
- ``small``: the paper's 768 hidden, 12 layers, 12 heads, FFN 3072 (~85M + embeddings; GPU).
- ``test``: hidden 32, 2 layers, 4 heads (2 KV heads), FFN 64 (unit tests).

Embeddings are untied and RoPE theta is transformers' default 10000, as iVideoGPT's
``llama_small.json`` (ARCHITECTURE.md). Importing this module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    num_key_value_heads: int | None = None


PRESETS: dict[str, Preset] = {
    "test": Preset(32, 2, 4, 64, 2),
    "tiny": Preset(128, 4, 4, 512),
    "small": Preset(768, 12, 12, 3072),
}


def build_backbone(preset: str | Preset, vocab_size: int, max_positions: int = 2048,
                   attn_implementation: str | None = "sdpa", **overrides):
    """A freshly initialised ``LlamaForCausalLM`` (untied embeddings) for ``vocab_size`` ids.

    ``attn_implementation``: "sdpa" (also for None), "eager" or "wm_triton" (see
    :func:`worldmodels.models.hf.resolve_attn_implementation`). ``overrides`` are extra
    ``LlamaConfig`` fields. Raises ValueError for an unknown preset or ``vocab_size < 1``.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    from worldmodels.models.hf import resolve_attn_implementation

    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown backbone preset {preset!r}; known: {sorted(PRESETS)}")
        preset = PRESETS[preset]
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    kw = dict(
        vocab_size=vocab_size, hidden_size=preset.hidden_size,
        intermediate_size=preset.intermediate_size, num_hidden_layers=preset.num_hidden_layers,
        num_attention_heads=preset.num_attention_heads,
        num_key_value_heads=preset.num_key_value_heads or preset.num_attention_heads,
        max_position_embeddings=max_positions, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )
    kw.update(overrides)
    cfg = LlamaConfig(**kw)
    cfg._attn_implementation = resolve_attn_implementation(attn_implementation or "sdpa")
    return LlamaForCausalLM(cfg)


def from_config(cfg, vocab_size: int):
    """The ``llama`` family's entry in ``BACKBONES``: ``build_backbone`` from a BackboneConfig."""
    return build_backbone(cfg.preset, vocab_size, cfg.max_positions, cfg.attn_implementation)
