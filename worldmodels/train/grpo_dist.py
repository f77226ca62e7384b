"""Data-parallel helpers the GRPO trainer uses (no-ops in a single process).

The trainer sums (not averages) gradients because it normalises each rank's loss by the
global token count; see ``grpo.py``.
"""

from __future__ import annotations

import torch
import torch.distributed as td


def is_dist() -> bool:
    return td.is_available() and td.is_initialized()


def rank() -> int:
    return td.get_rank() if is_dist() else 0


def world_size() -> int:
    return td.get_world_size() if is_dist() else 1


def pick_device(name: str) -> torch.device:
    """"auto" -> this rank's CUDA device when available, else CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", rank() % torch.cuda.device_count())
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} asked for but CUDA is not available (use device=cpu)")
    return torch.device(name)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (returns a new tensor; CPU float64 stays exact on gloo)."""
    if not is_dist():
        return t
    out = t.clone()
    if td.get_backend() == "nccl":
        out = out.cuda()
    td.all_reduce(out, op=td.ReduceOp.SUM)
    return out.to(t.device)


def all_reduce_grads(model: torch.nn.Module) -> None:
    """Sum every trainable parameter's gradient over ranks (missing grads count as zero)."""
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


def barrier() -> None:
    if is_dist():
        td.barrier()
