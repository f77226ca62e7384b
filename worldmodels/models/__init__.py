"""Modality-free backbones: a transformers Llama causal LM built from a preset, saved/loaded
with ``save_pretrained`` / ``from_pretrained``.

    from worldmodels.models import build_backbone, load_backbone
    model = build_backbone("tiny", vocab_size=4700, max_positions=1024)
    model.save_pretrained("runs/wm/backbone"); model = load_backbone("runs/wm/backbone")

Presets (parameter counts exclude embeddings, which depend on the vocabulary):
- ``tiny``: hidden 128, 4 layers, 4 heads, FFN 512 (CPU: ~0.8M + 2*V*128 params).
- ``small``: the paper's 768 hidden, 12 layers, 12 heads, FFN 3072 (~85M + embeddings; GPU).
- ``test``: hidden 32, 2 layers (unit tests).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


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


def resolve_attn_implementation(name: str) -> str:
    """"sdpa" / "eager" pass through; "wm_triton" registers our Triton kernel (CUDA only) and
    falls back to "sdpa" with a warning when that is not possible."""
    if name != "wm_triton":
        return name
    import torch

    if not torch.cuda.is_available():
        log.warning("attn_implementation=wm_triton needs CUDA; using sdpa")
        return "sdpa"
    try:
        from kernels.attention import register_with_transformers

        register_with_transformers(name="wm_triton")
        return "wm_triton"
    except Exception as e:  # kernels not built / registration failed
        log.warning("could not register wm_triton attention (%s); using sdpa", e)
        return "sdpa"


def build_backbone(preset: str | Preset, vocab_size: int, max_positions: int = 2048,
                   attn_implementation: str = "sdpa", **overrides):
    """A freshly initialised ``LlamaForCausalLM`` (untied embeddings) for ``vocab_size`` ids."""
    from transformers import LlamaConfig, LlamaForCausalLM

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
    cfg._attn_implementation = resolve_attn_implementation(attn_implementation)
    return LlamaForCausalLM(cfg)


def load_backbone(directory: str | Path, attn_implementation: str = "sdpa", device=None,
                  dtype=None):
    """A transformers causal LM (``AutoModelForCausalLM``) from a local ``save_pretrained``
    directory (never downloads; safetensors, or ``torch.load(weights_only=True)`` for ``.bin``).

    Strict: a weight that is missing from the files (which transformers would initialise at
    random), unexpected, or of another shape raises
    :class:`~worldmodels.strict_load.WeightsMismatch` naming ``directory`` and the keys. Only
    the output embedding of a model that really ties it to the input embedding may be absent;
    files holding a distinct ``lm_head.weight`` under a tying config load untied, as saved.
    Raises FileNotFoundError when ``directory`` has no ``config.json``.
    """
    from transformers import AutoModelForCausalLM

    from worldmodels.strict_load import check_loading_info

    d = Path(directory)
    if not (d / "config.json").is_file():
        raise FileNotFoundError(f"{d}: no backbone here (expected config.json + model.safetensors "
                                f"written by save_pretrained)")
    model, info = AutoModelForCausalLM.from_pretrained(
        d, local_files_only=True, attn_implementation=resolve_attn_implementation(attn_implementation),
        dtype=dtype, output_loading_info=True, ignore_mismatched_sizes=True, weights_only=True)
    check_loading_info(info, d, type(model).__name__)
    return model.to(device) if device is not None else model


def count_params(model, exclude_embeddings: bool = False) -> int:
    n = sum(p.numel() for p in model.parameters())
    if exclude_embeddings:
        n -= model.get_input_embeddings().weight.numel() + model.get_output_embeddings().weight.numel()
    return n
