"""Loading RWKV-7 weights: BlinkDL ``.pth`` files, fla Hugging Face directories and ours.

    from worldmodels.models.rwkv7_convert import load_rwkv7
    model = load_rwkv7("RWKV-x070-World-0.1B-v2.8.pth")   # BlinkDL layout, renamed
    model = load_rwkv7("fla-hub/rwkv7-0.1B-world")        # a local fla directory (model_type rwkv7)
    model = load_rwkv7("runs/wm/backbone")                # our save_pretrained (model_type wm_rwkv7)

BlinkDL -> fla names (fla ``utils/convert_from_rwkv7.py``; seeds.md §6): ``emb`` ->
``model.embeddings``; ``blocks.i.att.{receptance,key,value,output}`` -> ``{r,k,v,o}_proj``,
``ln_x`` -> ``g_norm``; ``[wavg]1`` / ``[wavg]2`` -> ``*_lora.lora.0.weight`` /
``lora.2.weight`` (transposed), ``[wav]0`` -> ``lora.2.bias``; ``blocks.0.ln0`` -> ``pre_norm``,
``ln1`` / ``ln2`` -> ``attn_norm`` / ``ffn_norm``; ``ln_out`` -> ``model.norm``; ``head`` ->
``lm_head``; layer 0's ``v0/v1/v2`` (unused by BlinkDL's own code) are dropped. Every load is
strict: a key missing from or left over in the file raises
:class:`~worldmodels.strict_load.WeightsMismatch` naming the file and the keys. Files are read
with ``torch.load(weights_only=True)`` or safetensors; nothing is downloaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from worldmodels.strict_load import WeightsMismatch, mismatch_message

BLINKDL_GNORM_EPS = 64e-5  # BlinkDL rwkv's ln_x GroupNorm epsilon (any head size)
FLA_MODEL_TYPE = "rwkv7"
_LORAS = {"w": "w_lora", "a": "a_lora", "v": "v_lora", "g": "g_lora"}
_PROJ = {"receptance": "r_proj", "key": "k_proj", "value": "v_proj", "output": "o_proj"}


def _blinkdl_name(key: str) -> tuple[str, str] | None:
    """(our name, how) for a BlinkDL key, how in {"copy", "t" (transpose), "flat" (to the
    target's shape)}; None for keys that are dropped (layer 0's v0/v1/v2)."""
    top = {"emb.weight": "model.embeddings.weight", "head.weight": "lm_head.weight",
           "ln_out.weight": "model.norm.weight", "ln_out.bias": "model.norm.bias"}
    if key in top:
        return top[key], "copy"
    m = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
    if m is None:
        return "?" + key, "copy"
    i, rest = int(m.group(1)), m.group(2)
    pre = f"model.layers.{i}."
    if i == 0 and rest in ("att.v0", "att.v1", "att.v2"):
        return None
    norms = {"ln0": "pre_norm", "ln1": "attn_norm", "ln2": "ffn_norm"}
    if (n := re.fullmatch(r"(ln[012])\.(weight|bias)", rest)) is not None:
        return pre + f"{norms[n.group(1)]}.{n.group(2)}", "copy"
    if (n := re.fullmatch(r"att\.(receptance|key|value|output)\.weight", rest)) is not None:
        return pre + f"attn.{_PROJ[n.group(1)]}.weight", "copy"
    if (n := re.fullmatch(r"att\.ln_x\.(weight|bias)", rest)) is not None:
        return pre + f"attn.g_norm.{n.group(1)}", "copy"
    if (n := re.fullmatch(r"att\.([wavg])([012])", rest)) is not None:
        lora, idx = _LORAS[n.group(1)], n.group(2)
        if idx == "0":
            return pre + f"attn.{lora}.lora.2.bias", "flat"
        return pre + f"attn.{lora}.lora.{0 if idx == '1' else 2}.weight", "t"
    if re.fullmatch(r"att\.(x_[rwkvag]|k_k|k_a|r_k)", rest):
        return pre + "attn." + rest[4:], "flat"
    if rest == "ffn.x_k":
        return pre + "ffn.x_k", "flat"
    if (n := re.fullmatch(r"ffn\.(key|value)\.weight", rest)) is not None:
        return pre + f"ffn.{n.group(1)}.weight", "copy"
    return "?" + key, "copy"


def blinkdl_config(sd: dict, source) -> dict:
    """RWKV7Config fields read off a BlinkDL state dict's shapes. Raises WeightsMismatch
    naming ``source`` when the tensors that carry the sizes are absent."""
    need = ["emb.weight", "blocks.0.att.r_k", "blocks.0.att.w1", "blocks.0.att.a1",
            "blocks.0.att.g1", "blocks.0.ffn.key.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise WeightsMismatch(f"{source}: not an RWKV-7 (x070) BlinkDL state dict: missing {missing}")
    V, C = sd["emb.weight"].shape
    H, N = sd["blocks.0.att.r_k"].shape
    layers = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    v1 = sd.get("blocks.1.att.v1", sd.get("blocks.0.att.v1"))
    cfg = dict(vocab_size=int(V), hidden_size=int(C), num_hidden_layers=layers, head_dim=int(N),
               decay_low_rank_dim=int(sd["blocks.0.att.w1"].shape[1]),
               a_low_rank_dim=int(sd["blocks.0.att.a1"].shape[1]),
               gate_low_rank_dim=int(sd["blocks.0.att.g1"].shape[1]),
               intermediate_size=int(sd["blocks.0.ffn.key.weight"].shape[0]),
               norm_bias="blocks.0.ln1.bias" in sd, norm_eps=1e-5, g_norm_eps=BLINKDL_GNORM_EPS,
               tie_word_embeddings=False)
    if v1 is not None and v1.dim() == 2:
        cfg["v_low_rank_dim"] = int(v1.shape[1])
    return cfg


def blinkdl_to_ours(sd: dict, model, source) -> dict:
    """BlinkDL tensors renamed and reshaped to ``model``'s state dict. Strict: raises
    WeightsMismatch naming ``source`` and the BlinkDL keys left over / our keys not filled."""
    target = model.state_dict()
    out, unexpected = {}, []
    for key, t in sd.items():
        named = _blinkdl_name(key)
        if named is None:
            continue
        name, how = named
        if name not in target:
            unexpected.append(key)
            continue
        if how == "t":
            t = t.t()
        elif how == "flat":
            if t.numel() != target[name].numel():
                raise WeightsMismatch(f"{source}: {key} has {tuple(t.shape)}, expected "
                                      f"{tuple(target[name].shape)} elements for {name}")
            t = t.reshape(target[name].shape)
        out[name] = t.contiguous()
    missing = [k for k in target if k not in out]
    msg = mismatch_message(source, type(model).__name__ + " (BlinkDL layout)", missing, unexpected)
    if msg:
        raise WeightsMismatch(msg)
    return out


def fla_config(raw: dict, source) -> dict:
    """Our RWKV7Config fields from an fla ``config.json`` (model_type rwkv7). Raises ValueError
    naming ``source`` for what our model does not implement (hybrid attention layers, a value
    width other than hidden_size, norm_first false)."""
    if raw.get("attn") not in (None, {}):
        raise ValueError(f"{source}: hybrid RWKV-7 + attention layers (config 'attn') are not supported")
    C = raw.get("hidden_size", 2048)
    vd = raw.get("value_dim")
    if vd is not None and any(int(x) != C for x in (vd if isinstance(vd, list) else [vd])):
        raise ValueError(f"{source}: value_dim {vd} != hidden_size {C} is not supported")
    if raw.get("norm_first", True) is not True:
        raise ValueError(f"{source}: norm_first=false is not supported (BlinkDL's layout has ln0)")
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "head_dim", "num_heads",
            "decay_low_rank_dim", "a_low_rank_dim", "v_low_rank_dim", "gate_low_rank_dim",
            "hidden_ratio", "intermediate_size", "hidden_act", "norm_bias", "norm_eps",
            "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")
    cfg = {k: raw[k] for k in keys if k in raw}
    if cfg.get("head_dim") is None and cfg.get("num_heads"):
        cfg["head_dim"] = C // cfg["num_heads"]
    cfg.pop("num_heads", None)
    return cfg


def _read_weights(d: Path) -> dict:
    from safetensors.torch import load_file

    if (d / "model.safetensors").is_file():
        return load_file(d / "model.safetensors")
    index = d / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        sd = {}
        for f in files:
            sd.update(load_file(d / f))
        return sd
    if (d / "pytorch_model.bin").is_file():
        return torch.load(d / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{d}: no model.safetensors (or index / pytorch_model.bin) here")


def _new_model(cfg):
    """An uninitialised RWKV7ForCausalLM for ``cfg`` (an RWKV7Config or its fields): its
    weights are about to be loaded."""
    from transformers.initialization import no_init_weights

    from worldmodels.models.rwkv7 import RWKV7Config, RWKV7ForCausalLM

    with no_init_weights():
        model = RWKV7ForCausalLM(cfg if isinstance(cfg, RWKV7Config) else RWKV7Config(**cfg))
    if model.config.tie_word_embeddings:  # no_init_weights skips the tying too
        model.tie_weights()
    return model


def load_blinkdl(path: str | Path, **overrides):
    """An RWKV7ForCausalLM (float32, eval mode) from a BlinkDL x070 ``.pth`` state dict;
    ``overrides`` are extra RWKV7Config fields (e.g. ``attn_mode``, ``chunk_size``). Raises
    WeightsMismatch naming the file and keys when the file does not match the layout."""
    from worldmodels.strict_load import load_state_dict_strict

    p = Path(path)
    sd = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(sd, dict):
        raise WeightsMismatch(f"{p}: expected a state dict (name -> tensor), got {type(sd).__name__}")
    model = _new_model(blinkdl_config(sd, p) | overrides)
    load_state_dict_strict(model, blinkdl_to_ours(sd, model, p), source=p)
    return model.eval()


def load_rwkv7(path: str | Path, device=None, dtype=None, **overrides):
    """An RWKV7ForCausalLM from ``path``: a BlinkDL ``.pth`` file, or a directory with
    ``config.json`` (model_type "rwkv7": fla's; "wm_rwkv7": ours) and safetensors weights.
    Strict (WeightsMismatch naming the source and keys); eval mode; moved to ``device`` /
    ``dtype`` when given. Raises FileNotFoundError for a missing path or weights and
    ValueError for another model type."""
    from worldmodels.models.rwkv7 import MODEL_TYPE
    from worldmodels.strict_load import load_state_dict_strict

    p = Path(path)
    if p.is_file() and p.suffix == ".pth":
        model = load_blinkdl(p, **overrides)
    elif (p / "config.json").is_file():
        raw = json.loads((p / "config.json").read_text())
        kind = raw.get("model_type")
        if kind == FLA_MODEL_TYPE:
            cfg = fla_config(raw, p) | overrides
        elif kind == MODEL_TYPE:
            from worldmodels.models.rwkv7 import RWKV7Config

            cfg = RWKV7Config.from_dict(raw, **overrides)
        else:
            raise ValueError(f"{p}: config.json has model_type {kind!r}, expected "
                             f"{FLA_MODEL_TYPE!r} (fla) or {MODEL_TYPE!r}")
        model = _new_model(cfg)
        load_state_dict_strict(model, _read_weights(p), source=p)
        model.eval()
    else:
        raise FileNotFoundError(f"{p}: expected a BlinkDL .pth file or a directory with "
                                f"config.json and model.safetensors (fla RWKV-7 or ours)")
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model


