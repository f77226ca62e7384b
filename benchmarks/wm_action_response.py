"""Does a video world model move the robot where the action says? What a planner needs.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/wm_action_response.py \
        --model runs/wm_skip6_comp --readout runs/readout

For ``--scenes`` start states per task family (a seeded reset, then a few random steps), each
of ``--actions`` uniform random actions is held for one model step (``frame_skip`` env steps):
the simulator gives the true pusher position after it, the world model (``--samples``
rollouts from the same frame) gives frames the state readout turns into a predicted position.
Reports, per number of averaged samples, the correlation between predicted and true pusher
displacement (x and y), its gain (slope of predicted on true) and the mean error of the
predicted position. An MPC planner ranks its
candidate actions by exactly this prediction: correlation ~0 means it ranks them at random.
Prints a JSON object; ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_io import emit_json


@torch.no_grad()
def action_response(wm, readout, scenes: int = 12, actions: int = 8, samples: int = 4,
                    image_size: int = 64, seed: int = 0) -> dict:
    from worldmodels.envs.robot import RobotEnv

    rng = np.random.default_rng(seed)
    skip = wm.frame_skip
    pred_d, true_d = [], []                                                       # (S*K,n,2), (S*K,2)
    for family in ("push", "drawer"):
        env = RobotEnv(family, image_size=image_size, max_steps=10_000, seed=seed)
        for scene in range(scenes):
            env.reset(seed=9000 + scene)
            for _ in range(rng.integers(0, 12)):  # not always the initial layout
                env.step(rng.uniform(-1, 1, 2))
            frame, start = env.render(), env.get_state()
            p0 = env.task_state()[:2]
            acts = rng.uniform(-1, 1, (actions, 2)).astype(np.float32)
            ends = []
            for a in acts:
                env.set_state(start)
                for _ in range(skip):
                    env.step(a)
                ends.append(env.task_state()[:2])
            env.set_state(start)
            ctx = torch.from_numpy(frame).permute(2, 0, 1).float().div(255)               # (3,H,W)
            ctx = ctx[None, None].expand(actions, 1, -1, -1, -1)                           # (K,1,3,H,W)
            held = torch.from_numpy(np.repeat(acts[:, None], skip, 1))                     # (K,skip,2)
            pred = wm.predict(ctx, held, n_samples=samples,
                              generator=torch.Generator().manual_seed(seed * 1000 + scene))  # (K,n,1,3,H,W)
            pos = readout(pred.reshape(-1, *pred.shape[-3:]).float()).reshape(actions, samples, -1)[..., :2]
            pred_d.append(pos.numpy() - p0)
            true_d.append(np.stack(ends) - p0)
    P, T = np.concatenate(pred_d), np.concatenate(true_d)
    out = {"pairs": len(T), "frame_skip": skip, "true_displacement_m": float(np.linalg.norm(T, axis=1).mean())}
    for k in sorted({1, samples}):
        m = P[:, :k].mean(1)
        out[f"samples_{k}"] = {
            "corr_x": float(np.corrcoef(m[:, 0], T[:, 0])[0, 1]),
            "corr_y": float(np.corrcoef(m[:, 1], T[:, 1])[0, 1]),
            # least-squares slope of predicted on true displacement: 1 = moves as far as the
            # simulator, < 1 = under-predicted motion (a planner then picks too-large actions)
            "gain_x": float(np.polyfit(T[:, 0], m[:, 0], 1)[0]),
            "gain_y": float(np.polyfit(T[:, 1], m[:, 1], 1)[0]),
            "position_error_m": float(np.linalg.norm(m - T, axis=1).mean())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="world-model directory")
    ap.add_argument("--readout", default="runs/readout", help="state-readout dir (wm plan readout)")
    ap.add_argument("--scenes", type=int, default=12, help="start states per task family")
    ap.add_argument("--actions", type=int, default=8, help="random held actions per scene")
    ap.add_argument("--samples", type=int, default=4, help="world-model rollouts per action")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    from worldmodels.envs.robot_readout import StateReadout
    from worldmodels.world_model import VideoWorldModel

    wm = VideoWorldModel.from_pretrained(args.model, device="cpu")
    res = {"model": args.model, **action_response(wm, StateReadout.load(args.readout), args.scenes,
                                                 args.actions, args.samples)}
    emit_json(res, args.out)


if __name__ == "__main__":
    main()
