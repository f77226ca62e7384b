"""How well can any world model on this tokenizer place the pusher? The tokenizer's floor.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tokenizer_state_floor.py \
        --tokenizer runs/wm_skip6_act/tokenizer --readout runs/readout

A world model predicts tokens, so its frames can be no better than the tokenizer's own
reconstruction of the true future. For ``--scenes`` push scenes per start (a seeded reset,
then ``--future`` random actions each held ``--frame-skip`` steps, as a 3.3 Hz world model
sees them), the true future frames are encoded and decoded with the tokenizer (a compressive
tokenizer gets the start frame as its context) and the state readout reads both the real
and the reconstructed frames. Reports the mean read-out error against the true state (cm)
for the pusher, block and goal, per kind of frame and per future step; the real frames give
the readout's own error, the reconstructions the floor a world model cannot go below.
Prints a JSON object; ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_io import emit_json

PARTS = {"pusher": slice(0, 2), "block": slice(2, 4), "goal": slice(4, 6)}


@torch.no_grad()
def reconstruct(tok, context: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
    """context (1,3,H,W), future (1,T,3,H,W) -> the tokenizer's reconstruction of the future."""
    from worldmodels.tasks.video_data import tokenizer_is_compressive

    if tokenizer_is_compressive(tok):
        return tok.decode(*tok.encode(context, future))[1]
    return tok.decode(tok.encode(future))


@torch.no_grad()
def state_floor(tok, readout, scenes: int = 24, future: int = 7, frame_skip: int = 6,
                image_size: int = 64, seed: int = 0) -> dict:
    from worldmodels.envs.robot import RobotEnv

    rng = np.random.default_rng(seed)
    env = RobotEnv("push", image_size=image_size, max_steps=10_000, seed=seed)
    errs: dict[str, list[np.ndarray]] = {"real": [], "reconstructed": []}
    for scene in range(scenes):
        env.reset(seed=7000 + scene)
        ctx = env.render()
        frames, states = [], []
        for _ in range(future):
            a = rng.uniform(-1, 1, 2)
            for _ in range(frame_skip):
                env.step(a)
            frames.append(env.render())
            states.append(env.task_state())
        to = lambda x: torch.from_numpy(np.asarray(x)).permute(0, 3, 1, 2).float().div(255)  # noqa: E731
        fut = to(frames)                                                                      # (T,3,H,W)
        rec = reconstruct(tok, to([ctx]), fut[None])[0]                                      # (T,3,H,W)
        truth = np.stack(states)                                                              # (T,8)
        errs["real"].append(readout(fut).numpy() - truth)
        errs["reconstructed"].append(readout(rec).numpy() - truth)
    out = {"scenes": scenes, "future": future, "frame_skip": frame_skip}
    for kind, e in errs.items():
        e = np.stack(e)                                                                       # (S,T,8)
        out[kind] = {f"{part}_cm": float(np.linalg.norm(e[..., s], axis=-1).mean() * 100)
                     for part, s in PARTS.items()}
        out[kind]["pusher_cm_by_step"] = [round(float(v) * 100, 2) for v in
                                          np.linalg.norm(e[..., :2], axis=-1).mean(0)]
        out[kind]["pusher_cm_median"] = float(np.median(np.linalg.norm(e[..., :2], axis=-1)) * 100)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer", required=True, help="tokenizer directory (or <world model>/tokenizer)")
    ap.add_argument("--readout", default="runs/readout", help="state-readout dir (wm plan readout)")
    ap.add_argument("--scenes", type=int, default=24, help="push start states")
    ap.add_argument("--future", type=int, default=7, help="future frames per scene")
    ap.add_argument("--frame-skip", type=int, default=6, help="env steps each random action is held")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    from tokenizers_video import load_tokenizer
    from worldmodels.envs.robot_readout import StateReadout

    res = {"tokenizer": args.tokenizer,
           **state_floor(load_tokenizer(args.tokenizer), StateReadout.load(args.readout).eval(),
                         args.scenes, args.future, args.frame_skip)}
    emit_json(res, args.out)


if __name__ == "__main__":
    main()
