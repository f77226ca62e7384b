"""MLE (next-token cross-entropy) trainer shared by every modality; it only talks to a Task.

    from worldmodels.train.mle import MLEConfig, train_mle
    train_mle(model, task, MLEConfig(steps=2000, batch_size=16), "runs/wm", resume=False,
              export=lambda m, step: m.save_pretrained("runs/wm/backbone"))

AdamW, linear warm-up then constant or cosine, grad-norm clipping, bf16 autocast on CUDA,
gradient accumulation, torchrun DDP/FSDP, periodic held-out loss, atomic checkpoints with exact
resume (model, optimizer, scheduler, RNG, sampler position), JSONL logs, tqdm with tokens/s.
The loss of one optimizer step is (sum of token losses) / (tokens on loss in that step, over
all micro-batches and ranks), so accumulation and data parallelism give the same gradient as
one big batch.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from worldmodels.tasks.base import IGNORE_INDEX, to_device
from worldmodels.train import checkpoint as ckpt
from worldmodels.train.distributed import DistInfo, all_reduce_sum, unwrap, wrap_model
from worldmodels.train.logging import RunLogger, progress
from worldmodels.train.mle_config import MLEConfig, OptimConfig
from worldmodels.train.rollout import positions_from_mask
from worldmodels.train.sampler import ResumableBatchSampler
from worldmodels.train.tbptt import WindowedLM


def make_optimizer(model, cfg: OptimConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or "embed" in name or "norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


class FittedLambdaLR(torch.optim.lr_scheduler.LambdaLR):
    """LambdaLR whose factor ``fn(step, total_steps)`` also reads ``self.total_steps``, the
    schedule's length: set it to refit the schedule (a time budget); it is saved in
    ``state_dict`` so a resumed run continues the fitted schedule."""

    def __init__(self, opt, fn, total_steps: int):
        self.total_steps, self.budget_fitted = int(total_steps), False
        super().__init__(opt, lambda step: fn(step, self.total_steps))

    def resumed(self, steps: int) -> int:
        """After loading a checkpoint: the step the run ends at -- a schedule fitted to a time
        budget keeps its length, any other spans ``steps`` (which --resume may raise)."""
        if not self.budget_fitted:
            self.total_steps = steps
        return min(steps, self.total_steps)


def make_scheduler(opt, cfg: OptimConfig, total_steps: int) -> FittedLambdaLR:
    def factor(step: int, total: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return FittedLambdaLR(opt, factor, total_steps)


class BudgetFit:
    """The number of steps that fit in a wall-clock budget, from the measured step rate.

    ``update(step, now)`` after every optimizer step (``now`` from the run's clock): the rate
    is measured from the end of this process's first step (which pays for compilation and
    caches); from ``measure`` steps later on (the warm-up, at most 100, at least 5; or, for slow
    steps, once 5 % of the budget and 2 steps are measured) it returns
    ``min(max_steps, step + floor(rate * time_left))`` -- refitted every ``every`` steps --
    else None."""

    def __init__(self, budget_s: float, max_steps: int, start_time: float, warmup: int, every: int):
        self.budget_s, self.max_steps, self.start = budget_s, max_steps, start_time
        self.measure, self.every = max(5, min(warmup, 100)), max(1, every)
        self.mark: tuple[int, float] | None = None
        self.fitted: int | None = None

    def update(self, step: int, now: float) -> int | None:
        if self.mark is None:
            self.mark = (step, now)
            return None
        done = step - self.mark[0]
        early = done >= 2 and now - self.mark[1] >= 0.05 * self.budget_s  # slow steps
        if (done < self.measure and not early) or (self.fitted is not None and step % self.every):
            return None
        rate = done / max(now - self.mark[1], 1e-9)
        left = self.budget_s - (now - self.start)
        self.fitted = min(self.max_steps, step + max(0, int(rate * left)))
        return self.fitted


def autocast(device: torch.device, precision: str):
    use_bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)


def token_loss_sum(model, lm: dict) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy (float32, nats) over labelled positions, and their count.

    ``lm``: ``input_ids`` (B, L), ``labels`` (B, L) with ``IGNORE_INDEX`` where no loss is taken,
    optional ``attention_mask`` (B, L) (0 on padding). With a mask, position ids come from it
    (:func:`~worldmodels.train.rollout.positions_from_mask`, as in the rollout), so a left-padded
    row trains at the positions it is sampled at. Only labelled positions' logits enter the
    loss: they are selected by indexing, so non-finite logits at ignored positions (padding,
    forced tokens) reach neither the loss nor the gradient (``ignore_index`` alone still
    back-propagates ``0 * nan`` through their log-softmax).
    """
    am = lm.get("attention_mask")
    kwargs = {} if am is None else {"attention_mask": am, "position_ids": positions_from_mask(am)}
    logits = model(input_ids=lm["input_ids"], **kwargs).logits
    labels = lm["labels"][:, 1:]
    keep = labels != IGNORE_INDEX  # (B, L-1)
    loss = F.cross_entropy(logits[:, :-1][keep].float(), labels[keep], reduction="sum")  # (n, V) rows
    return loss, int(keep.sum())


def forward_backward(model, task, micro_batches: list[dict], device, precision: str = "fp32",
                     window: int | None = None, border: str = "attached", noise=None) -> dict:
    """One optimizer step's gradients: loss normalised by the global count of loss tokens.

    ``window``: truncated BPTT (``train.tbptt_step=sequence``): each micro-batch runs in
    windows of ``window`` tokens (:class:`~worldmodels.train.tbptt.WindowedLM`, ``border``),
    each window backpropagated as it comes; the gradients of all windows accumulate into this
    step with the same normaliser, so the loss value equals the full pass's. ``noise``: a
    callable lm -> lm applied to each micro-batch's ``lm_batch`` (``train.input_noise``)."""
    lms = [to_device(_lm(task, b, noise), device) for b in micro_batches]
    local = sum(int((lm["labels"][:, 1:] != IGNORE_INDEX).sum()) for lm in lms)
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    total = float(all_reduce_sum(torch.tensor(float(local), device=device)))
    loss_sum, tokens = 0.0, 0
    for i, lm in enumerate(lms):
        run = None if window is None else WindowedLM(model, lm, window, border)
        n = 1 if run is None else len(run)
        for k in range(n):
            last = i == len(lms) - 1 and k == n - 1
            sync = last or not hasattr(model, "no_sync")
            ctx = model.no_sync() if not sync else _null()
            with ctx, autocast(device, precision):
                s = token_loss_sum(model, lm)[0] if run is None else run.loss_sum(k)
                (s * world / total).backward()  # DDP averages over ranks -> sum / total overall
            loss_sum += float(s.detach())
        tokens += task.tokens_in(lm)
    return {"loss_sum": loss_sum, "loss_tokens": local, "tokens": tokens}


def _lm(task, batch: dict, noise=None) -> dict:
    lm = task.lm_batch(batch)
    return noise(lm) if noise is not None else lm


def input_noise(task, cfg: MLEConfig, step: int, rank: int = 0):
    """``train.input_noise`` of optimizer step ``step`` as a callable lm -> lm (None when off):
    ``task.noise_inputs`` with a generator seeded from (seed, step, rank), so a resumed run
    draws the same noise."""
    if not cfg.input_noise:
        return None
    gen = torch.Generator().manual_seed((cfg.seed * 1_000_003 + step) * 1_009 + rank)
    return lambda lm: task.noise_inputs(lm, cfg.input_noise, gen)


def window_steps(model, task, micro_batches: list[dict], device, precision: str, window: int,
                 border: str, zero_grad, noise=None):
    """Truncated BPTT with an optimizer step per window (``train.tbptt_step=window``, Among
    Us): yields once per window k after ``zero_grad()`` and the backward of window k of every
    micro-batch, normalised by the loss tokens of window k (the token mean of that step). A
    window without loss tokens in any micro-batch takes no step (it is run without gradient
    to carry the state; windows after the last one with loss tokens are not run). One process.
    Yields dicts with ``loss_sum``, ``loss_tokens``, ``tokens`` (the batch's tokens, on the
    last step) and ``last`` (True on the batch's last step)."""
    lms = [to_device(_lm(task, b, noise), device) for b in micro_batches]
    runs = [WindowedLM(model, lm, window, border) for lm in lms]
    counts = [sum(r.loss_tokens(k) for r in runs if k < len(r)) for k in range(max(map(len, runs)))]
    stepped = [k for k, c in enumerate(counts) if c > 0]
    for k in range(stepped[-1] + 1 if stepped else 0):
        if counts[k]:
            zero_grad()
        loss_sum = 0.0
        for r in runs:
            if k >= len(r):
                continue
            with autocast(device, precision), (_null() if counts[k] else torch.no_grad()):
                s = r.loss_sum(k)
                if counts[k]:
                    (s / counts[k]).backward()
            loss_sum += float(s.detach())
        if counts[k]:
            last = k == stepped[-1]
            yield {"loss_sum": loss_sum, "loss_tokens": counts[k], "last": last,
                   "tokens": sum(task.tokens_in(lm) for lm in lms) if last else 0}


def _step_units(model, task, micro: list[dict], device, cfg: MLEConfig, opt, noise=None):
    """The gradients of each optimizer step a batch makes (one, or one per window with
    ``train.tbptt_step=window``), zeroed before each; yields :func:`forward_backward`'s dict."""
    if cfg.tbptt_window is not None and cfg.tbptt_step == "window":
        yield from window_steps(model, task, micro, device, cfg.precision, cfg.tbptt_window,
                                cfg.tbptt_border, lambda: opt.zero_grad(set_to_none=True), noise)
        return
    opt.zero_grad(set_to_none=True)
    yield forward_backward(model, task, micro, device, cfg.precision, cfg.tbptt_window,
                           cfg.tbptt_border, noise)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


@torch.no_grad()
def unigram_entropy(task, dataset, max_items: int = 2048, batch: int = 64) -> float:
    """Entropy (nats) of the on-loss token distribution: the loss of a context-free model."""
    idx = torch.linspace(0, len(dataset) - 1, min(max_items, len(dataset))).long().unique()
    counts = None
    for i in range(0, len(idx), batch):
        lab = task.lm_batch(task.collate([dataset[int(j)] for j in idx[i : i + batch]]))["labels"]
        lab = lab[lab != IGNORE_INDEX]
        c = torch.bincount(lab, minlength=task.vocab_size).double()
        counts = c if counts is None else counts + c
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


@torch.no_grad()
def evaluate(model, task, loader, device, precision: str, max_batches: int,
             window: int | None = None) -> float:
    """Mean held-out token loss (nats) over up to ``max_batches`` micro-batches, all ranks.
    ``window``: run each sequence in windows with the state carried (``train.tbptt_window``:
    the same value, the logits of one window at a time)."""
    model.eval()
    s = torch.zeros(2, dtype=torch.float64, device=device)
    for i, batch in enumerate(loader):
        if i >= max_batches:
            break
        lm = to_device(task.lm_batch(batch), device)
        with autocast(device, precision):
            if window is None:
                loss, n = token_loss_sum(model, lm)
            else:
                run = WindowedLM(model, lm, window)
                loss = sum(float(run.loss_sum(k)) for k in range(len(run)))
                n = int((lm["labels"][:, 1:] != IGNORE_INDEX).sum())
        s += torch.tensor([float(loss), n], dtype=torch.float64, device=device)
    model.train()
    s = all_reduce_sum(s)
    return float(s[0] / s[1].clamp(min=1))


def train_mle(model, task, cfg: MLEConfig, run_dir, info: DistInfo | None = None,
              resume: bool = False, export=None, train_set=None, eval_set=None,
              until: int | None = None, clock=time.monotonic) -> dict:
    """Train ``model`` on ``task``; ``export(unwrapped_model, step)`` runs on rank 0 after each
    checkpoint (e.g. to refresh a world-model directory). ``until`` stops early at that step
    (with a checkpoint) as if interrupted; the schedule still spans ``cfg.steps``. With
    ``cfg.tbptt_step == "window"`` (an optimizer step per window) ``until`` and the periodic
    checkpoints wait for the end of the sequence in progress, so a checkpoint never holds a
    carried state and resuming stays exact; ``cfg.steps`` and the time budget stop inside a
    sequence (its remaining windows are dropped). With
    ``cfg.max_minutes`` the schedule is fitted to the budget (:class:`BudgetFit`, timed by
    ``clock``, seconds). Returns the last logged metrics."""
    from torch.utils.data import DataLoader

    info = info or DistInfo(device=torch.device("cpu"))
    dev = info.device
    per_window = cfg.tbptt_window is not None and cfg.tbptt_step == "window"
    if per_window and info.world_size > 1:
        raise ValueError(f"train.tbptt_step=window runs in one process (ranks would disagree on "
                         f"the number of windows); with {info.world_size} ranks use "
                         f"train.tbptt_step=sequence")
    soft_until, hard_until = (until, None) if per_window else (None, until)
    train_set = train_set if train_set is not None else task.dataset("train")
    eval_set = eval_set if eval_set is not None else task.dataset("test")
    model.to(dev).train()
    if cfg.gradient_checkpointing:
        from worldmodels.models.hf import enable_gradient_checkpointing

        enable_gradient_checkpointing(model)
    ddp = wrap_model(model, info, cfg.distributed)
    opt = make_optimizer(ddp, cfg.optim)
    sched = make_scheduler(opt, cfg.optim, cfg.steps)
    sampler = ResumableBatchSampler(len(train_set), cfg.batch_size, seed=cfg.seed,
                                    rank=info.rank, world_size=info.world_size)
    step, tokens_seen, stop = 0, 0, cfg.steps
    last = ckpt.latest_checkpoint(run_dir) if resume else None
    if resume and last is None and info.is_main:
        print(f"--resume: no checkpoint in {run_dir}/checkpoints, starting from step 0")
    if last is not None:
        state = ckpt.load_checkpoint(last, {"model": unwrap(ddp)}, opt, sched, rank=info.rank)
        step, tokens_seen = state["step"], state.get("tokens", 0)
        sampler.load_state_dict(state["sampler"])
        stop = sched.resumed(cfg.steps)
    loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=task.collate,
                        num_workers=cfg.num_workers)
    eval_sampler = ResumableBatchSampler(len(eval_set), cfg.batch_size, seed=0, shuffle=False,
                                         rank=info.rank, world_size=info.world_size)
    eval_loader = DataLoader(eval_set, batch_sampler=eval_sampler, collate_fn=task.collate)
    logger = RunLogger(run_dir, enabled=info.is_main, tensorboard="auto" if cfg.tensorboard else False,
                       wandb=cfg.wandb)
    if step == 0 and info.is_main:
        logger.log(0, {"unigram_entropy": unigram_entropy(task, train_set)})
    bar = progress(cfg.steps, step, enabled=info.is_main, desc="pretrain")
    it, metrics = iter(loader), {}
    t0, tok0, loss_acc, n_acc = time.time(), 0, 0.0, 0
    stop = min(stop, hard_until) if hard_until is not None else stop
    due_save = False
    t_start = clock()
    # a resumed run whose schedule was already fitted finishes that schedule (not refitted)
    fit = (BudgetFit(60 * cfg.max_minutes, cfg.steps, t_start, cfg.optim.warmup_steps, cfg.log_every)
           if cfg.max_minutes and cfg.fit_schedule and not sched.budget_fitted else None)
    while step < stop:
        micro = []
        for _ in range(cfg.grad_accum):
            try:
                micro.append(next(it))
            except StopIteration:
                it = iter(loader)  # the sampler has moved on to the next epoch
                micro.append(next(it))
            sampler.consumed(1)
        noise = input_noise(task, cfg, step, info.rank)
        for out in _step_units(ddp, task, micro, dev, cfg, opt, noise):
            gnorm = torch.nn.utils.clip_grad_norm_(ddp.parameters(), cfg.optim.grad_clip or float("inf"))
            opt.step()
            sched.step()
            step += 1
            seq_end = out.get("last", True)  # False inside a sequence (train.tbptt_step=window)
            if soft_until is not None and seq_end and step >= soft_until:
                stop = step
            due_save = due_save or bool(cfg.save_every and step % cfg.save_every == 0)
            tokens_seen += out["tokens"] * info.world_size
            tok0 += out["tokens"] * info.world_size
            loss_acc, n_acc = loss_acc + out["loss_sum"], n_acc + out["loss_tokens"]
            bar.update(1)
            if cfg.max_minutes:  # every rank takes part, so all stop at the same step
                now = clock()
                total = fit.update(step, now) if fit is not None else None
                if total is not None:  # rank 0's estimate for every rank
                    total = int(all_reduce_sum(torch.tensor(float(total if info.is_main else 0), device=dev)))
                    if info.is_main and sched.total_steps != total and sched.total_steps == cfg.steps:
                        print(f"schedule fitted to max_minutes={cfg.max_minutes}: {total} steps "
                              f"(train.steps={cfg.steps})")
                    sched.total_steps, sched.budget_fitted = max(total, step), True
                    stop = min(cfg.steps if hard_until is None else hard_until, max(total, step))
                late = torch.tensor(float(now - t_start > 60 * cfg.max_minutes), device=dev)
                if float(all_reduce_sum(late)) > 0:
                    stop = step
            if step % cfg.log_every == 0 or step == stop:
                dt = max(time.time() - t0, 1e-9)
                metrics = {"loss": loss_acc / max(n_acc, 1), "lr": sched.get_last_lr()[0],
                           "grad_norm": float(gnorm), "tokens_per_s": tok0 / dt, "tokens": tokens_seen}
                bar.set_postfix(loss=f"{metrics['loss']:.3f}", tok_s=f"{metrics['tokens_per_s']:.0f}")
                logger.log(step, metrics)
                t0, tok0, loss_acc, n_acc = time.time(), 0, 0.0, 0
            if (cfg.eval_every and step % cfg.eval_every == 0) or step == stop:
                metrics["eval_loss"] = evaluate(ddp, task, eval_loader, dev, cfg.precision, cfg.eval_batches,
                                               cfg.tbptt_window)
                logger.log(step, {"eval_loss": metrics["eval_loss"]})
            if (due_save and seq_end) or step == stop:  # window steps: at a sequence's end
                due_save = False
                ckpt.save_checkpoint(run_dir, step, {"model": unwrap(ddp)}, opt, sched,
                                     state={"sampler": sampler.state_dict(), "tokens": tokens_seen},
                                     keep=cfg.keep_checkpoints, rank=info.rank,
                                     world_size=info.world_size)
                if export is not None and info.is_main:
                    export(unwrap(ddp), step)
            if step >= stop:  # train.steps or the budget reached inside a sequence
                break
    bar.close()
    logger.close()
    return {"step": step, **metrics}

__all__ = ["MLEConfig", "OptimConfig", "evaluate", "forward_backward", "train_mle"]
