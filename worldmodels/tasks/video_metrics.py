"""What a video task measures: per-clip metrics, the baselines beside them, example GIFs and
the evaluation report (``wm eval video``).

Metrics (RLVR-World / iVideoGPT, ``worldmodels/metrics.py``), one value per clip sample:
``mse``, ``mae``, ``psnr``, ``ssim`` (and ``lpips`` when :attr:`VideoMetricsMixin.lpips_metric`
is set, ``stlpips`` when :attr:`VideoMetricsMixin.stlpips_metric` is) over all predicted frames
(*multi-step*), the same with suffix ``_1`` on the first predicted frame only (*single-step*:
the ground-truth context is given), ``token_acc`` / ``token_acc_1`` (fraction of predicted
frame tokens equal to the ground truth's) and ``repetition_rate`` (1 when the last two
predicted frames have identical tokens).

Baselines on the same clips: ``copy_last`` (the last context frame, pixels), ``copy_last_tokens``
(its tokens decoded through the tokenizer: the "no dynamics" token model) and ``tokenizer`` (the
tokenizer's own reconstruction of the truth: the ceiling a token model can reach).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from worldmodels import metrics as M

_FRAME_METRICS = {"mse": (M.mse, False), "mae": (M.mae, False), "psnr": (M.psnr, True),
                  "ssim": (M.ssim, True)}
BASELINES = ("copy_last", "copy_last_tokens", "tokenizer")
_REPORTED = ("mse", "mae", "psnr", "ssim", "lpips", "stlpips")  # report columns, in this order


class VideoMetricsMixin:
    """Metrics, baselines, examples and report of :class:`~worldmodels.tasks.video.VideoTask`."""

    #: an ``metrics.LPIPSMetric`` to add ``lpips`` / ``lpips_1`` (set by ``wm eval video``)
    lpips_metric = None
    #: an ``metrics.STLPIPSMetric`` to add ``stlpips`` / ``stlpips_1`` (``wm eval video --stlpips``)
    stlpips_metric = None

    @property
    def higher_is_better(self) -> dict[str, bool]:
        out = {}
        for name, (_, hib) in {**_FRAME_METRICS, "lpips": (None, False), "stlpips": (None, False)}.items():
            out[name] = out[f"{name}_1"] = hib
        out.update(token_acc=True, token_acc_1=True, repetition_rate=False)
        return out

    def reward_items(self, batch: dict) -> dict:
        """{"target_frames": (B,T,3,H,W), "target_ids": (B,T,N)} of the predicted frames."""
        c, F = self.spec.context_frames, self.horizon
        items = {"target_frames": batch["frames"][:, c : c + F]}
        if "frame_ids" in batch:
            items["target_ids"] = batch["frame_ids"][:, c : c + F]
        return items

    @torch.no_grad()
    def metrics(self, predictions: dict, items: dict) -> dict[str, Tensor]:
        """{"frames" (B,T,3,H,W)[, "ids" (B,T,N)]} vs ``reward_items`` -> {name: (B,)} (see module doc)."""
        pred = predictions["frames"].float().cpu()
        tgt = items["target_frames"].float().cpu()
        fns = {name: fn for name, (fn, _) in _FRAME_METRICS.items()}
        if self.lpips_metric is not None:
            fns["lpips"] = self.lpips_metric
        if self.stlpips_metric is not None:
            fns["stlpips"] = self.stlpips_metric
        out = {}
        for name, fn in fns.items():
            out[name] = fn(pred, tgt).float().cpu()
            out[f"{name}_1"] = fn(pred[:, :1], tgt[:, :1]).float().cpu()
        ids = predictions.get("ids")
        if ids is not None and "target_ids" in items:
            hit = (ids.cpu() == items["target_ids"].cpu()).float()  # (B,T,N)
            out["token_acc"] = hit.mean((1, 2))
            out["token_acc_1"] = hit[:, 0].mean(1)
            if ids.shape[1] >= 2:
                out["repetition_rate"] = M.repeats(ids.cpu()).float()
        return out

    @torch.no_grad()
    def baselines(self, batch: dict) -> dict[str, dict]:
        """copy_last / copy_last_tokens / tokenizer predictions (same format as ``decode``)."""
        c, F = self.spec.context_frames, self.horizon
        target = batch["frames"][:, c : c + F]
        ctx = batch.get("ctx_ids")
        last_ids = batch["frame_ids"][:, c - 1 : c].expand(-1, F, -1)
        true_ids = batch["frame_ids"][:, c : c + F]
        return {
            "copy_last": {"frames": batch["frames"][:, c - 1 : c].expand_as(target), "ids": None},
            "copy_last_tokens": {"frames": self.decode_ids(last_ids, ctx).cpu(), "ids": last_ids},
            "tokenizer": {"frames": self.decode_ids(true_ids, ctx).cpu(), "ids": true_ids},
        }

    def save_examples(self, out_dir: str | Path, batch: dict, predictions: dict, names: list[str]) -> list[str]:
        """One side-by-side GIF (ground truth | prediction) per name, for the first rows of ``batch``."""
        c = self.spec.context_frames
        paths = []
        for j, name in enumerate(names):
            p = Path(out_dir) / f"{name}.gif"
            _gif(p, batch["frames"][j, :c], batch["frames"][j, c:], predictions["frames"][j].cpu())
            paths.append(str(p))
        return paths

    def report(self, res: dict) -> tuple[dict, str]:
        """The generic evaluation result (``worldmodels.evaluate``) as the video report:
        ``single`` (first predicted frame) and ``multi`` (all) blocks, each with the model's
        best-of-n / std / mean per metric and the baselines; JSON dict + markdown."""
        m, b = res["metrics"], res["baselines"]
        names = [k for k in _REPORTED if k in m]
        out = {k: v for k, v in res.items() if k not in ("metrics", "baselines", "examples")}
        out.update(clips=res["items"], context_frames=self.spec.context_frames,
                   future_frames=self.horizon, gifs=res.get("examples", []))
        for name, metric in (("lpips", self.lpips_metric), ("stlpips", self.stlpips_metric)):
            if name in m and metric is not None:
                out[f"{name}_net"] = metric.net  # which trunk the column used
        for block, suffix in (("single", "_1"), ("multi", "")):
            r = {k: m[k + suffix] for k in names}
            for base in BASELINES:
                r[base] = {k: b[base][k + suffix] for k in names if k + suffix in b.get(base, {})}
            if "token_acc" + suffix in m:
                r["token_acc"] = m["token_acc" + suffix]
                r["copy_last_tokens"]["token_acc"] = b["copy_last_tokens"]["token_acc" + suffix]["mean"]
            for base in BASELINES:
                r[base] = {k: (v["mean"] if isinstance(v, dict) else v) for k, v in r[base].items()}
            vs = res.get("vs_baselines", {}).get("copy_last", {})
            r["vs_copy_last"] = {k: vs[k + suffix] for k in names if k + suffix in vs}
            out[block] = r
        rep = m.get("repetition_rate")
        out["multi"]["repetition_rate"] = rep["mean"] if rep else None
        return out, markdown_table(out)


def markdown_table(res: dict) -> str:
    """The video report as a markdown table (model rows, then the three baselines)."""
    ms = [m for m in _REPORTED if m in res["single"]]
    lines = [f"Held-out clips: {res['clips']}, {res['n_samples']} samples each, context "
             f"{res['context_frames']} frame(s), multi-step {res['future_frames']} frames, "
             f"temperature {res['temperature']}.", "",
             "| setting | " + " | ".join(ms) + " | token acc |", "|---" * (len(ms) + 2) + "|"]
    for k, label in (("single", "single-step"), ("multi", f"multi-step ({res['future_frames']})")):
        r = res[k]
        cols = ms + (["token_acc"] if "token_acc" in r else [])
        lines.append(f"| {label}: model best-of-{res['n_samples']} | "
                     + " | ".join(f"{r[m]['best_of_n']:.4f} ± {r[m]['std']:.4f}" for m in cols) + " |")
        lines.append(f"| {label}: model mean of samples (95% CI over clips) | "
                     + " | ".join(_mean_ci(r[m]) for m in cols) + " |")
        lines.append(f"| {label}: copy last frame (pixels) | "
                     + " | ".join(f"{r['copy_last'][m]:.4f}" for m in ms) + " | – |")
        tok = r["copy_last_tokens"].get("token_acc")
        lines.append(f"| {label}: copy last frame's tokens | "
                     + " | ".join(f"{r['copy_last_tokens'][m]:.4f}" for m in ms)
                     + (f" | {tok:.4f} |" if tok is not None else " | – |"))
        lines.append(f"| {label}: tokenizer reconstruction (ceiling) | "
                     + " | ".join(f"{r['tokenizer'][m]:.4f}" for m in ms) + " | 1 |")
        if r.get("vs_copy_last"):
            lines.append(f"| {label}: model − copy last frame, paired (95% CI over clips) | "
                         + " | ".join(_mean_ci(r["vs_copy_last"][m]) if m in r["vs_copy_last"] else "–"
                                      for m in ms) + " | – |")
    nets = [f"{k} = {label}({res[k + '_net']})" for k, label in (("lpips", "LPIPS"), ("stlpips", "ST-LPIPS"))
            if k in ms and res.get(k + "_net")]
    if nets:
        lines += ["", "Perceptual metrics: " + ", ".join(nets) + " (lower is better)."]
    rr = res["multi"].get("repetition_rate")
    lines += ["", f"Multi-step repetition rate: {rr:.3f}" if rr is not None else ""]
    if res.get("note"):
        lines += ["", res["note"]]
    return "\n".join(lines) + "\n"


def _mean_ci(v: dict) -> str:
    ci = v.get("ci95")
    return f"{v['mean']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")


def _gif(path: Path, context: Tensor, target: Tensor, pred: Tensor, scale: int = 2) -> None:
    """(c,3,H,W) context + (F,3,H,W) target / pred -> side-by-side GIF (gt | prediction)."""
    import imageio.v2 as imageio

    from worldmodels.clips import tensor_to_frames

    gt = torch.cat([context, target])
    pr = torch.cat([context, pred])
    sep = torch.ones(gt.shape[0], 3, gt.shape[2], 2)
    frames = tensor_to_frames(torch.cat([gt, sep, pr], -1))  # (T,H,2W+2,3)
    frames = frames.repeat(scale, 1).repeat(scale, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, list(frames), duration=0.3, loop=0)
