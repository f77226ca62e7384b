"""RWKV-Lite's low-rank projections: ``nn.Linear`` -> :class:`LowRankLinear` by truncated SVD.

    from worldmodels.compress.lowrank import factorise, load_lowrank
    record = factorise(model, svdfac=4)                  # in place; targets by model type
    model.save_pretrained("runs/wm_svd4/backbone")      # config.json carries the record
    model = load_backbone("runs/wm_svd4/backbone")      # rebuilt, then loaded strictly

Factorisation (RWKV-Lite ``RWKV-v5/src/svd.py``, seeds.md §7): ``W = U S Vᵀ`` (W: out x in),
rank ``r = min(out, in) // svdfac`` (at least 1), ``W ≈ U2 U1`` with ``U2 = U_r √S_r`` (out x r,
``weight2``) and ``U1 = √S_r V_rᵀ`` (r x in, ``weight1``); the bias, if any, is kept. By
Eckart–Young the error is ``‖W − U2 U1‖_F² = Σ_{i>r} σ_i²``.

Variants (``variant``):
- ``plain`` (RWKV-Lite x058): ``y = W2 (W1 x) + b``.
- ``relu_diag`` (x059 as seeds.md states it: "ReLU between the factors plus a learned
  diagonal"): ``y = W2 relu(W1 x) + d ⊙ x + b``.
- ``sqrelu_diag`` (x059 as RWKV-Lite's inference code ``rwkv/model.py`` ``ffn_*_v5_9`` runs it):
  ``y = W2 relu(W1 x)² + d ⊙ x + b``.
Assumptions, since the reference shows only square matrices with a diagonal and no
initialisation of it: ``d`` starts at 0, so a diag variant starts at ``W2 relu(W1 x)`` (not
``W_r x``: the non-linearity needs recovery training); for a non-square W the "diagonal" is the
rectangular one, ``y_i += d_i x_i`` for ``i < min(out, in)``.

The record ``{"svdfac", "variant", "modules": {qualified name: rank}}`` is stored as
``config.wm_lowrank`` (``RECORD_KEY``) so that ``save_pretrained`` writes it into
``config.json``; ``worldmodels.models.load_backbone`` sends such a directory to
:func:`load_lowrank`, which builds the model from its config, rebuilds the factorised modules
and then loads the weights strictly (``WeightsMismatch`` naming the directory and keys).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

RECORD_KEY = "wm_lowrank"
VARIANTS = ("plain", "relu_diag", "sqrelu_diag")
#: config.json model_type -> default target module names (suffixes of qualified names)
DEFAULT_TARGETS = {
    "wm_rwkv7": ["attn.r_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "ffn.key", "ffn.value"],
    "rwkv7": ["attn.r_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "ffn.key", "ffn.value"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}


class LowRankLinear(nn.Module):
    """``y = W2 act(W1 x) [+ d ⊙ x] [+ b]`` (see the module docstring). x (..., in) -> (..., out).

    weight1: (rank, in) = √S_r V_rᵀ; weight2: (out, rank) = U_r √S_r; diag: (min(out, in),)
    for the diag variants; bias: (out,) when the replaced linear had one.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, variant: str = "plain",
                 bias: bool = False):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if not 1 <= rank <= min(in_features, out_features):
            raise ValueError(f"rank must be in [1, min(out, in) = {min(in_features, out_features)}], "
                             f"got {rank}")
        self.in_features, self.out_features, self.rank, self.variant = in_features, out_features, rank, variant
        self.weight1 = nn.Parameter(torch.empty(rank, in_features))
        self.weight2 = nn.Parameter(torch.empty(out_features, rank))
        self.diag = nn.Parameter(torch.zeros(min(in_features, out_features))) if variant != "plain" else None
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    @classmethod
    def from_linear(cls, linear: nn.Linear, rank: int, variant: str = "plain") -> LowRankLinear:
        """The truncated SVD of ``linear.weight`` (computed in float64, stored in its dtype)."""
        W = linear.weight.detach()
        out = cls(W.shape[1], W.shape[0], rank, variant, bias=linear.bias is not None)
        out.to(device=W.device, dtype=W.dtype)
        U, S, Vh = torch.linalg.svd(W.double(), full_matrices=False)
        root = S[:rank].sqrt()
        with torch.no_grad():
            out.weight2.copy_(U[:, :rank] * root)
            out.weight1.copy_(root[:, None] * Vh[:rank])
            if linear.bias is not None:
                out.bias.copy_(linear.bias)
        return out

    def forward(self, x: Tensor) -> Tensor:
        h = F.linear(x, self.weight1)
        if self.variant == "relu_diag":
            h = torch.relu(h)
        elif self.variant == "sqrelu_diag":
            h = torch.relu(h) ** 2
        y = F.linear(h, self.weight2, self.bias)
        if self.diag is not None:
            n = self.diag.numel()
            y = y + F.pad(x[..., :n] * self.diag, (0, self.out_features - n))
        return y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"variant={self.variant}, bias={self.bias is not None}")


def rank_for(out_features: int, in_features: int, svdfac: int) -> int:
    """RWKV-Lite's rank ``min(out, in) // svdfac``, at least 1."""
    return max(1, min(out_features, in_features) // svdfac)


def default_targets(model) -> list[str]:
    """The default target suffixes for ``model``'s ``config.model_type`` (``DEFAULT_TARGETS``).
    Raises ValueError naming the type when there is no default (pass ``targets``)."""
    kind = getattr(getattr(model, "config", None), "model_type", None)
    if kind not in DEFAULT_TARGETS:
        raise ValueError(f"no default low-rank targets for model_type {kind!r} (known: "
                         f"{sorted(DEFAULT_TARGETS)}); pass the module names (--targets)")
    return list(DEFAULT_TARGETS[kind])


def _matches(name: str, targets: list[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def factorise(model: nn.Module, svdfac: int, variant: str = "plain",
              targets: list[str] | None = None) -> dict:
    """Replace every ``nn.Linear`` whose qualified name ends with one of ``targets`` (default:
    :func:`default_targets`) by its rank-``min(out,in)//svdfac`` :class:`LowRankLinear`, in place,
    and record it in ``model.config.wm_lowrank``. Returns the record. Raises ValueError for
    svdfac < 1, an unknown variant, a model already factorised, or targets matching no linear."""
    if not isinstance(svdfac, int) or svdfac < 1:
        raise ValueError(f"svdfac must be an integer >= 1, got {svdfac!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    cfg = getattr(model, "config", None)
    if cfg is not None and getattr(cfg, RECORD_KEY, None):
        raise ValueError("this model is already factorised (config.wm_lowrank is set)")
    targets = list(targets) if targets else default_targets(model)
    chosen = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(n, targets)]
    if not chosen:
        raise ValueError(f"no nn.Linear module name ends with any of {targets}")
    modules = {}
    for name, lin in chosen:
        r = rank_for(lin.out_features, lin.in_features, svdfac)
        _set_module(model, name, LowRankLinear.from_linear(lin, r, variant))
        modules[name] = r
    record = {"svdfac": svdfac, "variant": variant, "targets": targets, "modules": modules}
    if cfg is not None:
        setattr(cfg, RECORD_KEY, record)
    return record


def rebuild(model: nn.Module, record: dict, source="config.json") -> None:
    """Replace the modules ``record["modules"]`` names by empty :class:`LowRankLinear` of the
    recorded ranks (before loading weights). Raises ValueError naming ``source`` when a
    recorded module is missing or not an ``nn.Linear``, or the record is malformed."""
    try:
        variant, modules = record["variant"], dict(record["modules"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{source}: {RECORD_KEY} must hold 'variant' and 'modules' "
                         f"({{name: rank}}), got {record!r}") from e
    for name, rank in modules.items():
        try:
            lin = model.get_submodule(name)
        except AttributeError as e:
            raise ValueError(f"{source}: {RECORD_KEY} names module {name!r}, which the model lacks") from e
        if not isinstance(lin, nn.Linear):
            raise ValueError(f"{source}: {RECORD_KEY} module {name!r} is a {type(lin).__name__}, "
                             f"expected nn.Linear")
        new = LowRankLinear(lin.in_features, lin.out_features, int(rank), variant, lin.bias is not None)
        _set_module(model, name, new.to(device=lin.weight.device, dtype=lin.weight.dtype))


def load_lowrank(directory: str | Path, device=None, dtype=None, **_):
    """A factorised backbone from a ``save_pretrained`` directory whose ``config.json`` holds
    ``wm_lowrank``: the model built uninitialised from the config (RWKV-7: ours; else
    transformers' Auto classes), the factorised modules rebuilt, the weights loaded strictly.
    Eval mode; moved to ``device`` / ``dtype`` when given."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.initialization import no_init_weights

    from worldmodels.models.rwkv7_convert import _read_weights
    from worldmodels.strict_load import load_state_dict_strict

    d = Path(directory)
    raw = json.loads((d / "config.json").read_text())
    if raw.get("model_type") == "wm_rwkv7":
        import worldmodels.models.rwkv7  # noqa: F401  (registers wm_rwkv7 with the Auto classes)
    cfg = AutoConfig.from_pretrained(d, local_files_only=True)
    with no_init_weights():
        model = AutoModelForCausalLM.from_config(cfg)
    if getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
    rebuild(model, raw[RECORD_KEY], source=d / "config.json")
    load_state_dict_strict(model, _read_weights(d), source=d)
    model.eval()
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model


def lowrank_modules(model: nn.Module) -> dict[str, LowRankLinear]:
    """{qualified name: LowRankLinear} of ``model``."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LowRankLinear)}


__all__ = ["DEFAULT_TARGETS", "LowRankLinear", "RECORD_KEY", "VARIANTS", "default_targets", "factorise",
           "load_lowrank", "lowrank_modules", "rank_for", "rebuild"]
