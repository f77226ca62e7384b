"""Training loop shared by both tokenizers (L1 + optional perceptual + optional hinge GAN).

    from tokenizers_video import FrameTokenizer, TrainConfig, train
    tok = FrameTokenizer.from_preset("tiny")
    summary = train(tok, frames_dataset, TrainConfig(steps=2000), "runs/tok_frame")

The dataset yields frames (3,H,W) (frame tokenizer) or clips (T,3,H,W) / dicts with a
``"frames"`` entry (compressive: frame 0 is the context). ``out_dir`` receives the loadable
tokenizer (``config.json`` + ``model.safetensors``), ``checkpoint/`` (model, optimiser,
scheduler, discriminator, step, RNG states; swapped in atomically), ``log.jsonl`` and
``samples/step_*.png`` (rows: input | reconstruction). ``resume=True`` continues exactly.
Launch with ``torchrun --nproc_per_node N`` for data-parallel training (gloo on CPU).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from tokenizers_video import checkpoint as ckpt
from tokenizers_video.losses import PatchDiscriminator, hinge_d_loss, hinge_g_loss
from tokenizers_video.quantizers import VQ


@dataclass
class TrainConfig:
    """Optimisation settings for tokenizer training.

    Attributes:
        steps: total optimiser steps.
        batch_size: items per step, summed over data-parallel ranks.
        lr: peak AdamW learning rate (after warm-up; cosine decay to ``lr * min_lr_ratio``).
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        warmup_steps: linear warm-up steps.
        weight_decay: AdamW weight decay.
        beta1: AdamW beta1.
        beta2: AdamW beta2.
        grad_clip: global gradient-norm clip (0 disables).
        l1_weight: weight of the L1 reconstruction loss.
        mse_weight: weight of an MSE reconstruction loss (0: off, as in the paper). Its
            gradient grows with the error, so small high-contrast objects that L1 (and no
            perceptual term) learns late are picked up early.
        motion_weight: compressive only: pixels of a future frame that differ from its
            context frame by more than ``motion_threshold`` (in any channel) count
            ``1 + motion_weight`` times in the L1 and MSE terms (0: off). What moves is a few
            percent of a frame (a 3-pixel pusher, the block), so an unweighted loss can erase
            it and still score well; the world model's planner needs exactly those pixels.
        motion_threshold: the per-pixel change (frames in [0,1]) that counts as motion.
        perceptual_weight: weight of the perceptual (LPIPS) loss when a perceptual fn is given.
        gan_weight: weight of the generator hinge loss.
        gan_start_step: step from which the hinge-GAN term is on; -1 disables the GAN.
        disc_channels: base channels of the patch discriminator.
        disc_lr: discriminator learning rate.
        seed: seed for initialisation-independent randomness (data order, restarts).
        log_every: write a line to log.jsonl every this many steps.
        save_every: checkpoint (and export the tokenizer) every this many steps.
        image_every: write a reconstruction PNG grid every this many steps (0: never).
        max_minutes: time budget of this process's training (0: none). The step rate is
            measured after the warm-up (at most 100 steps) and the schedule's length set to the
            steps that fit in the budget (at most ``steps``): the cosine reaches ``min_lr_ratio``
            at the end, where the run stops with a checkpoint (or at the budget if it slowed);
            a resumed, already fitted run finishes that schedule.
        fit_schedule: false: the schedule spans ``steps`` and the budget only stops the run
            (the behaviour before the fit: the cosine cut wherever the time ran out).
        device: "auto" (CUDA if available, else CPU), "cpu" or "cuda".
        mixed_precision: bf16 autocast on CUDA (ignored on CPU).
        progress: show a tqdm progress bar.
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    l1_weight: float = 1.0
    mse_weight: float = 0.0
    motion_weight: float = 0.0
    motion_threshold: float = 0.1
    perceptual_weight: float = 1.0
    gan_weight: float = 0.1
    gan_start_step: int = -1
    disc_channels: int = 32
    disc_lr: float = 2e-4
    seed: int = 0
    log_every: int = 10
    save_every: int = 200
    image_every: int = 200
    max_minutes: float = 0.0
    fit_schedule: bool = True
    device: str = "auto"
    mixed_precision: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "disc_lr"):  # NaN / inf learning rates turn every weight into NaN
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0,1], got {self.min_lr_ratio}")
        for name in ("l1_weight", "mse_weight", "motion_weight", "perceptual_weight", "gan_weight",
                     "weight_decay"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"beta1 and beta2 must be in [0, 1), got {self.beta1}, {self.beta2}")
        if self.disc_channels < 1:
            raise ValueError(f"disc_channels must be >= 1, got {self.disc_channels}")
        if not 0 < self.motion_threshold < 1:
            raise ValueError(f"motion_threshold must be in (0,1), got {self.motion_threshold}")
        if self.warmup_steps < 0 or self.image_every < 0 or not self.max_minutes >= 0:
            raise ValueError("warmup_steps, image_every and max_minutes must be >= 0")
        if self.gan_start_step < -1:
            raise ValueError(f"gan_start_step must be >= 0, or -1 to disable, got {self.gan_start_step}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")


def lr_factor(step: int, cfg: TrainConfig, total: int | None = None) -> float:
    """Linear warm-up to 1, then cosine to ``min_lr_ratio`` at ``total`` (default ``cfg.steps``)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, (cfg.steps if total is None else total) - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class FittedSchedule(torch.optim.lr_scheduler.LambdaLR):
    """:func:`lr_factor` with a settable length ``total_steps`` (saved in ``state_dict``, so a
    resumed run continues a schedule fitted to a time budget)."""

    def __init__(self, opt, cfg: TrainConfig):
        self.total_steps, self.budget_fitted = cfg.steps, False
        super().__init__(opt, lambda s: lr_factor(s, cfg, self.total_steps))

    def resumed(self, steps: int) -> int:
        """After loading a checkpoint: the step the run ends at (a budget-fitted schedule keeps
        its length; any other spans ``steps``, which --resume may raise)."""
        if not self.budget_fitted:
            self.total_steps = steps
        return min(steps, self.total_steps)


def fitted_steps(cfg: TrainConfig, step: int, mark: tuple[int, float], now: float,
                 start: float) -> int | None:
    """Steps that fit in ``cfg.max_minutes`` at the rate measured since ``mark`` (step, time),
    at most ``cfg.steps``; None until ``max(5, min(warmup, 100))`` steps have been measured (or,
    for slow steps, 2 steps and 5 % of the budget)."""
    done = step - mark[0]
    early = done >= 2 and now - mark[1] >= 3 * cfg.max_minutes  # 5 % of the budget, in seconds
    if done < max(5, min(cfg.warmup_steps, 100)) and not early:
        return None
    rate = done / max(now - mark[1], 1e-9)
    return min(cfg.steps, step + max(0, int(rate * (60 * cfg.max_minutes - (now - start)))))


class _Reconstruct(nn.Module):
    """Routes DDP's forward to ``model.reconstruct`` (so gradients are all-reduced)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, frames):
        return self.model.reconstruct(frames)


class BatchOrder:
    """Deterministic batches: epoch ``e`` is a permutation seeded by ``seed + e``; step -> batch."""

    def __init__(self, n: int, batch: int, seed: int, rank: int = 0, world: int = 1):
        if n < batch:
            raise ValueError(f"dataset has {n} items, fewer than batch_size={batch}")
        self.n, self.batch, self.seed, self.rank, self.world = n, batch, seed, rank, world
        self.per_epoch = n // batch
        self._cache: tuple[int, torch.Tensor] | None = None

    def indices(self, step: int) -> list[int]:
        epoch, b = divmod(step, self.per_epoch)
        if self._cache is None or self._cache[0] != epoch:
            g = torch.Generator().manual_seed(self.seed + epoch)
            self._cache = (epoch, torch.randperm(self.n, generator=g))
        rows = self._cache[1][b * self.batch : (b + 1) * self.batch]
        per = self.batch // self.world
        return rows[self.rank * per : (self.rank + 1) * per].tolist()


def motion_weights(model: nn.Module, batch: torch.Tensor, target: torch.Tensor,
                   cfg: TrainConfig) -> torch.Tensor | None:
    """Per-pixel loss weights (N,1,H,W) for ``target`` (N,3,H,W): ``1 + cfg.motion_weight``
    where the frame differs from its clip's context frame by more than
    ``cfg.motion_threshold``, else 1; None when motion weighting is off."""
    if cfg.motion_weight <= 0:
        return None
    ref = model.target_contexts(batch).to(target.dtype)                                    # (N,3,H,W)
    moving = (target - ref).abs().amax(dim=1, keepdim=True) > cfg.motion_threshold
    return 1 + cfg.motion_weight * moving.to(target.dtype)


def _item_frames(item) -> torch.Tensor:
    return item["frames"] if isinstance(item, dict) else item


def _source(dataset, i: int) -> str:
    """`` (<where item i comes from>)`` when the dataset can tell (``item_source(i)``), else ``""``."""
    fn = getattr(dataset, "item_source", None)
    return f" ({fn(i)})" if callable(fn) else ""


def check_first_item(dataset, image_size: int | None) -> None:
    """Raise a ValueError naming item 0 (and its file, when the dataset tells it) unless its
    frames are (..., 3, image_size, image_size): the tokenizer's configured frame size."""
    if image_size is None or len(dataset) == 0:
        return
    shape = tuple(_item_frames(dataset[0]).shape)
    if len(shape) < 3 or shape[-3:] != (3, image_size, image_size):
        raise ValueError(f"training item 0{_source(dataset, 0)} has frames of shape {shape}; this "
                         f"tokenizer expects (..., 3, {image_size}, {image_size}) (its image_size)")


def stack_batch(dataset, indices: list[int]) -> torch.Tensor:
    """The frames of items ``indices`` stacked into one batch tensor.

    Items of different shapes raise a ValueError naming the first item's shape and each
    differing item with its shape (and its file, when the dataset has ``item_source(i)``),
    instead of torch.stack's bare size error.
    """
    items = [_item_frames(dataset[i]) for i in indices]
    first = tuple(items[0].shape)
    bad = [(i, tuple(x.shape)) for i, x in zip(indices, items, strict=True) if tuple(x.shape) != first]
    if bad:
        lines = "; ".join(f"item {i}{_source(dataset, i)} is {shape}" for i, shape in bad[:5])
        raise ValueError(f"training items differ in shape: item {indices[0]}"
                         f"{_source(dataset, indices[0])} is {first}, but {lines}")
    return torch.stack(items)


def _setup_distributed(cfg: TrainConfig) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("TrainConfig.device='cuda' but CUDA is not available")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return rank, world, device


def train(model: nn.Module, dataset, cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False,
          perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
          log: Callable[[str], None] = print, stop_at: int | None = None,
          clock: Callable[[], float] = time.monotonic) -> dict:
    """Train ``model`` (a FrameTokenizer or CompressiveTokenizer) in place; returns a summary.

    ``stop_at`` ends this process early at that step (with a checkpoint) without changing the
    schedule, as a pre-emption would; ``resume=True`` later continues the same trajectory.
    ``clock`` (seconds) times ``cfg.max_minutes``, to which the schedule is fitted.

    ``perceptual(pred, target)`` takes (N,3,H,W) frames in [0,1] and returns per-sample or
    scalar losses (e.g. LPIPS); None trains without the perceptual term.
    """
    out = Path(out_dir)
    rank, world, device = _setup_distributed(cfg)
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by WORLD_SIZE={world}")
    main = rank == 0
    model.to(device).train()
    disc = PatchDiscriminator(cfg.disc_channels).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                            weight_decay=cfg.weight_decay)
    dopt = torch.optim.AdamW(disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.9))
    sched = FittedSchedule(opt, cfg)
    start = 0
    if resume:
        start = ckpt.load(out, model, opt, sched, disc, dopt, device)
        log(f"resumed from {out / ckpt.CHECKPOINT_DIR} at step {start}")
    else:
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        ckpt.trim_log(out / "log.jsonl", start)
    fwd: nn.Module = _Reconstruct(model)
    if world > 1:
        fwd = nn.parallel.DistributedDataParallel(fwd, device_ids=[device.index] if device.type == "cuda" else None)
        disc = nn.parallel.DistributedDataParallel(disc, device_ids=[device.index] if device.type == "cuda" else None)
    order = BatchOrder(len(dataset), cfg.batch_size, cfg.seed, rank, world)
    check_first_item(dataset, getattr(model, "image_size", None))
    amp = device.type == "cuda" and cfg.mixed_precision
    if cfg.motion_weight > 0 and not hasattr(model, "target_contexts"):
        raise ValueError(f"train.motion_weight={cfg.motion_weight} needs a context-conditioned "
                         f"tokenizer (kind compressive); {type(model).__name__} has no context frame")
    vqs = [m for m in model.modules() if isinstance(m, VQ)]
    t0, frames_seen, history = time.time(), 0, []
    t_begin, mark, end = clock(), None, sched.resumed(cfg.steps)  # end: the schedule's length
    bar = None
    if cfg.progress and main:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=start, desc="tokenizer", dynamic_ncols=True)
    step = start
    while step < min(cfg.steps, end):
        batch = stack_batch(dataset, order.indices(step)).to(device)
        gan_on = 0 <= cfg.gan_start_step <= step
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            recon, target, aux = fwd(batch)  # (N,3,H,W) each
            recon = recon.float()
            weight = motion_weights(model, batch, target, cfg)  # (N,1,H,W) or None
            err = recon - target
            l1 = (err.abs() if weight is None else err.abs() * weight).mean()
            loss = cfg.l1_weight * l1 + aux["loss"]
            parts = {"l1": l1.item(), "quant": float(aux["loss"].detach())}
            if weight is not None:
                parts["moving_frac"] = float((weight > 1).float().mean())
            if cfg.mse_weight > 0:
                mse_loss = (err.pow(2) if weight is None else err.pow(2) * weight).mean()
                loss = loss + cfg.mse_weight * mse_loss
                parts["mse"] = mse_loss.item()
            if perceptual is not None:
                p = perceptual(recon, target).mean()
                loss = loss + cfg.perceptual_weight * p
                parts["perceptual"] = p.item()
            if gan_on:
                g = hinge_g_loss(disc(recon))
                loss = loss + cfg.gan_weight * g
                parts["gan_g"] = g.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        if gan_on:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                d = hinge_d_loss(disc(target), disc(recon.detach()))
            dopt.zero_grad(set_to_none=True)
            d.backward()
            dopt.step()
            parts["gan_d"] = d.item()
        restarted = sum(v.restart_dead_codes() for v in vqs)
        step += 1
        now = clock() if cfg.max_minutes > 0 else 0.0
        if cfg.max_minutes > 0 and cfg.fit_schedule and (mark or not sched.budget_fitted):
            mark = mark or (step, now)  # (a resumed, already fitted schedule is finished as is)
            fit = fitted_steps(cfg, step, mark, now, t_begin) if (
                sched.total_steps == cfg.steps or step % cfg.log_every == 0) else None
            if fit is not None:
                if sched.total_steps == cfg.steps and fit != cfg.steps:
                    log(f"schedule fitted to max_minutes={cfg.max_minutes}: {fit} steps "
                        f"(train.steps={cfg.steps})")
                end = sched.total_steps = max(fit, step)
                sched.budget_fitted = True
        frames_seen += recon.shape[0] * world
        mse = ((recon.detach().clamp(0, 1) - target) ** 2).mean().item()
        rec = {"step": step, "loss": loss.item(), **parts, "psnr": 10 * math.log10(1 / (mse + 1e-8)),
               "usage": float(aux["usage"]), "perplexity": float(aux["perplexity"]),
               "lr": sched.get_last_lr()[0], "restarted": restarted,
               "elapsed_s": round(time.time() - t0, 2)}
        history.append(rec)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.4f}", psnr=f"{rec['psnr']:.1f}")
        if main and (step % cfg.log_every == 0 or step in (cfg.steps, end)):
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
        if main and cfg.image_every and step % cfg.image_every == 0:
            ckpt.save_grid(out / "samples" / f"step_{step:06d}.png", target, recon)
        over_time = (cfg.max_minutes > 0 and now - t_begin > cfg.max_minutes * 60) or (
            stop_at is not None and step >= stop_at)
        if step % cfg.save_every == 0 or step in (cfg.steps, end) or over_time:
            if main:
                ckpt.save(out, model, opt, sched, disc, dopt, step)
            if world > 1:
                dist.barrier()
        if over_time:
            log(f"stopping at step {step} (max_minutes={cfg.max_minutes}, stop_at={stop_at})")
            break
    if bar is not None:
        bar.close()
    elapsed = time.time() - t0
    return {"step": step, "elapsed_s": elapsed, "frames_per_s": frames_seen / max(elapsed, 1e-9),
            "last": history[-1] if history else None, "history": history}
