"""Shared RWKV-7 test fixtures: random weights in BlinkDL's ``.pth`` layout (every tensor
non-trivial, unlike the training initialisation whose output projections start at zero) and
a model of ours holding them."""

from __future__ import annotations

import torch

V = 50


def blinkdl_state_dict(C=64, H=4, L=2, vocab=V, D=16, F=128, seed=0) -> dict:
    """Random RWKV-7 (x070) weights named and shaped as BlinkDL's RWKV-LM saves them."""
    g = torch.Generator().manual_seed(seed)
    N = C // H

    def r(*s, sc=1.0):
        return torch.randn(*s, generator=g) * sc

    def u(*s, lo=0.0, hi=1.0):
        return lo + (hi - lo) * torch.rand(*s, generator=g)

    sd = {"emb.weight": r(vocab, C), "head.weight": r(vocab, C, sc=C ** -0.5),
          "ln_out.weight": 1 + r(C, sc=0.1), "ln_out.bias": r(C, sc=0.1)}
    for i in range(L):
        b = f"blocks.{i}."
        for n in (("ln0", "ln1", "ln2") if i == 0 else ("ln1", "ln2")):
            sd[b + n + ".weight"], sd[b + n + ".bias"] = 1 + r(C, sc=0.1), r(C, sc=0.1)
        for n in "rwkvag":
            sd[b + f"att.x_{n}"] = u(1, 1, C)
        for n in "wav":
            sd[b + f"att.{n}0"] = r(1, 1, C)
            sd[b + f"att.{n}1"], sd[b + f"att.{n}2"] = r(C, D, sc=0.3), r(D, C, sc=0.3)
        sd[b + "att.g1"], sd[b + "att.g2"] = r(C, D, sc=0.3), r(D, C, sc=0.3)
        sd[b + "att.k_k"] = u(1, 1, C, lo=0.5, hi=1.0)
        sd[b + "att.k_a"] = u(1, 1, C, lo=0.5, hi=1.5)
        sd[b + "att.r_k"] = r(H, N, sc=0.5)
        for n in ("receptance", "key", "value", "output"):
            sd[b + f"att.{n}.weight"] = r(C, C, sc=C ** -0.5)
        sd[b + "att.ln_x.weight"], sd[b + "att.ln_x.bias"] = 1 + r(C, sc=0.1), r(C, sc=0.1)
        sd[b + "ffn.x_k"] = u(1, 1, C)
        sd[b + "ffn.key.weight"], sd[b + "ffn.value.weight"] = r(F, C, sc=C ** -0.5), r(C, F, sc=F ** -0.5)
    return sd


def random_model(seed=0, **overrides):
    """An RWKV7ForCausalLM (eval mode) holding :func:`blinkdl_state_dict` weights (sizes from
    its keyword arguments C, H, L, vocab, D, F); ``overrides`` are RWKV7Config fields."""
    from worldmodels.models.rwkv7 import RWKV7Config, RWKV7ForCausalLM
    from worldmodels.models.rwkv7_convert import blinkdl_config, blinkdl_to_ours
    from worldmodels.strict_load import load_state_dict_strict

    sizes = {k: overrides.pop(k) for k in ("C", "H", "L", "vocab", "D", "F") if k in overrides}
    sd = blinkdl_state_dict(seed=seed, **sizes)
    model = RWKV7ForCausalLM(RWKV7Config(**(blinkdl_config(sd, "toy") | overrides)))
    load_state_dict_strict(model, blinkdl_to_ours(sd, model, "toy"), source="toy")
    return model.eval()
