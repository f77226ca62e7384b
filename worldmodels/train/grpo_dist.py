"""Data-parallel helpers the GRPO trainer adds to ``distributed.py`` (no-ops in one process).

The trainer sums (not averages) gradients because it normalises each rank's loss by the global
token count; see ``grpo.py``. Reductions move CPU tensors to the GPU under NCCL.
"""

from __future__ import annotations

import torch
import torch.distributed as td

from worldmodels.train.distributed import barrier, get_rank, get_world_size, is_dist, pick_device

__all__ = ["all_reduce_grads", "all_reduce_sum", "barrier", "pick_device", "rank", "world_size"]


def rank() -> int:
    return get_rank()


def world_size() -> int:
    return get_world_size()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (a new tensor on ``t``'s device; identity in one process)."""
    if not is_dist():
        return t
    out = t.detach().clone()
    if td.get_backend() == "nccl":
        out = out.cuda()
    td.all_reduce(out, op=td.ReduceOp.SUM)
    return out.to(t.device)


def all_reduce_grads(model: torch.nn.Module) -> None:
    """Sum every trainable parameter's gradient over ranks (missing grads count as zero),
    in one flat buffer."""
    if not is_dist():
        return
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    td.all_reduce(flat, op=td.ReduceOp.SUM)
    i = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[i:i + n].view_as(p.grad))
        i += n
