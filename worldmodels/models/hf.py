"""The ``hf`` family: any local Hugging Face causal-LM directory, loaded strictly, never downloaded.

    from worldmodels.models.hf import load_backbone
    model = load_backbone("runs/wm/backbone")          # a plain directory or a LoRA adapter dir

``load_backbone`` reads ``config.json`` + weights with ``AutoModelForCausalLM`` and
``local_files_only=True``; it passes ``attn_implementation`` only when asked for one (models
without attention, e.g. RWKV, reject "sdpa"). A ``.gguf`` file loads through transformers'
GGUF reader, dequantized into a plain trainable model (``models/gguf.py``). A directory written by
``worldmodels.models.lora.export(..., merge=False)`` (a peft adapter plus ``lora_base.json``)
loads as its base backbone with the adapter attached. Importing this module does not import torch.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def resolve_attn_implementation(name: str | None) -> str | None:
    """None / "sdpa" / "eager" pass through; "wm_triton" registers our Triton kernel (CUDA
    only) and falls back to "sdpa" with a warning when that is not possible."""
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


def load_backbone(directory: str | Path, attn_implementation: str | None = None, device=None,
                  dtype=None):
    """A transformers causal LM (``AutoModelForCausalLM``) from a local ``save_pretrained``
    directory (never downloads; safetensors, or ``torch.load(weights_only=True)`` for ``.bin``),
    or a base backbone with its LoRA adapter from a ``lora.export(merge=False)`` directory, or
    a ``.gguf`` file (:func:`worldmodels.models.gguf.load_gguf_backbone`: dequantized into
    ``dtype``, float32 by default for quantized files; needs the gguf package).

    ``attn_implementation``: None = transformers' default for that model; "wm_triton" falls
    back to "sdpa" without CUDA. Strict: a weight that is missing from the files (which
    transformers would initialise at random), unexpected, or of another shape raises
    :class:`~worldmodels.strict_load.WeightsMismatch` naming ``directory`` and the keys. Only
    the output embedding of a model that really ties it to the input embedding may be absent;
    files holding a distinct ``lm_head.weight`` under a tying config load untied, as saved.
    A ``config.json`` whose ``model_type`` is in ``worldmodels.models.MODEL_TYPE_LOADERS``
    (RWKV-7: ours and fla's) goes to that family's own strict loader instead.
    Raises FileNotFoundError when ``directory`` has no ``config.json`` (nor an adapter), naming
    the ``.gguf`` files it holds, if any.
    """
    from worldmodels.models import gguf, lora

    d = Path(directory)
    if gguf.is_gguf(d):
        return gguf.load_gguf_backbone(d, attn_implementation, device=device, dtype=dtype)
    if lora.is_adapter_dir(d):
        return lora.load_adapter_dir(d, attn_implementation=attn_implementation, device=device,
                                     dtype=dtype)
    if not (d / "config.json").is_file():
        ggufs = sorted(p.name for p in d.glob("*.gguf")) if d.is_dir() else []
        hint = f"; for a GGUF file pass its path, e.g. {d / ggufs[0]}" if ggufs else ""
        raise FileNotFoundError(f"{d}: no backbone here (expected config.json + model.safetensors "
                                f"written by save_pretrained, a LoRA adapter with "
                                f"{lora.BASE_FILE}, or a .gguf file){hint}")
    loader = _model_type_loader(d)
    if loader is not None:  # e.g. RWKV-7 (ours or fla's): a loader of its own, strict too
        return loader(d, device=device, dtype=dtype)
    from transformers import AutoModelForCausalLM

    from worldmodels.strict_load import check_loading_info

    kw = {}
    attn = resolve_attn_implementation(attn_implementation)
    if attn is not None:
        kw["attn_implementation"] = attn
    model, info = AutoModelForCausalLM.from_pretrained(
        d, local_files_only=True, dtype=dtype, output_loading_info=True,
        ignore_mismatched_sizes=True, weights_only=True, **kw)
    check_loading_info(info, d, type(model).__name__)
    return model.to(device) if device is not None else model


def _model_type_loader(d: Path):
    """The loader ``worldmodels.models.CONFIG_KEY_LOADERS`` names for a key of
    ``d/config.json``, else the one ``MODEL_TYPE_LOADERS`` names for its model_type, or None
    (transformers' Auto classes then load it)."""
    import importlib
    import json

    from worldmodels.models import CONFIG_KEY_LOADERS, MODEL_TYPE_LOADERS

    try:
        raw = json.loads((d / "config.json").read_text())
        kind = raw.get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    target = next((t for key, t in CONFIG_KEY_LOADERS.items() if raw.get(key)), None)
    target = target or (MODEL_TYPE_LOADERS.get(kind) if isinstance(kind, str) else None)
    if target is None:
        return None
    mod, fn = target.split(":", 1)
    return getattr(importlib.import_module(mod), fn)


def vocab_capacity(model) -> int:
    """Token ids the model can read and predict: min(input rows, output rows) of its embeddings
    (``config.vocab_size`` when it has no embedding modules to ask)."""
    sizes = []
    for get in ("get_input_embeddings", "get_output_embeddings"):
        try:
            mod = getattr(model, get)()
        except (AttributeError, NotImplementedError):
            mod = None
        w = getattr(mod, "weight", None)
        if w is not None:
            sizes.append(int(w.shape[0]))
    return min(sizes) if sizes else int(model.config.vocab_size)


def from_config(cfg, vocab_size: int):
    """The ``hf`` family's entry in ``BACKBONES``: load ``cfg.path``; its vocabulary must cover
    ``vocab_size`` ids, or be grown to it when ``cfg.resize_embeddings`` (logged). Raises
    ValueError naming ``model.path`` otherwise, and when grown embeddings would stay frozen
    under LoRA (they must be in ``model.lora.modules_to_save``)."""
    model = load_backbone(cfg.path, cfg.attn_implementation)
    have = vocab_capacity(model)
    if have < vocab_size:
        if not cfg.resize_embeddings:
            raise ValueError(f"model.path={cfg.path}: the backbone reads {have} token ids but the "
                             f"task needs {vocab_size}; pass model.resize_embeddings=true to grow "
                             f"its embeddings (the new rows start untrained)")
        log.warning("model.path=%s: resizing the embeddings from %d to %d token ids (new rows "
                    "untrained)", cfg.path, have, vocab_size)
        if cfg.lora.enabled and not _embeddings_in(model, cfg.lora.modules_to_save or ()):
            raise ValueError("model.resize_embeddings grew the vocabulary; with LoRA the new rows "
                             "would stay untrained: add the input and output embedding modules "
                             "(e.g. embed_tokens, lm_head) to model.lora.modules_to_save")
        model.resize_token_embeddings(vocab_size)
    return model


def _embeddings_in(model, modules_to_save) -> bool:
    """Whether the input and output embedding modules' names are all in ``modules_to_save``."""
    emb = (model.get_input_embeddings(), model.get_output_embeddings())
    names = {n.split(".")[-1] for n, m in model.named_modules() if any(m is e for e in emb)}
    return bool(names) and names <= set(modules_to_save)


def count_params(model, exclude_embeddings: bool = False) -> int:
    """Number of parameters (every tensor once), optionally without the input/output embeddings."""
    n = sum(p.numel() for p in model.parameters())
    if exclude_embeddings:
        n -= model.get_input_embeddings().weight.numel() + model.get_output_embeddings().weight.numel()
    return n


def enable_gradient_checkpointing(model) -> None:
    """Recompute each layer's activations in the backward pass instead of storing them
    (transformers' activation checkpointing, non-reentrant, so frozen-base LoRA models work).
    Only active in training mode with gradients on; sampling keeps its KV cache. Raises
    ValueError naming the model class when it does not support it."""
    inner = getattr(model, "module", model)  # DDP / FSDP wrappers
    if not getattr(inner, "supports_gradient_checkpointing", False):  # peft forwards the lookup
        raise ValueError(f"{type(inner).__name__} does not support gradient checkpointing "
                         f"(set gradient_checkpointing=false)")
    kwargs = {"use_reentrant": False}
    if hasattr(inner, "activation_checkpointing_enable"):  # transformers >= 5.x name
        inner.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
