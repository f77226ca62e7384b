"""Backbone and LoRA configs (torch-free, so ``wm --help`` stays instant).

    model:                       # a run config's backbone section (BackboneConfig)
      family: hf                 # llama (built from a preset) | hf (a local HF directory) | ...
      path: runs/base_lm         # hf: config.json + weights (or a .gguf file), never downloaded
      lora: {enabled: true, r: 16, lora_alpha: 32, target_modules: [q_proj, v_proj]}

Field names follow peft's ``LoraConfig`` (``r``, ``lora_alpha``, ``lora_dropout``,
``target_modules``, ``bias``, ``modules_to_save``, ``use_rslora``, ``init_lora_weights``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class LoRAConfig:
    """Low-rank adapters (peft LoRA) on the backbone; the base weights stay frozen.

    enabled: wrap the backbone in LoRA adapters (only the adapters, and ``modules_to_save``,
        are trained; GRPO's reference model is then the backbone with its adapter disabled).
    r: adapter rank (peft ``r``), >= 1.
    lora_alpha: scaling numerator: the update is ``(lora_alpha / r) * B @ A`` (peft), > 0.
    lora_dropout: dropout on the adapter input while training, in [0, 1).
    target_modules: module names (suffixes) that get adapters, e.g. [q_proj, k_proj, v_proj,
        o_proj], or "all-linear" (every linear layer but the output head); null = peft's
        default for the architecture (Llama: q_proj, v_proj).
    bias: which biases are trained: "none", "all" or "lora_only" (peft ``bias``).
    modules_to_save: modules trained in full and saved with the adapter (peft
        ``modules_to_save``), e.g. [embed_tokens, lm_head] when the vocabulary was resized:
        their new rows would otherwise stay at their random initialisation.
    use_rslora: rank-stabilised scaling ``lora_alpha / sqrt(r)`` (peft ``use_rslora``).
    init_lora_weights: peft's initialisation (B = 0, so training starts at the base model);
        false draws B at random too (tests).
    merge_on_export: a world-model export merges the adapter into the base weights
        (``merge_and_unload``: a plain backbone directory anyone can load) instead of writing
        the adapter plus a record of the base backbone's path (small; needs that path later).
    """

    enabled: bool = False
    r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    target_modules: list[str] | str | None = None
    bias: Literal["none", "all", "lora_only"] = "none"
    modules_to_save: list[str] | None = None
    use_rslora: bool = False
    init_lora_weights: bool = True
    merge_on_export: bool = True

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"model.lora.r must be >= 1, got {self.r}")
        if not (self.lora_alpha > 0 and math.isfinite(self.lora_alpha)):
            raise ValueError(f"model.lora.lora_alpha must be a finite number > 0, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"model.lora.lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.bias not in ("none", "all", "lora_only"):
            raise ValueError(f"model.lora.bias must be none|all|lora_only, got {self.bias!r}")
        if isinstance(self.target_modules, (list, tuple)):
            if not self.target_modules or not all(isinstance(t, str) and t for t in self.target_modules):
                raise ValueError(f"model.lora.target_modules must be a non-empty list of module "
                                 f"names, \"all-linear\" or null, got {self.target_modules!r}")
            self.target_modules = list(self.target_modules)
        elif self.target_modules is not None and not (isinstance(self.target_modules, str)
                                                      and self.target_modules):
            raise ValueError(f"model.lora.target_modules must be a list of module names, "
                             f"\"all-linear\" or null, got {self.target_modules!r}")
        if self.modules_to_save is not None:
            self.modules_to_save = list(self.modules_to_save)


@dataclass
class BackboneConfig:
    """The causal LM (a ``worldmodels.models.BACKBONES`` family), optionally with LoRA.

    family: how the backbone is made: "llama" (a fresh ``LlamaForCausalLM`` from ``preset``),
        "hf" (any local Hugging Face causal-LM directory at ``path``, loaded strictly, never
        downloaded), another registered family, or a dotted ``pkg.module:function``.
    preset: llama: backbone size: test | tiny | small (see ``worldmodels/models/llama.py``);
        rwkv7 (without ``path``): test | tiny | small (``models/rwkv7_presets.py``, sized
        like llama's); ignored by other families.
    path: hf: the directory holding config.json + weights (``save_pretrained`` output), or a
        ``.gguf`` file (transformers' GGUF loading, dequantized into a plain trainable model;
        needs the gguf package, ``models/gguf.py``); its vocabulary must cover the task's
        (see ``resize_embeddings``); text tasks read the tokenizer from the same place. null
        for llama. rwkv7: a BlinkDL ``.pth`` file or an fla / saved RWKV-7 directory
        (``models/rwkv7_convert.py``); null builds from ``preset``.
    resize_embeddings: hf: when the directory's vocabulary is smaller than the task's, grow
        the input and output embeddings to it (``resize_token_embeddings``; the new rows start
        untrained, and with LoRA they must be in ``lora.modules_to_save``); false = an error.
    attn_implementation: attention kernel passed to transformers: "sdpa", "eager", or
        "wm_triton" (our Triton kernel, CUDA only; falls back to sdpa when unavailable);
        null = the family's default (llama: sdpa; hf: whatever transformers picks for that
        model, since non-attention models such as RWKV reject an attention kernel).
    max_positions: llama: the longest sequence the model supports (max_position_embeddings);
        other families keep their directory's own limit.
    lora: LoRAConfig (off unless ``lora.enabled``).
    """

    family: str = "llama"
    preset: str = "tiny"
    path: str | None = None
    resize_embeddings: bool = False
    attn_implementation: str | None = None
    max_positions: int = 2048
    lora: LoRAConfig = field(default_factory=LoRAConfig)

    def __post_init__(self) -> None:
        from worldmodels.models import BACKBONES
        from worldmodels.models.llama import PRESETS

        if self.family not in BACKBONES and ":" not in self.family:
            raise ValueError(f"model.family must be one of {sorted(BACKBONES)} (or "
                             f"'pkg.module:function'), got {self.family!r}")
        if self.family == "llama":
            if self.preset not in PRESETS:
                raise ValueError(f"model.preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
            if self.path is not None:
                raise ValueError(f"model.path={self.path!r} is not used by family 'llama' (it builds "
                                 f"from model.preset); use model.family=hf to load a directory")
        if self.family == "rwkv7" and self.path is None:
            from worldmodels.models.rwkv7_presets import PRESETS as RWKV7_PRESETS

            if self.preset not in RWKV7_PRESETS:
                raise ValueError(f"model.preset must be one of {sorted(RWKV7_PRESETS)} for family "
                                 f"rwkv7, got {self.preset!r}")
        if self.family == "hf" and not self.path:
            raise ValueError("model.family=hf needs model.path (a local Hugging Face causal-LM "
                             "directory with config.json and weights, or a .gguf file)")
        if self.max_positions < 1:
            raise ValueError(f"model.max_positions must be >= 1, got {self.max_positions}")
        if self.attn_implementation is not None and not self.attn_implementation:
            raise ValueError("model.attn_implementation must be a name (sdpa, eager, wm_triton) or null")
        if isinstance(self.lora, dict):
            self.lora = LoRAConfig(**self.lora)
