"""Recovery by distillation: train the compressed backbone (student) towards the uncompressed
one's (teacher) next-token distributions on the task's training sequences (``wm compress
--distill``), the alternative to continued MLE that issue 23 names.

Loss per step: ``T² · KL(softmax(z_t / T) ‖ softmax(z_s / T))`` (Hinton et al. 2015), averaged
over every real (non-padding) position whose next token is real too, so the whole sequence is
distilled, not only the labelled answer. AdamW with the recovery run's lr, weight decay, betas,
linear warm-up then constant, and gradient clipping (``CompressConfig.recover``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def distill_loss(student_logits: Tensor, teacher_logits: Tensor, mask: Tensor | None,
                 temperature: float = 1.0) -> Tensor:
    """``T² · KL(teacher ‖ student)`` (nats) averaged over positions where ``mask`` (B, L) is
    True (all when None). Logits (B, L, V); computed in float32."""
    t = F.log_softmax(teacher_logits.float() / temperature, -1)
    s = F.log_softmax(student_logits.float() / temperature, -1)
    kl = (t.exp() * (t - s)).sum(-1)  # (B, L)
    if mask is not None:
        kl = kl[mask]
    return kl.mean() * temperature ** 2


def _positions(am: Tensor | None, shape) -> Tensor:
    """(B, L) True where position t and t+1 are real tokens (the prediction at t has a target)."""
    if am is None:
        m = torch.ones(shape, dtype=torch.bool)
        m[:, -1] = False
        return m
    am = am.bool()
    m = torch.zeros_like(am)
    m[:, :-1] = am[:, :-1] & am[:, 1:]
    return m


def _forward(model, lm):
    from worldmodels.train.rollout import positions_from_mask

    am = lm.get("attention_mask")
    kw = {} if am is None else {"attention_mask": am, "position_ids": positions_from_mask(am)}
    return model(input_ids=lm["input_ids"], **kw).logits


def distill(student: nn.Module, teacher: nn.Module, task, steps: int, recover, temperature: float = 1.0,
            log=None) -> list[float]:
    """``steps`` AdamW steps of :func:`distill_loss` on batches of ``task.lm_dataset("train")``
    (shuffled with ``recover.seed``, ``recover.batch_size`` items); ``recover`` is an MLEConfig.
    Returns the loss of each step. The student is left in eval mode."""
    opt_cfg = recover.optim
    dev = next(student.parameters()).device
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=opt_cfg.lr, betas=tuple(opt_cfg.betas),
                            weight_decay=opt_cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / opt_cfg.warmup_steps) if opt_cfg.warmup_steps else 1.0)
    ds = task.lm_dataset("train")
    g = torch.Generator().manual_seed(recover.seed)
    order: list[int] = []
    teacher.eval()
    student.train()
    losses = []
    for step in range(steps):
        if len(order) < recover.batch_size:
            order += torch.randperm(len(ds), generator=g).tolist()
        idx, order = order[:recover.batch_size], order[recover.batch_size:]
        lm = {k: v.to(dev) for k, v in task.lm_batch(task.collate([ds[i] for i in idx])).items()}
        with torch.no_grad():
            target = _forward(teacher, lm)
        logits = _forward(student, lm)
        loss = distill_loss(logits, target, _positions(lm.get("attention_mask"), logits.shape[:2]).to(dev),
                            temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if opt_cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, opt_cfg.grad_clip)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if log is not None and (step + 1) % max(1, recover.log_every) == 0:
            log(f"distill step {step + 1}/{steps}: KL {losses[-1]:.4f}")
    student.eval()
    return losses


__all__ = ["distill", "distill_loss"]
