"""Held-out reconstruction evaluation of a tokenizer, with injected metric functions.

    metrics = {"mse": mse, "psnr": psnr}       # fn(pred (N,3,H,W), target) -> (N,)
    res = evaluate_frame(tok, frames_dataset, metrics)
    res = evaluate_compressive(tok, clip_dataset, metrics, compare=frame_tok)

Reported: metric means, tokens per frame, codebook usage over the whole set (fraction of
the vocabulary that occurs) and its perplexity, and encode+decode throughput (frames/s,
metrics excluded).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class _Acc:
    """Sums of per-frame metric values and a token histogram."""

    def __init__(self, metrics: dict[str, Metric], vocab: int):
        self.metrics, self.sums, self.n = metrics, {k: 0.0 for k in metrics}, 0
        self.hist = torch.zeros(vocab, dtype=torch.long)

    def add(self, pred: torch.Tensor, target: torch.Tensor, ids: torch.Tensor | None = None) -> None:
        for k, fn in self.metrics.items():
            self.sums[k] += float(fn(pred, target).double().sum())
        self.n += pred.shape[0]
        if ids is not None:
            self.hist += torch.bincount(ids.reshape(-1).cpu(), minlength=self.hist.numel())

    def result(self) -> dict:
        out = {k: v / max(self.n, 1) for k, v in self.sums.items()}
        out["frames"] = self.n
        if self.hist.sum() > 0:
            p = self.hist.double() / self.hist.sum()
            out["codebook_usage"] = float((self.hist > 0).double().mean())
            out["perplexity"] = math.exp(float(-(p[p > 0] * p[p > 0].log()).sum()))
        return out


class _Changed:
    """Pooled squared error on the pixels where the true future differs from the context.

    On scenes where little moves, whole-frame PSNR is dominated by the static background
    (copying the context frame already scores high); this isolates what moved.
    """

    def __init__(self, threshold: float = 0.1):
        self.threshold, self.se, self.n = threshold, 0.0, 0

    def add(self, pred: torch.Tensor, target: torch.Tensor, context: torch.Tensor) -> None:
        """(N,3,H,W) each; context broadcast to target's frames by the caller."""
        mask = (target - context).abs().amax(1, keepdim=True) > self.threshold  # (N,1,H,W)
        sq = (pred.float() - target.float()) ** 2  # select, never multiply: NaN outside stays out
        self.se += float(torch.where(mask, sq, torch.zeros_like(sq)).sum()) / 3
        self.n += int(mask.sum())

    def result(self) -> dict:
        mse = self.se / max(self.n, 1)
        return {"changed_pixels": self.n, "changed_mse": mse,
                "changed_psnr": 10 * math.log10(1 / (mse + 1e-8))}


def _frames_of(item) -> torch.Tensor:
    return item["frames"] if isinstance(item, dict) else item


def _batches(dataset, batch_size: int, max_items: int):
    n = len(dataset) if max_items <= 0 else min(len(dataset), max_items)
    for s in range(0, n, batch_size):
        yield torch.stack([_frames_of(dataset[i]) for i in range(s, min(n, s + batch_size))])


def _device(tok) -> torch.device:
    return next(tok.parameters()).device


@torch.no_grad()
def evaluate_frame(tok, dataset, metrics: dict[str, Metric], batch_size: int = 32,
                   max_items: int = 0) -> dict:
    """Frames dataset (items (3,H,W)) -> metric means, usage, tokens/frame, frames/s."""
    tok.eval()
    acc, seconds = _Acc(metrics, tok.vocab_size), 0.0
    for x in _batches(dataset, batch_size, max_items):  # (B,3,H,W)
        x = x.to(_device(tok))
        t0 = time.perf_counter()
        ids = tok.encode(x.unsqueeze(1))  # (B,1,h,w)
        rec = tok.decode(ids)[:, 0]  # (B,3,H,W)
        seconds += time.perf_counter() - t0
        acc.add(rec, x, ids)
    res = acc.result()
    res.update(kind="frame", tokens_per_frame=tok.tokens_per_frame, vocab_size=tok.vocab_size,
               frames_per_s=res["frames"] / max(seconds, 1e-9))
    return res


@torch.no_grad()
def evaluate_compressive(tok, dataset, metrics: dict[str, Metric], batch_size: int = 8,
                         max_items: int = 0, compare=None) -> dict:
    """Clip dataset (items (T,3,H,W): context + T-1 future frames) -> context / future scores.

    ``compare`` (a FrameTokenizer) is scored on the same future frames, for the trade-off
    between tokens per future frame and quality. ``copy_context`` scores the trivial
    reconstruction "future = context frame"; ``changed_*`` entries score only the pixels
    that differ from the context by more than 0.1 (see :class:`_Changed`).
    """
    tok.eval()
    ctx_acc, fut_acc = _Acc(metrics, tok.vocab_size), _Acc(metrics, tok.vocab_size)
    cmp_acc = _Acc(metrics, compare.vocab_size) if compare is not None else None
    copy_acc = _Acc(metrics, 1)
    changed = {"future": _Changed(), "copy_context": _Changed(), "frame_tokenizer_future": _Changed()}
    seconds, frames = 0.0, 0
    for clip in _batches(dataset, batch_size, max_items):  # (B,T,3,H,W)
        clip = clip.to(_device(tok))
        ctx, fut = clip[:, 0], clip[:, 1:]
        t0 = time.perf_counter()
        cids, fids = tok.encode(ctx, fut)
        ctx_rec, fut_rec = tok.decode(cids, fids)
        seconds += time.perf_counter() - t0
        frames += clip.shape[0] * clip.shape[1]
        ctx_acc.add(ctx_rec, ctx, cids)
        target, ctx_rep = fut.flatten(0, 1), ctx.unsqueeze(1).expand_as(fut).flatten(0, 1)
        fut_acc.add(fut_rec.flatten(0, 1), target, fids)
        changed["future"].add(fut_rec.flatten(0, 1), target, ctx_rep)
        copy_acc.add(ctx_rep, target)
        changed["copy_context"].add(ctx_rep, target, ctx_rep)
        if compare is not None:
            cid = compare.encode(fut.to(_device(compare)))
            rec = compare.decode(cid).flatten(0, 1).to(fut.device)
            cmp_acc.add(rec, target, cid)
            changed["frame_tokenizer_future"].add(rec, target, ctx_rep)
    res = {"kind": "compressive", "vocab_size": tok.vocab_size, "context_tokens": tok.context_tokens,
           "tokens_per_future_frame": tok.tokens_per_future_frame,
           "frames_per_s": frames / max(seconds, 1e-9),
           "context": ctx_acc.result(), "future": {**fut_acc.result(), **changed["future"].result()},
           "copy_context": {**copy_acc.result(), **changed["copy_context"].result()}}
    res["copy_context"].pop("codebook_usage", None)
    if cmp_acc is not None:
        res["frame_tokenizer_future"] = {**cmp_acc.result(), "tokens_per_frame": compare.tokens_per_frame,
                                         **changed["frame_tokenizer_future"].result()}
    return res
