"""torchrun-aware process setup: gloo on CPU, nccl on CUDA; rank helpers; DDP / FSDP wrapping.

    info = init_distributed("auto")          # reads RANK / WORLD_SIZE / LOCAL_RANK from torchrun
    model = wrap_model(model.to(info.device), info, strategy="ddp")
    ...
    cleanup()

    torchrun --nproc_per_node 2 -m worldmodels.cli pretrain video ...   # 2 CPU processes (gloo)
A single process (no torchrun) is world_size 1 and every helper is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from worldmodels.models.lora import unwrap  # the one DDP/FSDP unwrap (models is the lower layer)

__all__ = ["DistInfo", "all_reduce_grads", "all_reduce_mean", "all_reduce_sum", "barrier", "cleanup",
           "get_rank", "get_world_size", "init_distributed", "is_dist", "pick_device", "unwrap",
           "wrap_model"]


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """"auto" -> this process's CUDA device when available, else CPU; "cuda" checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} requested but CUDA is not available (use device=cpu)")
    if name == "cuda":
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(name)


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group when launched under torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def barrier() -> None:
    if is_dist():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (a new tensor on ``t``'s device; identity in one process).
    Under NCCL a CPU tensor travels through the GPU and comes back."""
    if not is_dist():
        return t
    out = t.detach().clone()
    if dist.get_backend() == "nccl" and not out.is_cuda:
        out = out.cuda()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(t.device)


def all_reduce_grads(model: torch.nn.Module) -> None:
    """Sum (not average) every trainable parameter's gradient over ranks, in one flat buffer
    (missing grads count as zero). GRPO sums because it normalises each rank's loss by the
    global token count (``train/grpo.py``)."""
    if not is_dist():
        return
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    i = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[i:i + n].view_as(p.grad))
        i += n


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    return all_reduce_sum(t) / get_world_size()


def wrap_model(model: torch.nn.Module, info: DistInfo, strategy: str = "ddp") -> torch.nn.Module:
    """DDP (default) or FSDP (fully sharded, for the larger presets) when world_size > 1."""
    if info.world_size <= 1 or strategy == "none":
        return model
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [info.device.index] if info.device.type == "cuda" else None
        return DDP(model, device_ids=ids)
    if strategy == "fsdp":
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        return FSDP(model, device_id=info.device if info.device.type == "cuda" else None,
                    use_orig_params=True)
    raise ValueError(f"distributed strategy must be 'ddp', 'fsdp' or 'none', got {strategy!r}")



def cleanup() -> None:
    """Tear down the process group once every rank is done with it.

    The barrier matters: a rank that destroys its group while a peer is still mid-collective
    closes the gloo connection under the peer's transport thread, which aborts that process
    ("terminate called without an active exception").
    """
    if is_dist():
        dist.barrier()
        dist.destroy_process_group()
