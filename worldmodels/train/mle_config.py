"""Configs of the MLE trainer (kept free of torch so `wm --help` stays instant)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class OptimConfig:
    """Optimizer and schedule.

    lr: peak learning rate of AdamW.
    weight_decay: AdamW decoupled weight decay (not applied to biases / norms / embeddings).
    betas: AdamW (beta1, beta2).
    warmup_steps: linear warm-up from 0 to ``lr`` over this many optimizer steps.
    schedule: "constant" after warm-up (RLVR-World) or "cosine" decay to ``min_lr_ratio * lr``.
    min_lr_ratio: floor of the cosine schedule as a fraction of ``lr``.
    grad_clip: max global gradient norm (0 disables clipping).
    """

    lr: float = 5e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 100
    schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"optim.lr must be a finite number > 0, got {self.lr}")
        # NaN passes a "< 0" test: grad_clip=nan scales every gradient by NaN, weight_decay=nan
        # is refused by AdamW only when the optimizer is built
        if self.warmup_steps < 0 or not self.grad_clip >= 0 or not (
                self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"optim.warmup_steps, grad_clip and weight_decay must be >= 0 (weight_decay "
                             f"finite), got {self.warmup_steps}, {self.grad_clip}, {self.weight_decay}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")
        if not 0 <= self.min_lr_ratio <= 1:  # negative: gradient ascent at the end of the cosine
            raise ValueError(f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"optim.schedule must be 'constant' or 'cosine', got {self.schedule!r}")


@dataclass
class MLEConfig:
    """MLE training loop.

    steps: optimizer steps to train in total (a resumed run continues up to this).
    batch_size: sequences per micro-batch per process.
    grad_accum: micro-batches per optimizer step (effective batch = batch_size*grad_accum*ranks).
    optim: optimizer and schedule (OptimConfig).
    precision: "auto" (bf16 autocast on CUDA, fp32 on CPU), "fp32" or "bf16".
    distributed: "ddp" or "fsdp" when launched with torchrun (ignored in one process).
    gradient_checkpointing: recompute activations in the backward pass instead of storing them
        (less memory, ~30% more compute; same loss and gradient).
    eval_every: held-out loss every this many steps (0: only at the end).
    eval_batches: micro-batches of the held-out split per evaluation.
    save_every: checkpoint every this many steps (and at the end).
    keep_checkpoints: how many checkpoints to keep on disk.
    log_every: JSONL / progress update every this many steps.
    seed: seed of model init, data order and sampling.
    num_workers: DataLoader workers (0 keeps resume exact and is fastest for cached tokens).
    device: "auto", "cpu" or "cuda".
    tensorboard: also log to TensorBoard (<out>/tb) when tensorboard is installed.
    wandb: also log to Weights & Biases (error if wandb is not installed).
    max_minutes: time budget of this process's training (0 = none). The step rate is measured
        after the warm-up (at most 100 steps) and the schedule's length set to the steps that
        fit in the budget (at most ``steps``), so a cosine decays fully by the end; the run
        stops there (with a checkpoint), or at the budget if it slowed down. ``--resume`` of an
        interrupted fitted run finishes that fitted schedule.
    fit_schedule: false: the schedule spans ``steps`` and the budget only stops the run where
        the schedule happens to be (the behaviour before the fit: a cosine cut at 73 % of peak).
    tbptt_window: truncated BPTT (``worldmodels/train/tbptt.py``, seeds.md §6/§8): run each
        sequence in windows of this many tokens, the backbone's recurrent state carried from
        window to window and detached, each window's backward freeing its activations
        (training memory O(window) instead of O(sequence)). null = the whole sequence at once.
        Needs a backbone whose cache is a recurrent state (``model.family=rwkv7``); a KV-cache
        backbone (llama, hf) is refused with an error naming this flag (its cache, and memory,
        would grow with the sequence anyway). Among Us: 1024.
    tbptt_step: "window": an optimizer step after every window (Among Us; ``steps`` then counts
        windows, the loss of a step is the token mean of its window, a window without loss
        tokens takes no step; one process only; ``until`` and periodic checkpoints wait for
        a sequence's end) | "sequence": the windows' gradients accumulate and one step per
        batch follows (same steps, normalisation and resume as without windows; with
        ``tbptt_window`` >= the sequence length the gradient equals full BPTT).
    tbptt_border: "attached": the label after a window is scored by that window's last
        logit inside the window, with its gradient | "detached": the Among Us code's layout
        (the previous window's last logit, detached, scores the next window's first token:
        same loss value, no gradient for that token). Only with ``tbptt_window``.
    input_noise: fraction of the input tokens the task marks as noisable (video: visual tokens)
        replaced by uniform random tokens of the same kind in each training batch, labels left
        clean (``Task.noise_inputs``): a regulariser for small datasets, the token analogue of
        GameNGen's context-noise augmentation. Drawn from (seed, step, rank), so ``--resume``
        stays exact. Held-out losses are computed without noise. 0 = off.
    """

    steps: int = 1000
    batch_size: int = 16
    grad_accum: int = 1
    optim: OptimConfig = field(default_factory=OptimConfig)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    distributed: Literal["ddp", "fsdp"] = "ddp"
    gradient_checkpointing: bool = False
    eval_every: int = 200
    eval_batches: int = 8
    save_every: int = 200
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    max_minutes: float = 0.0
    fit_schedule: bool = True
    tensorboard: bool = True
    wandb: bool = False
    tbptt_window: int | None = None
    tbptt_step: Literal["window", "sequence"] = "window"
    tbptt_border: Literal["attached", "detached"] = "attached"
    input_noise: float = 0.0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "eval_batches", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "save_every", "num_workers", "keep_checkpoints", "max_minutes"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"train.precision must be auto|fp32|bf16, got {self.precision!r}")
        if self.distributed not in ("ddp", "fsdp"):
            raise ValueError(f"train.distributed must be ddp|fsdp, got {self.distributed!r}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
            raise ValueError(f"train.device must be auto|cpu|cuda|cuda:N|mps, got {self.device!r}")
        if self.tbptt_window is not None and (isinstance(self.tbptt_window, bool) or not isinstance(
                self.tbptt_window, int) or self.tbptt_window < 1):
            raise ValueError(f"train.tbptt_window must be an int >= 1 (tokens per window) or null, "
                             f"got {self.tbptt_window!r}")
        if not 0 <= self.input_noise < 1:
            raise ValueError(f"train.input_noise must be in [0, 1), got {self.input_noise}")
        if self.tbptt_step not in ("window", "sequence"):
            raise ValueError(f"train.tbptt_step must be window|sequence, got {self.tbptt_step!r}")
        if self.tbptt_border not in ("attached", "detached"):
            raise ValueError(f"train.tbptt_border must be attached|detached, got {self.tbptt_border!r}")
