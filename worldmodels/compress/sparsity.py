"""RWKV-Lite's FFN activation-sparsity predictor for RWKV-7's squared-ReLU channel-mix.

RWKV-7's FFN is ``value(relu(key(x))²)``: a neuron j is *active* at a token when
``(key x)_j > 0`` (the label, RWKV-Lite ``RWKV-v5/src/train-ffn.py``; seeds.md §7). Only active
neurons' rows of ``key`` and columns of ``value`` matter, so a predictor of the active set lets
a device load just those. Two predictors per layer, their OR the final mask:

- :class:`MLPPredictor`: ``sigmoid(W2 relu(W1 x))``, hidden 64, no biases, trained with
  class-weighted BCE (positives weighted by ``#negative / #positive`` per neuron), Adam lr 5e-3,
  active where the probability exceeds 0.7.
- a low-bit predictor: ``x · K_q`` with the key matrix quantised (:func:`quantise`: 1-bit sign
  times the row's mean magnitude, or b-bit uniform min-max over the tensor as RWKV-Lite's
  ``rwkv/model.py::quantize``), the top 15 % of neurons per token (scores above the 85th
  percentile) active. Assumed: the *weights* are quantised and the input stays float.

Measured (:func:`evaluate_predictors`): sparsity (share of zero activations), recall and
precision of each predictor from the confusion matrix, the share of neurons loaded, and the
held-out loss when the FFN keeps only predicted-active neurons (:func:`masked_ffn`, simulated by
zeroing the others' key outputs; zeroing truly inactive neurons changes nothing, exactly).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

FFN_KEY = "ffn.key"  # RWKV-7 channel-mix input projection (fla name)


@dataclass
class SparsityConfig:
    """FFN sparsity predictor settings (``--set sparsity.*``; RWKV-Lite values by default
    except epochs / batch, which are sized for CPU).

    enabled: fit and measure the predictors (``--sparsity``; RWKV-7 models only).
    hidden: MLP predictor width (RWKV-Lite: 64).
    threshold: MLP probability above which a neuron is predicted active (RWKV-Lite: 0.7).
    lr: Adam learning rate of the MLP predictor (RWKV-Lite: 5e-3).
    epochs: passes over the collected training activations (RWKV-Lite: 100).
    batch_size: tokens per predictor step (RWKV-Lite: 16).
    bits: bits of the quantised key matrix of the low-bit predictor: 1 (sign) or 2..8 (RWKV-Lite's script: 4).
    top: share of neurons per token the low-bit predictor calls active (RWKV-Lite: 0.15).
    max_tokens: most tokens of activations collected per split.
    seed: predictor initialisation and data order.
    """

    enabled: bool = False
    hidden: int = 64
    threshold: float = 0.7
    lr: float = 5e-3
    epochs: int = 10
    batch_size: int = 256
    bits: int = 1
    top: float = 0.15
    max_tokens: int = 4096
    seed: int = 0

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.epochs < 0 or self.batch_size < 1 or self.max_tokens < 1:
            raise ValueError(f"sparsity: hidden, batch_size, max_tokens >= 1 and epochs >= 0 required, "
                             f"got {self}")
        if not 0 < self.threshold < 1 or not 0 < self.top <= 1 or not self.lr > 0:
            raise ValueError(f"sparsity: threshold in (0,1), top in (0,1], lr > 0 required, got {self}")
        if not 1 <= self.bits <= 8:
            raise ValueError(f"sparsity.bits must be in 1..8, got {self.bits}")


class MLPPredictor(nn.Module):
    """RWKV-Lite's per-layer predictor: x (N, C) -> logits (N, F) of ``W2 relu(W1 x)``."""

    def __init__(self, dim: int, neurons: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.ReLU(),
                                 nn.Linear(hidden, neurons, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def ffn_key_modules(model: nn.Module) -> dict[str, nn.Module]:
    """{qualified name: module} of the RWKV-7 channel-mix key projections. Raises ValueError
    when the model has none (the predictor is for squared-ReLU FFNs: RWKV-7)."""
    found = {n: m for n, m in model.named_modules() if n == FFN_KEY or n.endswith("." + FFN_KEY)}
    if not found:
        raise ValueError("FFN sparsity needs an RWKV-7 model (modules named '*.ffn.key' feeding a "
                         "squared ReLU); this model has none")
    return found


@torch.no_grad()
def collect_ffn_inputs(model: nn.Module, lm_batches, max_tokens: int) -> dict[str, Tensor]:
    """{key module name: (N, C) float32 inputs} at the real (attention-mask) tokens of
    ``lm_batches`` (dicts with input_ids and optional attention_mask), at most ``max_tokens``."""
    keys = ffn_key_modules(model)
    got: dict[str, list[Tensor]] = {n: [] for n in keys}
    current = {}

    def hook(name):
        def fn(module, inputs):
            x = inputs[0].detach().float()
            m = current.get("mask")
            got[name].append(x[m] if m is not None else x.flatten(0, -2))
        return fn

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in keys.items()]
    model.eval()
    n, dev = 0, next(model.parameters()).device
    try:
        for lm in lm_batches:
            lm = {k: v.to(dev) for k, v in lm.items()}
            am = lm.get("attention_mask")
            current["mask"] = None if am is None else am.bool()
            model(input_ids=lm["input_ids"], **({} if am is None else {"attention_mask": am}))
            n += int(am.sum()) if am is not None else lm["input_ids"].numel()
            if n >= max_tokens:
                break
    finally:
        for h in handles:
            h.remove()
    return {k: torch.cat(v)[:max_tokens].cpu() for k, v in got.items()}


@torch.no_grad()
def ffn_labels(key: nn.Module, x: Tensor) -> Tensor:
    """(N, F) bool: neuron active, ``key(x) > 0`` (so ``relu(key x)² > 0``)."""
    p = next(key.parameters())
    return (key(x.to(device=p.device, dtype=p.dtype)) > 0).cpu()


def train_mlp_predictor(x: Tensor, labels: Tensor, cfg: SparsityConfig) -> MLPPredictor:
    """An :class:`MLPPredictor` fitted to ``labels`` (N, F) from ``x`` (N, C) with class-weighted
    BCE (``pos_weight = #neg / #pos`` per neuron, clamped to [1e-3, 1e3]) and Adam."""
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    pred = MLPPredictor(x.shape[1], labels.shape[1], cfg.hidden)
    y = labels.float()
    pos = y.sum(0)
    pos_weight = ((y.shape[0] - pos) / pos.clamp(min=1)).clamp(1e-3, 1e3)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    opt = torch.optim.Adam(pred.parameters(), lr=cfg.lr)
    for _ in range(cfg.epochs):
        order = torch.randperm(x.shape[0], generator=g)
        for i in range(0, x.shape[0], cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = loss_fn(pred(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return pred.eval()


def dense_weight(key: nn.Module) -> Tensor | None:
    """The (F, C) matrix of a key projection: ``nn.Linear.weight``, or ``W2 W1`` of a plain
    :class:`~worldmodels.compress.lowrank.LowRankLinear`; None for a non-linear factorisation."""
    from worldmodels.compress.lowrank import LowRankLinear

    if isinstance(key, nn.Linear):
        return key.weight.detach().float()
    if isinstance(key, LowRankLinear) and key.variant == "plain":
        return (key.weight2 @ key.weight1).detach().float()
    return None


def quantise(w: Tensor, bits: int) -> Tensor:
    """``w`` quantised and dequantised: 1 bit = ``sign(w)`` times each row's mean ``|w|``;
    b >= 2 bits = uniform over [min, max] of the tensor with ``2^b - 1`` steps (RWKV-Lite
    ``quantize``: ``round((w - min) / scale)``, scale ``(max - min) / (2^b - 1)``)."""
    if bits == 1:
        return torch.sign(w) * w.abs().mean(dim=1, keepdim=True)
    levels = 2 ** bits - 1
    lo, hi = w.min(), w.max()
    scale = (hi - lo).clamp(min=1e-12) / levels
    return ((w - lo) / scale).round().clamp(0, levels) * scale + lo


def quant_predict(x: Tensor, w_q: Tensor, top: float) -> Tensor:
    """x (..., C) -> (..., F) bool: per token the ``ceil(top * F)`` neurons with the largest ``x · w_qᵀ``."""
    scores = x @ w_q.t()
    k = max(1, math.ceil(top * w_q.shape[0]))
    idx = scores.topk(k, dim=-1).indices
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, idx, True)


def confusion(pred: Tensor, labels: Tensor) -> dict:
    """Counts tp, fp, fn, tn of bool ``pred`` vs ``labels`` and ``recall = tp / (tp + fn)``,
    ``precision = tp / (tp + fp)`` (NaN when undefined)."""
    tp = int((pred & labels).sum())
    fp = int((pred & ~labels).sum())
    fn = int((~pred & labels).sum())
    tn = int((~pred & ~labels).sum())
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "recall": tp / (tp + fn) if tp + fn else float("nan"),
            "precision": tp / (tp + fp) if tp + fp else float("nan")}


class LayerPredictor:
    """One layer's predictors: the MLP (threshold) OR the low-bit one (None when the key is a
    non-linear factorisation). ``__call__(x (..., C)) -> (..., F) bool`` is the final mask."""

    def __init__(self, mlp: MLPPredictor, w_q: Tensor | None, cfg: SparsityConfig):
        self.mlp, self.w_q, self.cfg = mlp, w_q, cfg

    @torch.no_grad()
    def parts(self, x: Tensor) -> dict[str, Tensor]:
        dev, x = x.device, x.float().cpu()  # the predictors live on the CPU
        out = {"mlp": torch.sigmoid(self.mlp(x)) > self.cfg.threshold}
        if self.w_q is not None:
            out["quant"] = quant_predict(x, self.w_q.cpu(), self.cfg.top)
        out["or"] = out["mlp"] | out["quant"] if "quant" in out else out["mlp"]
        return {k: v.to(dev) for k, v in out.items()}

    def __call__(self, x: Tensor) -> Tensor:
        return self.parts(x)["or"]


def fit_predictors(model: nn.Module, train_inputs: dict[str, Tensor], cfg: SparsityConfig) -> dict:
    """{key module name: LayerPredictor} trained on ``train_inputs`` (:func:`collect_ffn_inputs`)."""
    keys = dict(model.named_modules())
    out = {}
    for name, x in train_inputs.items():
        key = keys[name]
        mlp = train_mlp_predictor(x, ffn_labels(key, x).cpu(), cfg)
        w = dense_weight(key)
        out[name] = LayerPredictor(mlp, None if w is None else quantise(w, cfg.bits), cfg)
    return out


def evaluate_predictors(model: nn.Module, predictors: dict, inputs: dict[str, Tensor]) -> dict:
    """Per layer and overall: sparsity (share of zero activations), the confusion counts,
    recall and precision of each predictor (mlp, quant, or) and the share of neurons the final
    mask loads, on ``inputs`` (held-out activations)."""
    keys = dict(model.named_modules())
    layers, total = {}, {}
    for name, x in inputs.items():
        labels = ffn_labels(keys[name], x).cpu()
        row = {"sparsity": 1.0 - labels.float().mean().item(), "tokens": int(x.shape[0])}
        for kind, pred in predictors[name].parts(x).items():
            c = confusion(pred, labels)
            row[kind] = {**c, "loaded": pred.float().mean().item()}
            t = total.setdefault(kind, {"tp": 0, "fp": 0, "fn": 0, "tn": 0})
            for k in t:
                t[k] += c[k]
        layers[name] = row
    overall = {"sparsity": sum(r["sparsity"] for r in layers.values()) / len(layers)}
    for kind, t in total.items():
        n = sum(t.values())
        overall[kind] = {"recall": t["tp"] / max(t["tp"] + t["fn"], 1),
                         "precision": t["tp"] / max(t["tp"] + t["fp"], 1),
                         "loaded": (t["tp"] + t["fp"]) / max(n, 1)}
    return {"layers": layers, "overall": overall}


@contextmanager
def masked_ffn(model: nn.Module, masks):
    """Inside the block, each FFN key output is multiplied by ``masks[name](x)`` ((..., F) 0/1
    from the key's input x (..., C)), i.e. only predicted-active neurons reach ``relu(·)²`` and ``value``.
    ``masks``: {key module name: callable}."""
    keys = dict(model.named_modules())

    def hook(fn):
        def apply(module, inputs, output):
            return output * fn(inputs[0]).to(output.dtype)
        return apply

    handles = [keys[n].register_forward_hook(hook(fn)) for n, fn in masks.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


__all__ = ["FFN_KEY", "LayerPredictor", "MLPPredictor", "SparsityConfig", "collect_ffn_inputs", "confusion",
           "dense_weight", "evaluate_predictors", "ffn_key_modules", "ffn_labels", "fit_predictors",
           "masked_ffn", "quant_predict", "quantise", "train_mlp_predictor"]
