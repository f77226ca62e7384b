"""LoRA adapters (peft) on any backbone: apply, merge, export, and adapter state for checkpoints.

    from worldmodels.models import lora
    model = lora.apply_lora(base, LoRAConfig(enabled=True, r=8))   # a peft model; base frozen
    with model.disable_adapter():                                  # the base model (GRPO's reference)
        ...
    lora.export(model, "runs/wm/backbone", merge=True)    # merge_and_unload -> plain HF directory
    lora.export(model, "runs/wm/backbone", merge=False)   # adapter + lora_base.json naming the base
    model = load_backbone("runs/wm/backbone")             # either kind (worldmodels.models)

An adapter directory holds peft's ``adapter_config.json`` and ``adapter_model.safetensors`` and
our ``lora_base.json``: ``{"base": <absolute path of the base backbone directory or .gguf file>,
"vocab_size": <token ids after any embedding resize>}``. Loading is strict: the adapter's keys
and shapes must be exactly the model's, and its LoRA settings (r, lora_alpha, target modules,
...) those of the model it goes into (:class:`~worldmodels.strict_load.WeightsMismatch`
naming the directory otherwise). peft is imported only when a LoRA function runs.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

BASE_FILE = "lora_base.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: LoRA settings that must agree between a saved adapter and the model it is loaded into
_SETTINGS = ("r", "lora_alpha", "target_modules", "bias", "modules_to_save", "use_rslora")


def _peft():
    try:
        import peft
    except ImportError as e:  # pragma: no cover - peft is a dependency
        raise ImportError("LoRA (model.lora.enabled) needs the peft package: pip install peft") from e
    return peft


def unwrap(model):
    """The model inside a DDP / FSDP wrapper (the model itself when unwrapped)."""
    return getattr(model, "module", model)


def is_peft_model(model) -> bool:
    """True for a peft-wrapped model (a LoRA adapter attached), also inside DDP."""
    m = unwrap(model)
    return hasattr(m, "peft_config") and hasattr(m, "disable_adapter")


def is_adapter_dir(directory: str | Path) -> bool:
    """True when ``directory`` is a ``export(merge=False)`` output (holds ``lora_base.json``)."""
    return (Path(directory) / BASE_FILE).is_file()


def apply_lora(model, cfg):
    """Wrap ``model`` (an HF causal LM) in LoRA adapters per ``cfg`` (a LoRAConfig); only the
    adapters (and ``cfg.modules_to_save``) stay trainable. Draws the adapters' initial values
    from the global torch RNG. Raises ValueError naming ``model.lora`` for a bad target."""
    if is_peft_model(model):
        raise ValueError("apply_lora: the model already has a LoRA adapter")
    peft = _peft()
    pc = peft.LoraConfig(r=cfg.r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                         target_modules=cfg.target_modules, bias=cfg.bias,
                         modules_to_save=cfg.modules_to_save, use_rslora=cfg.use_rslora,
                         init_lora_weights=cfg.init_lora_weights, task_type="CAUSAL_LM")
    try:
        return _get_peft_model(model, pc)
    except ValueError as e:  # e.g. no default target modules for this architecture
        raise ValueError(f"model.lora: cannot attach LoRA to {type(model).__name__}: {e}") from e


def _get_peft_model(model, peft_config):
    with warnings.catch_warnings():  # peft reads a property transformers >= 5 deprecates
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return _peft().get_peft_model(model, peft_config)


def merged(model):
    """A plain model with the adapter merged into a *copy* of the base weights
    (``merge_and_unload``); ``model`` itself keeps training unchanged. Non-peft models pass through."""
    m = unwrap(model)
    if not is_peft_model(m):
        return m
    return copy.deepcopy(m).merge_and_unload()


def base_path(model, base: str | Path | None = None) -> Path:
    """The base backbone directory of a peft ``model``: ``base`` when given, else the path peft
    recorded (``base_model_name_or_path``, set when the base was loaded from a directory).
    Raises ValueError when neither names a directory with a config.json."""
    m = unwrap(model)
    recorded = getattr(m.peft_config[m.active_adapter], "base_model_name_or_path", None)
    p = Path(base) if base is not None else (Path(recorded) if recorded else None)
    if p is None or not ((p / "config.json").is_file() or (p.suffix == ".gguf" and p.is_file())):
        raise ValueError(f"LoRA export without merging needs the base backbone's directory (got "
                         f"{str(p) if p else 'none recorded'}); pass base=<dir with config.json "
                         f"or a .gguf file> or export with merge=True")
    return p.resolve()


def export(model, directory: str | Path, merge: bool, base: str | Path | None = None) -> Path:
    """Write ``model`` to ``directory`` so that ``load_backbone(directory)`` rebuilds it.

    merge=True: the adapter merged into the base weights (``merge_and_unload`` on a copy), a
    plain ``save_pretrained`` directory. merge=False: the peft adapter plus ``lora_base.json``
    naming the base directory (``base``, or the one the base was loaded from; see
    :func:`base_path`). A model without an adapter is saved plainly either way.
    ``directory`` should be new or empty. Returns ``directory``.
    """
    d = Path(directory)
    m = unwrap(model)
    if not is_peft_model(m) or merge:
        merged(m).save_pretrained(d)
        return d
    from worldmodels.models.hf import vocab_capacity

    src = base_path(m, base)
    save_adapter(m, d)
    record = {"base": str(src), "vocab_size": vocab_capacity(m)}
    (d / BASE_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return d


def save_adapter(model, directory: str | Path) -> None:
    """Write the adapter of a peft ``model``: ``adapter_model.safetensors`` (its trainable
    LoRA / modules_to_save tensors, peft key names) and ``adapter_config.json``."""
    from safetensors.torch import save_file

    peft = _peft()
    m, d = unwrap(model), Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = peft.get_peft_model_state_dict(m, adapter_name=m.active_adapter, save_embedding_layers=False)
    save_file({k: v.detach().contiguous().cpu().clone() for k, v in state.items()},
              str(d / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    m.peft_config[m.active_adapter].save_pretrained(str(d))


def _norm(v):
    return sorted(v) if isinstance(v, (set, list, tuple)) else v


def load_adapter_state(model, directory: str | Path) -> None:
    """Load the adapter saved by :func:`save_adapter` into the peft ``model``, strictly: keys,
    shapes and LoRA settings must match, else WeightsMismatch naming ``directory``."""
    from safetensors.torch import load_file

    from worldmodels.strict_load import WeightsMismatch, mismatch_message

    peft = _peft()
    m, d = unwrap(model), Path(directory)
    f = d / ADAPTER_WEIGHTS
    if not f.is_file():
        raise FileNotFoundError(f"{f}: missing; {d} holds no LoRA adapter (was it saved from a "
                                f"model without model.lora.enabled?)")
    name = m.active_adapter
    mine = m.peft_config[name]
    if (d / ADAPTER_CONFIG).is_file():
        saved_cfg = json.loads((d / ADAPTER_CONFIG).read_text())
        diff = [f"{k} saved {_norm(saved_cfg.get(k))!r} vs model {_norm(getattr(mine, k, None))!r}"
                for k in _SETTINGS if _norm(saved_cfg.get(k)) != _norm(getattr(mine, k, None))]
        if diff:
            raise WeightsMismatch(f"{d}: the saved LoRA adapter has other settings than the model's: "
                                  + "; ".join(diff))
    saved = load_file(str(f))
    expected = peft.get_peft_model_state_dict(m, adapter_name=name, save_embedding_layers=False)
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    shapes = [(k, saved[k].shape, expected[k].shape) for k in saved
              if k in expected and tuple(saved[k].shape) != tuple(expected[k].shape)]
    msg = mismatch_message(d, f"the {type(m).__name__} adapter", missing, unexpected, shapes)
    if msg:
        raise WeightsMismatch(msg)
    result = peft.set_peft_model_state_dict(m, saved, adapter_name=name)
    if result.unexpected_keys:  # cannot happen after the checks above; no silent partial load
        raise WeightsMismatch(mismatch_message(d, type(m).__name__, (), result.unexpected_keys))


def load_adapter_dir(directory: str | Path, attn_implementation: str | None = None, device=None,
                     dtype=None, trainable: bool = False):
    """The base backbone named by ``directory/lora_base.json`` (loaded strictly) with the
    adapter in ``directory`` attached (eval mode; adapters frozen unless ``trainable``).
    Raises FileNotFoundError / ValueError naming the file and field when the record or the
    base is unusable. Does not disturb the global RNG."""
    import torch

    from worldmodels.models.hf import load_backbone, vocab_capacity

    peft = _peft()
    d = Path(directory)
    rec_file = d / BASE_FILE
    try:
        rec = json.loads(rec_file.read_text())
        base_dir = Path(rec["base"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{rec_file}: expected {{\"base\": <base backbone dir>, \"vocab_size\": "
                         f"<int>}} ({type(e).__name__}: {e})") from e
    if not base_dir.is_absolute():
        base_dir = d / base_dir
    if not ((base_dir / "config.json").is_file() or (base_dir.suffix == ".gguf" and base_dir.is_file())):
        raise FileNotFoundError(f"{rec_file}: base backbone {base_dir} (field 'base') has no "
                                f"config.json (nor is it a .gguf file); restore it there or "
                                f"export the adapter merged")
    if not (d / ADAPTER_CONFIG).is_file():
        raise FileNotFoundError(f"{d / ADAPTER_CONFIG}: missing (not a LoRA adapter directory)")
    base = load_backbone(base_dir, attn_implementation, dtype=dtype)
    vocab = rec.get("vocab_size")
    pc = peft.LoraConfig.from_pretrained(str(d))
    pc.inference_mode = not trainable
    with torch.random.fork_rng(devices=[]):  # fresh values below are all overwritten by the adapter
        if vocab is not None and vocab_capacity(base) != int(vocab):
            # grown during training; the adapter's modules_to_save hold the trained rows
            base.resize_token_embeddings(int(vocab), mean_resizing=False)
        model = _get_peft_model(base, pc)
    load_adapter_state(model, d)
    model.eval()
    return model.to(device) if device is not None else model
