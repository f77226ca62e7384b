"""What ``wm compress`` measures: sizes, held-out loss, and the activations the sparsity
predictor and the clustered head are fitted and scored on.

All losses are the MLE engine's (``worldmodels.train.mle.token_loss_sum``): mean next-token
cross-entropy in nats over the task's labelled positions, so they compare with a run's
``eval_loss``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from worldmodels.tasks.base import IGNORE_INDEX


def model_size(model: nn.Module) -> dict:
    """Parameters and bytes of every distinct tensor (parameters and buffers, tied ones once);
    ``params_no_embeddings``: without the input and output embedding matrices."""
    seen, params, nbytes = set(), 0, 0
    for t in [*model.parameters(), *model.buffers()]:
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        nbytes += t.numel() * t.element_size()
        params += t.numel() if isinstance(t, nn.Parameter) else 0
    emb = {model.get_input_embeddings().weight.data_ptr(): model.get_input_embeddings().weight.numel()}
    out = model.get_output_embeddings()
    if out is not None:
        emb[out.weight.data_ptr()] = out.weight.numel()
    return {"params": params, "bytes": nbytes, "params_no_embeddings": params - sum(emb.values())}


def lm_batches(task, split: str, batches: int, batch_size: int) -> list[dict]:
    """The first ``batches * batch_size`` items of ``task.lm_dataset(split)`` as ``lm_batch``
    dicts (fixed, so every measurement sees the same tokens). Raises ValueError when empty."""
    ds = task.lm_dataset(split)
    n = min(len(ds), batches * batch_size)
    if n == 0:
        raise ValueError(f"the task's {split!r} split is empty: nothing to measure on")
    return [task.lm_batch(task.collate([ds[j] for j in range(i, min(i + batch_size, n))]))
            for i in range(0, n, batch_size)]


@torch.no_grad()
def heldout_loss(model: nn.Module, batches: list[dict]) -> float:
    """Mean token loss (nats) of ``model`` over ``batches`` (``lm_batch`` dicts, CPU)."""
    from worldmodels.train.mle import token_loss_sum

    model.eval()
    total, count = 0.0, 0
    dev = next(model.parameters()).device
    for lm in batches:
        s, n = token_loss_sum(model, {k: v.to(dev) for k, v in lm.items()})
        total, count = total + float(s), count + n
    return total / max(count, 1)


@torch.no_grad()
def head_inputs(model: nn.Module, batches: list[dict], max_tokens: int) -> tuple[Tensor, Tensor]:
    """(hidden (N, C) float32, next-token labels (N,)): the output head's input at the labelled
    positions of ``batches`` (at most ``max_tokens``), caught with a pre-hook on the head."""
    from worldmodels.train.rollout import positions_from_mask

    head = model.get_output_embeddings()
    got = {}
    handle = head.register_forward_pre_hook(lambda m, inp: got.__setitem__("h", inp[0].detach()))
    hs, ys = [], []
    dev = next(model.parameters()).device
    try:
        model.eval()
        for lm in batches:
            lm = {k: v.to(dev) for k, v in lm.items()}
            am = lm.get("attention_mask")
            kw = {} if am is None else {"attention_mask": am, "position_ids": positions_from_mask(am)}
            model(input_ids=lm["input_ids"], **kw)
            labels = lm["labels"][:, 1:]
            keep = labels != IGNORE_INDEX
            hs.append(got["h"][:, :-1][keep].float().cpu())
            ys.append(labels[keep].cpu())
            if sum(len(y) for y in ys) >= max_tokens:
                break
    finally:
        handle.remove()
    return torch.cat(hs)[:max_tokens], torch.cat(ys)[:max_tokens]


__all__ = ["head_inputs", "heldout_loss", "lm_batches", "model_size"]
