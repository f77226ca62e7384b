"""Held-out evaluation of a video world model: single-step and multi-step, with baselines.

    from worldmodels.tasks.video_eval import evaluate_video
    evaluate_video("runs/wm_video", "data/robot", "runs/wm_video/eval", n_samples=4)
    # (CLI: wm eval video --model runs/wm_video --data data/robot)

For each held-out clip (non-overlapping windows of ``context + future`` frames) the model samples
``n_samples`` interact-mode rollouts from the ground-truth context and actions. *Single-step* =
the first predicted frame (ground-truth context); *multi-step* = all ``future`` frames.
Per metric: best-of-n per clip averaged over clips (± the mean within-clip std, RLVR-World's
report) and the plain mean over all samples. Baselines on the same clips: copy-last-frame (pixels),
copy-last-frame *tokens* decoded through the tokenizer (the "no dynamics" token model), and the
tokenizer's own reconstruction of the ground truth (the ceiling a token model can reach).
Token accuracy = fraction of predicted frame tokens equal to the ground truth's.
Writes ``eval.json``, ``eval.md`` and side-by-side GIFs (ground truth | prediction).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from worldmodels import metrics as M

log = logging.getLogger(__name__)
HIGHER = {"mae": False, "mse": False, "psnr": True, "ssim": True, "lpips": False}


def _metric_fns(lpips_net: str | None, device) -> tuple[dict, str | None]:
    fns = {"mse": M.mse, "mae": M.mae, "psnr": M.psnr, "ssim": M.ssim}
    note = None
    if lpips_net:
        try:
            fns["lpips"] = M.lpips_fn(lpips_net, device)
        except M.LPIPSWeightsMissing as e:
            note = f"LPIPS skipped: {e}"
            log.warning(note)
    return fns, note


def _gif(path: Path, context, target, pred, scale: int = 2) -> None:
    """(c,3,H,W) context + (F,3,H,W) target / pred -> side-by-side GIF (gt | prediction)."""
    import imageio.v2 as imageio

    from worldmodels.clips import tensor_to_frames

    gt = torch.cat([context, target])
    pr = torch.cat([context, pred])
    sep = torch.ones(gt.shape[0], 3, gt.shape[2], 2)
    frames = tensor_to_frames(torch.cat([gt, sep, pr], -1))  # (T,H,2W+2,3)
    frames = frames.repeat(scale, 1).repeat(scale, 2)
    imageio.mimsave(path, list(frames), duration=0.3, loop=0)


def evaluate_video(model_dir: str, data_root: str, out_dir: str | None = None, n_samples: int = 4,
                   max_clips: int = 64, batch_size: int = 16, future_frames: int | None = None,
                   gifs: int = 4, lpips_net: str | None = "vgg", temperature: float = 1.0,
                   top_k: int | None = None, seed: int = 0, device: str = "auto") -> dict:
    from worldmodels.clips import ClipDataset
    from worldmodels.episodes import dataset_split
    from worldmodels.tasks.video import VideoSpec, VideoTask
    from worldmodels.tasks.video_data import TokenClipDataset
    from worldmodels.world_model import VideoWorldModel

    wm = VideoWorldModel.from_pretrained(model_dir, device=device)
    t0 = wm.task
    c = t0.spec.context_frames
    F = future_frames or (t0.spec.future_frames if t0.spec.mode == "multi" else 7)
    skip = t0.spec.frame_skip
    spec = VideoSpec(t0.spec.mode, c, F if t0.spec.mode == "multi" else 1, frame_skip=skip)
    clips = ClipDataset.non_overlapping(dataset_split(data_root, "test"), c + F, skip)
    ds = TokenClipDataset(clips, t0.tokenizer, t0.codec, tokenizer_dir=t0.tokenizer_dir,
                          cache_dir=Path(data_root) / ".token_cache",
                          files=dataset_split(data_root, "test"))
    pick = torch.linspace(0, len(ds) - 1, min(max_clips, len(ds))).round().long().unique().tolist()
    task = VideoTask(t0.tokenizer, spec, t0.codec)
    fns, note = _metric_fns(lpips_net, wm.device)
    gen = torch.Generator(device=wm.device).manual_seed(seed)
    vals = {k: {m: [] for m in fns} for k in ("single", "multi")}
    names = ("copy_last", "copy_last_tokens", "tokenizer")
    base = {k: {m: [] for m in fns} for k in names}
    base_single = {k: {m: [] for m in fns} for k in names}
    acc = {"single": [], "multi": [], "copy_single": [], "copy_multi": []}
    reps, gif_paths = [], []
    out = Path(out_dir) if out_dir else Path(model_dir) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    for b0 in tqdm(range(0, len(pick), batch_size), desc="eval", leave=False):
        batch = task.collate([ds[i] for i in pick[b0 : b0 + batch_size]])
        B = batch["frames"].shape[0]
        ids = wm.predict_ids(batch["frame_ids"][:, :c], batch["action_ids"], F, batch.get("ctx_ids"),
                             n_samples, temperature, top_k, None, gen)  # (B*n,F,N)
        ctx = batch.get("ctx_ids")
        ctx_n = ctx.repeat_interleave(n_samples, 0) if ctx is not None else None
        pred = task.decode_ids(ids, ctx_n).cpu()  # (B*n,F,3,H,W)
        target = batch["frames"][:, c:]  # (B,F,3,H,W)
        tgt_n = target.repeat_interleave(n_samples, 0)
        with torch.no_grad():
            for m, fn in fns.items():
                vals["multi"][m].append(fn(pred, tgt_n).reshape(B, n_samples).cpu())
                vals["single"][m].append(fn(pred[:, :1], tgt_n[:, :1]).reshape(B, n_samples).cpu())
            copy = batch["frames"][:, c - 1 : c].expand_as(target)
            recon = task.decode_ids(batch["frame_ids"][:, c:], ctx).cpu()
            last_ids = batch["frame_ids"][:, c - 1 : c].expand(-1, F, -1)
            copy_tok = task.decode_ids(last_ids, ctx).cpu()
            for name, p in (("copy_last", copy), ("copy_last_tokens", copy_tok), ("tokenizer", recon)):
                for m, fn in fns.items():
                    base[name][m].append(fn(p, target).cpu())
                    base_single[name][m].append(fn(p[:, :1], target[:, :1]).cpu())
        gt_ids = batch["frame_ids"][:, c:].repeat_interleave(n_samples, 0)  # (B*n,F,N)
        hit = (ids == gt_ids).float()
        acc["multi"].append(hit.mean((1, 2)).reshape(B, n_samples))
        acc["single"].append(hit[:, 0].mean(1).reshape(B, n_samples))
        chit = (last_ids == batch["frame_ids"][:, c:]).float()
        acc["copy_multi"].append(chit.mean((1, 2)))
        acc["copy_single"].append(chit[:, 0].mean(1))
        if F >= 2:
            reps.append(M.repeats(ids).float())
        for j in range(B):
            if len(gif_paths) < gifs:
                p = out / f"clip_{pick[b0 + j]:05d}.gif"
                _gif(p, batch["frames"][j, :c], target[j], pred[j * n_samples])
                gif_paths.append(str(p))
    res = {"model": str(model_dir), "data": str(data_root), "clips": len(pick), "n_samples": n_samples,
           "context_frames": c, "future_frames": F, "temperature": temperature, "top_k": top_k,
           "seed": seed, "gifs": gif_paths, "note": note}
    for k in ("single", "multi"):
        res[k] = {}
        for m in fns:
            v = torch.cat(vals[k][m])  # (clips, n)
            bon = M.best_of_n(v, HIGHER[m])
            res[k][m] = {"best_of_n": bon["mean"], "std": bon["std"], "mean": float(v.float().mean())}
        bs = base_single if k == "single" else base
        for name in names:
            res[k][name] = {m: float(torch.cat(bs[name][m]).float().mean()) for m in fns}
        a = torch.cat(acc[k])
        bon = M.best_of_n(a, True)
        res[k]["token_acc"] = {"best_of_n": bon["mean"], "std": bon["std"], "mean": float(a.mean())}
        res[k]["copy_last_tokens"]["token_acc"] = float(torch.cat(acc[f"copy_{k}"]).mean())
    res["multi"]["repetition_rate"] = float(torch.cat(reps).mean()) if reps else None
    (out / "eval.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "eval.md").write_text(markdown_table(res))
    return res


def markdown_table(res: dict) -> str:
    ms = [m for m in ("mse", "mae", "psnr", "ssim", "lpips") if m in res["single"]]
    lines = [f"Held-out clips: {res['clips']}, {res['n_samples']} samples each, context "
             f"{res['context_frames']} frame(s), multi-step {res['future_frames']} frames, "
             f"temperature {res['temperature']}.", "",
             "| setting | " + " | ".join(ms) + " | token acc |", "|---" * (len(ms) + 2) + "|"]
    for k, label in (("single", "single-step"), ("multi", f"multi-step ({res['future_frames']})")):
        r = res[k]
        lines.append(f"| {label}: model best-of-{res['n_samples']} | "
                     + " | ".join(f"{r[m]['best_of_n']:.4f} ± {r[m]['std']:.4f}" for m in ms + ["token_acc"])
                     + " |")
        lines.append(f"| {label}: model mean of samples | "
                     + " | ".join(f"{r[m]['mean']:.4f}" for m in ms + ["token_acc"]) + " |")
        lines.append(f"| {label}: copy last frame (pixels) | "
                     + " | ".join(f"{r['copy_last'][m]:.4f}" for m in ms) + " | – |")
        lines.append(f"| {label}: copy last frame's tokens | "
                     + " | ".join(f"{r['copy_last_tokens'][m]:.4f}" for m in ms)
                     + f" | {r['copy_last_tokens']['token_acc']:.4f} |")
        lines.append(f"| {label}: tokenizer reconstruction (ceiling) | "
                     + " | ".join(f"{r['tokenizer'][m]:.4f}" for m in ms) + " | 1 |")
    rr = res["multi"].get("repetition_rate")
    lines += ["", f"Multi-step repetition rate: {rr:.3f}" if rr is not None else ""]
    if res.get("note"):
        lines += ["", res["note"]]
    return "\n".join(lines) + "\n"
