"""Where a video world model's single-step error comes from: moving vs static pixels, and
how stable the tokenizer's ids are where nothing moved (issue 4's copy-last investigation).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/wm_error_breakdown.py \
        --model runs/wm_skip6 --data data/robot_1k

Part 1, on the held-out windows ``wm eval video`` uses (greedy decoding): the first predicted
frame's squared error split into *moved* pixels (the true frame differs from the last context
frame by > 0.1 in some channel) and *static* pixels, for the model, copy-last-frame (pixels),
copy-last-frame's tokens and the tokenizer's reconstruction; token accuracy on ids that did
and did not change between the two frames.

Part 2, token stability: over held-out episodes, the fraction of token ids that change
between frames ``frame_skip`` steps apart in 8x8 cells whose pixels did not change at all
(> 0.02), and in cells more than two cells away from any change. A tokenizer whose ids flip
where nothing moved makes "nothing moved" unpredictable for any token model.

Part 3, conditional replenishment (a tempting fix that fails): re-use a cell's previous id
while its pixels are unchanged; reports how many ids then change ``frame_skip`` frames apart
and what decoding such mixed ids costs in reconstruction MSE.

Part 4 (with ``--readout DIR``), what a planner sees: the state readout (worldmodels.envs.robot_readout)
applied to the model's sampled 7-step rollouts (true actions, temperature 1) vs to the true
frames, mean absolute error (m) per predicted step for pusher, block, goal and drawer opening;
the same for the tokenizer's reconstruction of the true frames and for "nothing moves".
With ``--samples n`` > 1 (n rollouts per clip) it adds ``best_of_n``: per part, the error of
the clip's best sample at the first step and over all steps, next to the sample mean (the
headroom a reward on the read-out state gives GRPO).

Prints a JSON object; ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_io import emit_json


def single_step_breakdown(wm, data: str, future: int = 7) -> dict:
    from worldmodels.clips import ClipDataset
    from worldmodels.episodes import dataset_split
    from worldmodels.tasks.video_data import TokenClipDataset

    t = wm.task
    c, s = t.spec.context_frames, t.spec.frame_skip
    files = dataset_split(data, "test")
    clips = ClipDataset.non_overlapping(files, c + future, s)
    ds = TokenClipDataset(clips, t.tokenizer, t.codec, tokenizer_dir=t.tokenizer_dir,
                          cache_dir=Path(data) / ".token_cache", files=files, progress=False)
    b = t.collate([ds[i] for i in range(len(ds))])
    ctx = b.get("ctx_ids")  # compressive tokenizer: the context frame's ids (B,Nc)
    gen = torch.Generator().manual_seed(0)
    ids = t.predict_ids(lambda req: wm.generate(req, top_k=1, generator=gen),
                        b["frame_ids"][:, :c], b["action_ids"], 1, ctx)[:, 0]        # (B,N)
    target, last = b["frames"][:, c], b["frames"][:, c - 1]                        # (B,3,H,W)
    preds = {"model": t.decode_ids(ids[:, None], ctx)[:, 0],
             "copy_last_tokens": t.decode_ids(b["frame_ids"][:, c - 1 : c], ctx)[:, 0],
             "copy_last_pixels": last,
             "tokenizer": t.decode_ids(b["frame_ids"][:, c : c + 1], ctx)[:, 0]}
    moved = ((target - last).abs().amax(1, keepdim=True) > 0.1).expand_as(target)
    out = {"clips": len(ds), "moved_pixel_fraction": float(moved.float().mean())}
    for name, p in preds.items():
        err = (p.float() - target) ** 2
        out[name] = {"mse": float(err.mean()), "mse_moved": float(err[moved].mean()),
                     "mse_static": float(err[~moved].mean())}
    # paired over clips: is the model's lower MSE than copy-last more than clip-to-clip noise?
    per_clip = {n: ((p.float() - target) ** 2).mean((1, 2, 3)) for n, p in preds.items()}
    diff = per_clip["model"] - per_clip["copy_last_pixels"]                         # (B,)
    g = torch.Generator().manual_seed(0)
    boot = torch.stack([diff[torch.randint(0, len(diff), (len(diff),), generator=g)].mean()
                        for _ in range(2000)])
    out["model_vs_copy_last"] = {
        "mse_difference": float(diff.mean()),
        "bootstrap_95ci": [float(boot.quantile(0.025)), float(boot.quantile(0.975))],
        "clips_model_better": float((diff < 0).float().mean())}
    gt, prev = b["frame_ids"][:, c], b["frame_ids"][:, c - 1]
    changed = gt != prev
    out["token_changed_fraction"] = float(changed.float().mean())
    out["model"]["token_acc_unchanged"] = float((ids == gt)[~changed].float().mean())
    out["model"]["token_acc_changed"] = float((ids == gt)[changed].float().mean())
    return out


@torch.no_grad()
def token_stability(tokenizer, data: str, skip: int, episodes: int = 40) -> dict:
    from worldmodels.clips import frames_to_tensor
    from worldmodels.episodes import dataset_split, load_episode

    h, w = tokenizer.grid
    cell = tokenizer.image_size // h
    counts = torch.zeros(4)  # static cells, flips there, far cells, flips there
    for f in dataset_split(data, "test")[:episodes]:
        x = frames_to_tensor(load_episode(f).image)                                # (T,3,H,W)
        ids = tokenizer.encode(x[None])[0].reshape(len(x), -1)                     # (T,N)
        diff = (x[:-skip] - x[skip:]).abs().amax(1, keepdim=True)                  # (T-s,1,H,W)
        pooled = F.max_pool2d(diff, cell)                                          # (T-s,1,h,w)
        static = pooled.flatten(1) <= 0.02
        far = F.max_pool2d(pooled, 5, 1, 2).flatten(1) <= 0.02
        flip = ids[:-skip] != ids[skip:]
        counts += torch.stack([static.sum(), (flip & static).sum(), far.sum(), (flip & far).sum()]).float()
    return {"frames_apart": skip, "episodes": episodes,
            "flips_in_static_cells": float(counts[1] / counts[0]),
            "flips_two_cells_from_any_change": float(counts[3] / counts[2])}


@torch.no_grad()
def replenishment_check(tokenizer, data: str, skip: int, episodes: int = 30,
                        threshold: float = 0.02) -> dict:
    from worldmodels.clips import frames_to_tensor
    from worldmodels.episodes import dataset_split, load_episode

    h, w = tokenizer.grid
    cell = tokenizer.image_size // h
    sums = torch.zeros(4)  # recon MSE raw, recon MSE replenished, ids changed raw, replenished
    files = dataset_split(data, "test")[:episodes]
    for f in files:
        x = frames_to_tensor(load_episode(f).image)                                # (T,3,H,W)
        ids = tokenizer.encode(x[None])[0].reshape(len(x), -1)                     # (T,N)
        kept, ref = ids.clone(), x[0].clone()
        for t in range(1, len(x)):
            moved = F.max_pool2d((x[t] - ref).abs().amax(0)[None, None], cell)[0, 0] > threshold
            kept[t] = torch.where(moved.flatten(), ids[t], kept[t - 1])
            ref = torch.where(moved.repeat_interleave(cell, 0).repeat_interleave(cell, 1), x[t], ref)
        dec = [tokenizer.decode(i.reshape(1, len(x), h, w))[0] for i in (ids, kept)]
        sums += torch.tensor([float(((dec[0] - x) ** 2).mean()), float(((dec[1] - x) ** 2).mean()),
                              float((ids[:-skip] != ids[skip:]).float().mean()),
                              float((kept[:-skip] != kept[skip:]).float().mean())])
    m = (sums / len(files)).tolist()
    return {"episodes": len(files), "recon_mse": m[0], "recon_mse_replenished": m[1],
            "ids_changed": m[2], "ids_changed_replenished": m[3]}


@torch.no_grad()
def readout_drift(wm, data: str, readout_dir: str, clips: int = 40, future: int = 7, samples: int = 1) -> dict:
    from worldmodels.clips import ClipDataset
    from worldmodels.envs.robot_readout import StateReadout
    from worldmodels.episodes import dataset_split
    from worldmodels.tasks.video_data import encode_compressive, encode_frames

    ro = StateReadout.load(readout_dir).eval()
    s = wm.frame_skip
    ds = ClipDataset.non_overlapping(dataset_split(data, "test"), 1 + future, s)
    pick = torch.linspace(0, len(ds) - 1, min(clips, len(ds))).round().long().unique().tolist()
    frames = torch.stack([ds[i]["frames"] for i in pick])                          # (B,8,3,H,W)
    acts = torch.stack([ds[i]["actions"] for i in pick])[:, :future]               # (B,7,s*A)
    acts = acts.reshape(len(pick), future * s, -1)                                 # env rate
    preds = wm.predict(frames[:, :1], acts, n_samples=samples,
                       generator=torch.Generator().manual_seed(0))                 # (B,n,7,3,H,W)
    pred = preds[:, 0]
    # references on the same clips: the tokenizer's reconstruction of the true future frames
    # (what a perfect token model would show the readout) and "nothing moves" (the context frame)
    t = wm.task
    if t.compressive:
        ctx, fut = encode_compressive(t.tokenizer, frames)
        recon = t.decode_ids(fut[:, 1:], ctx)
    else:
        recon = t.decode_ids(encode_frames(t.tokenizer, frames)[:, 1:])
    still = frames[:, :1].expand(-1, future, -1, -1, -1)
    flat = lambda x: x.reshape(-1, *x.shape[-3:])  # noqa: E731
    truth = ro(flat(frames[:, 1:]))
    parts = {"pusher": slice(0, 2), "block": slice(2, 4), "goal": slice(4, 6), "drawer": slice(6, 7)}
    out = {"clips": len(pick), "frames_apart": s}
    for name, x in (("model", pred), ("tokenizer_reconstruction", recon), ("no_motion", still)):
        err = (ro(flat(x.float())) - truth).abs().reshape(len(pick), future, -1)
        out[name] = {part: [round(float(err[:, i, sl].mean()), 4) for i in range(future)]
                     for part, sl in parts.items()}
    if samples > 1:
        B = len(pick)
        st = ro(flat(preds.float())).reshape(B, samples, future, -1)
        err = (st - truth.reshape(B, 1, future, -1)).abs()                         # (B,n,7,8)
        out["best_of_n"] = {"samples": samples}
        for part, sl in parts.items():
            e = err[..., sl].mean(-1)                                              # (B,n,7)
            out["best_of_n"][part] = {
                horizon: {"sample_mean": round(float(v.mean()), 4), "best": round(float(v.min(1).values.mean()), 4)}
                for horizon, v in (("step1", e[..., 0]), ("all_steps", e.mean(-1)))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="world-model directory")
    ap.add_argument("--data", required=True, help="episode folder (its test split is used)")
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--readout", help="state-readout dir (wm plan readout): adds part 4")
    ap.add_argument("--samples", type=int, default=1, help="part 4: rollouts per clip (> 1 adds best-of-n)")
    ap.add_argument("--readout-only", action="store_true", help="skip parts 1-3")
    args = ap.parse_args()
    from worldmodels.world_model import VideoWorldModel

    wm = VideoWorldModel.from_pretrained(args.model, device="cpu")
    res = {"model": args.model, "data": args.data}
    if not args.readout_only:
        res["single_step"] = single_step_breakdown(wm, args.data)
    if not wm.task.compressive and not args.readout_only:  # parts 2-3: a per-frame tokenizer's ids
        res["token_stability"] = token_stability(wm.task.tokenizer, args.data, wm.frame_skip)
        res["replenishment"] = replenishment_check(wm.task.tokenizer, args.data, wm.frame_skip)
    if args.readout:
        res["readout_drift_m"] = readout_drift(wm, args.data, args.readout, samples=args.samples)
    emit_json(res, args.out)


if __name__ == "__main__":
    main()
