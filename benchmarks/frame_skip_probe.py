"""Which frame skip can a token world model beat copy-last-frame at? (issue 19, foreign data)

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/frame_skip_probe.py --tokenizer runs/tok_mw \
        --data ../shared/data/robot/metaworld --skips 1,2,3,4,6 --future 3,7

A model's prediction goes through the tokenizer, so its error is at least the tokenizer's own
reconstruction error (the *ceiling*); copy-last-frame has none. Where the frame-to-frame change
is not clearly larger than that ceiling no token model can beat copy-last (docs/world_model.md,
the 20 Hz robot result). On the held-out episodes of the tokenizer's recorded split (or the
episode flags given), for each frame skip s this prints the MSE (frames in [0,1], mean over
pixels and channels) of

- copy-last, single-step: frame t+s against frame t, every t;
- copy-last, multi-step over F predicted frames, on the same non-overlapping windows
  ``wm eval video --future F`` evaluates ((F+1-1)*s+1 recorded frames each), with their count;
- copy-last-frame's tokens (frame t encoded and decoded, against frame t+s);
- the tokenizer's reconstruction of every held-out frame (the ceiling; independent of s).

Prints a JSON object and a markdown table; ``--out FILE`` also writes the JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def probe(tok_dir: str, data: str | None, skips: list[int], futures: list[int],
          episodes=None) -> dict:
    from worldmodels.episode_config import EpisodeConfig, recorded_episodes
    from worldmodels.episodes import load_episode
    from worldmodels.tasks.video_data import load_video_tokenizer

    tok = load_video_tokenizer(tok_dir)
    rec, rec_data = recorded_episodes(tok_dir)
    ep = (episodes or EpisodeConfig()).merged(rec)
    root = data or rec_data
    if root is None:
        raise SystemExit(f"{tok_dir}: no recorded data folder; pass --data")
    files, steps = ep.split(root, "test")
    km = ep.keymap(tok.image_size)
    frames = []
    for f in files:
        img = load_episode(f, km).image
        img = img if steps is None else img[steps]
        frames.append(torch.from_numpy(img).permute(0, 3, 1, 2).float() / 255)  # (T,3,H,W)
    recon = []
    with torch.no_grad():
        for x in frames:
            recon.append(torch.cat([tok.decode(tok.encode(x[i:i + 32][None]))[0]
                                    for i in range(0, len(x), 32)]))
    mse = lambda a, b: float(((a - b) ** 2).mean())  # noqa: E731
    out = {"tokenizer": tok_dir, "data": str(root), "files": [str(f) for f in files],
           "frames": int(sum(len(x) for x in frames)),
           "ceiling_mse": float(np.mean([mse(r, x) for r, x in zip(recon, frames, strict=True)])),
           "skips": {}}
    for s in skips:
        row = {"copy_last_single": float(np.mean([mse(x[s:], x[:-s]) for x in frames if len(x) > s])),
               "copy_tokens_single": float(np.mean([mse(r[:-s], x[s:]) for r, x in zip(recon, frames, strict=True)
                                                    if len(x) > s]))}
        for F in futures:
            span, errs = F * s + 1, []
            for x in frames:
                for st in range(0, len(x) - span + 1, span):
                    w = x[st:st + span:s]
                    errs.append(mse(w[1:], w[:1].expand_as(w[1:])))
            row[f"copy_last_multi{F}"] = float(np.mean(errs)) if errs else None
            row[f"clips_multi{F}"] = len(errs)
        out["skips"][s] = row
    return out


def table(res: dict, futures: list[int]) -> str:
    head = ["frame skip", "copy-last 1-step", "copy-last tokens 1-step"]
    head += [f"copy-last {F}-step (clips)" for F in futures] + ["tokenizer ceiling"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s, r in res["skips"].items():
        cells = [str(s), f"{r['copy_last_single']:.5f}", f"{r['copy_tokens_single']:.5f}"]
        for F in futures:
            v = r[f"copy_last_multi{F}"]
            cells.append("–" if v is None else f"{v:.5f} ({r[f'clips_multi{F}']})")
        cells.append(f"{res['ceiling_mse']:.5f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True, help="tokenizer run directory")
    p.add_argument("--data", default=None, help="episode folder (default: the tokenizer's recorded one)")
    p.add_argument("--skips", default="1,2,3,4,6", help="comma-separated frame skips")
    p.add_argument("--future", default="3,7", help="comma-separated multi-step horizons")
    p.add_argument("--held-out", default=None, help="comma-separated held-out files/folders "
                   "(default: the tokenizer's recorded split)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args()
    from worldmodels.episode_config import EpisodeConfig

    ep = EpisodeConfig(held_out=a.held_out.split(",")) if a.held_out else None
    skips = [int(s) for s in a.skips.split(",")]
    futures = [int(f) for f in a.future.split(",")]
    res = probe(a.tokenizer, a.data, skips, futures, ep)
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    print(table(res, futures))


if __name__ == "__main__":
    main()
