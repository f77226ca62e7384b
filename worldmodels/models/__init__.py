"""Modality-free backbones by family, found by name with lazy imports (like ``worldmodels.tasks``).

    from worldmodels.models import BackboneConfig, make_backbone, load_backbone
    model = make_backbone(BackboneConfig(family="llama", preset="tiny"), vocab_size=4700)
    model = make_backbone(BackboneConfig(family="hf", path="runs/base_lm",
                                         lora=LoRAConfig(enabled=True, r=16)), vocab_size=32000)
    model.save_pretrained("runs/wm/backbone"); model = load_backbone("runs/wm/backbone")

Families (``BACKBONES``: name -> ``"module:function"``, the function taking
``(BackboneConfig, vocab_size)`` and returning an HF-style causal LM):
- ``llama`` (``models/llama.py``): a fresh ``LlamaForCausalLM`` from a preset (``PRESETS``).
- ``hf`` (``models/hf.py``): any local Hugging Face causal-LM directory (never downloaded).
- ``rwkv7`` (``models/rwkv7.py``): RWKV-7 from a preset, a BlinkDL ``.pth`` or an fla /
  saved directory (``path``); its cache is a constant-size recurrent state.
A new family registers a module here or with :func:`register_backbone`; the engines never
name one. LoRA (``models/lora.py``, peft) wraps any family's model.
"""

from __future__ import annotations

import importlib

from worldmodels.models.config import BackboneConfig, LoRAConfig
from worldmodels.models.hf import (
    count_params,
    enable_gradient_checkpointing,
    load_backbone,
    resolve_attn_implementation,
)
from worldmodels.models.llama import PRESETS, Preset, build_backbone

#: family name -> "module:function"; modules are imported only when a family is built
BACKBONES: dict[str, str] = {
    "llama": "worldmodels.models.llama:from_config",
    "hf": "worldmodels.models.hf:from_config",
    "rwkv7": "worldmodels.models.rwkv7:from_config",
}

#: config.json ``model_type`` -> "module:function(directory, device=, dtype=)" loading a
#: directory that transformers' Auto classes do not know (``load_backbone`` asks here first)
MODEL_TYPE_LOADERS: dict[str, str] = {
    "wm_rwkv7": "worldmodels.models.rwkv7_convert:load_rwkv7",  # ours (save_pretrained)
    "rwkv7": "worldmodels.models.rwkv7_convert:load_rwkv7",  # fla's RWKV-7 checkpoints
}

#: config.json key -> "module:function(directory, device=, dtype=)": a directory whose config
#: carries this key is loaded by that function (before MODEL_TYPE_LOADERS), e.g. a backbone
#: factorised by ``wm compress`` (its modules are rebuilt before the weights are loaded)
CONFIG_KEY_LOADERS: dict[str, str] = {
    "wm_lowrank": "worldmodels.compress.lowrank:load_lowrank",
}


def register_backbone(name: str, target: str) -> None:
    """Register family ``name`` -> ``"pkg.module:function"`` (``function(cfg, vocab_size)``)."""
    if ":" not in target:
        raise ValueError(f"backbone target must look like 'pkg.module:function', got {target!r}")
    BACKBONES[name] = target


def get_backbone_builder(family: str):
    """The ``function(cfg, vocab_size)`` of ``family`` (a registered name or ``pkg.module:fn``)."""
    target = BACKBONES.get(family, family)
    if ":" not in target:
        raise KeyError(f"unknown backbone family {family!r}; known: {sorted(BACKBONES)} "
                       f"(or pass 'pkg.module:function')")
    mod, fn = target.split(":", 1)
    return getattr(importlib.import_module(mod), fn)


def make_backbone(cfg: BackboneConfig, vocab_size: int):
    """Build or load the backbone ``cfg`` describes for ``vocab_size`` token ids, with LoRA
    adapters attached when ``cfg.lora.enabled`` (a peft model; base weights frozen).

    Raises ValueError when the model reads fewer than ``vocab_size`` ids.
    """
    from worldmodels.models.hf import vocab_capacity

    model = get_backbone_builder(cfg.family)(cfg, vocab_size)
    have = vocab_capacity(model)
    if have < vocab_size:
        raise ValueError(f"model.family={cfg.family}: the backbone reads {have} token ids, the task "
                         f"needs {vocab_size}")
    if cfg.lora.enabled:
        from worldmodels.models import lora

        model = lora.apply_lora(model, cfg.lora)
    return model


__all__ = ["BACKBONES", "CONFIG_KEY_LOADERS", "MODEL_TYPE_LOADERS", "PRESETS", "BackboneConfig", "LoRAConfig", "Preset", "build_backbone",
           "count_params", "enable_gradient_checkpointing", "get_backbone_builder", "load_backbone",
           "make_backbone", "register_backbone", "resolve_attn_implementation"]
