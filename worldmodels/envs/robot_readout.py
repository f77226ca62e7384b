"""State readout: a small CNN that reads the task-state vector from a rendered frame.

Inside a world model there is no simulator state, only generated frames; the readout turns
them back into ``TASK_STATE_NAMES`` so that ``success_from_task_state`` judges success the
same way MuJoCo does, and so that state costs and state-reading policies work on images::

    frames, states = collect_frames(("push", "drawer"), episodes=60, steps=40, image_size=64)
    ro = train_readout(frames, states, steps=1500)           # StateReadout
    ro.save("runs/readout"); ro = StateReadout.load("runs/readout")
    states = ro(frames_tensor (M,3,H,W) in [0,1])            # (M,8)
    evaluate_readout(ro, frames, states, tasks)              # {"mae", "mae_per_dim", "success_agreement"}

CLI: ``wm plan readout --out runs/readout`` trains it (see ``docs/planning.md``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

STATE_DIM = 8


class StateReadout(nn.Module):
    """Conv net (3,H,W) -> normalised task state; ``forward`` returns de-normalised states."""

    def __init__(self, image_size: int = 64, width: int = 32, state_dim: int = STATE_DIM) -> None:
        super().__init__()
        self.config = {"image_size": image_size, "width": width, "state_dim": state_dim}
        w = width
        self.net = nn.Sequential(                                   # (M,3,H,W)
            nn.Conv2d(5, w, 3, stride=2, padding=1), nn.GELU(),       # RGB + (x, y) coordinates
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.GELU(),  # (M,4w,H/16,W/16)
            nn.Flatten(),
            nn.Linear(4 * w * (image_size // 16) ** 2, 256), nn.GELU(),
            nn.Linear(256, state_dim),
        )
        self.register_buffer("mean", torch.zeros(state_dim))
        self.register_buffer("std", torch.ones(state_dim))

    def normalised(self, frames: torch.Tensor) -> torch.Tensor:
        size = self.config["image_size"]
        if frames.shape[-1] != size or frames.shape[-2] != size:
            frames = nn.functional.interpolate(frames, size=(size, size), mode="bilinear", antialias=True)
        M, _, H, W = frames.shape
        ys = torch.linspace(-1, 1, H, device=frames.device, dtype=frames.dtype).view(1, 1, H, 1).expand(M, 1, H, W)
        xs = torch.linspace(-1, 1, W, device=frames.device, dtype=frames.dtype).view(1, 1, 1, W).expand(M, 1, H, W)
        return self.net(torch.cat([frames * 2 - 1, xs, ys], 1))     # CoordConv input (M,5,H,W)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (M,3,H,W) in [0,1] -> task states (M,state_dim)."""
        return self.normalised(frames) * self.std + self.mean

    @torch.no_grad()
    def read_uint8(self, frames: np.ndarray) -> np.ndarray:
        """uint8 frames (M,H,W,3) or (H,W,3) -> numpy states (M,8) or (8,)."""
        single = frames.ndim == 3
        x = torch.from_numpy(np.asarray(frames)[None] if single else np.asarray(frames))
        out = self(x.permute(0, 3, 1, 2).float() / 255.0).numpy()
        return out[0] if single else out

    def save(self, path: str | Path) -> None:
        """Atomic write of ``readout.safetensors`` + ``readout.json`` into directory ``path``."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, tmp / "readout.safetensors")
        (tmp / "readout.json").write_text(json.dumps(self.config, indent=2))
        if path.exists():
            old = path.with_name(f".{path.name}-old")
            os.replace(path, old)
            os.replace(tmp, path)
            import shutil

            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> StateReadout:
        """The readout saved in directory ``path`` (eval mode). Raises FileNotFoundError naming
        the absent file, or ``WeightsMismatch`` naming ``readout.safetensors`` and the keys that
        are missing, unexpected or shaped unlike ``readout.json``'s config."""
        from safetensors.torch import load_file

        from worldmodels.strict_load import load_state_dict_strict

        path = Path(path)
        cfg_file, weights = path / "readout.json", path / "readout.safetensors"
        if not cfg_file.is_file():
            raise FileNotFoundError(f"{cfg_file} not found: train a readout with `wm plan readout --out {path}`")
        if not weights.is_file():
            raise FileNotFoundError(f"{weights} not found (next to {cfg_file.name}); the readout dir is incomplete")
        model = cls(**json.loads(cfg_file.read_text()))
        load_state_dict_strict(model, load_file(weights), weights)
        return model.eval()


def collect_frames(tasks=("push", "drawer"), episodes: int = 40, steps: int = 40, image_size: int = 64,
                   seed: int = 0, expert_fraction: float = 0.6, noise: float = 0.3, every: int = 1,
                   progress: bool = False):
    """Render frames with their true task states: episodes split over ``tasks``; a fraction of
    them driven by the scripted expert (with ``noise``) so success states are seen, the rest
    by random actions; every ``every``-th frame is kept. Returns (frames uint8 (M,H,W,3), states float32 (M,8), task per frame)."""
    from worldmodels.envs.robot import RobotEnv, expert_action, random_action

    rng = np.random.default_rng(seed)
    frames, states, names = [], [], []
    envs = {t: RobotEnv(t, image_size=image_size, max_steps=steps, seed=seed) for t in tasks}
    it = range(episodes)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="render readout data")
    for ep in it:
        task = tasks[ep % len(tasks)]
        env = envs[task]
        frame = env.reset(seed=seed * 100003 + ep)
        expert = rng.random() < expert_fraction
        for t in range(steps):
            if t % every == 0:
                frames.append(frame)
                states.append(env.task_state())
                names.append(task)
            a = expert_action(env, noise, rng) if expert else random_action(env, rng)
            frame = env.step(a)[0]
    return np.stack(frames), np.stack(states).astype(np.float32), names


def train_readout(frames: np.ndarray, states: np.ndarray, steps: int = 1500, batch_size: int = 64,
                  lr: float = 2e-3, width: int = 32, seed: int = 0, progress: bool = False) -> StateReadout:
    """Fit a `StateReadout` on uint8 frames (M,H,W,3) and states (M,8) with an L1 loss."""
    torch.manual_seed(seed)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()    # (M,3,H,W) uint8
    y = torch.from_numpy(states)
    model = StateReadout(image_size=frames.shape[1], width=width, state_dim=y.shape[1])
    model.mean.copy_(y.mean(0))
    model.std.copy_(y.std(0).clamp_min(1e-3))
    yn = (y - model.mean) / model.std
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.02)
    g = torch.Generator().manual_seed(seed)
    it = range(steps)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="train readout")
    model.train()
    for _ in it:
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        loss = nn.functional.smooth_l1_loss(model.normalised(x[idx].float() / 255.0), yn[idx], beta=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def evaluate_readout(model: StateReadout, frames: np.ndarray, states: np.ndarray, tasks: list[str]) -> dict:
    """Held-out error: mean |pred − true| (overall and per dim, metres) and the fraction of
    frames where success judged from the frame (`judge_success`: read-out state + objects
    visible) equals success on the true state."""
    from worldmodels.envs.robot import TASK_STATE_NAMES, success_from_task_state

    pred = np.concatenate([model.read_uint8(frames[i:i + 256]) for i in range(0, len(frames), 256)])
    err = np.abs(pred - states)
    from worldmodels.envs.robot import task_family

    judged = [success_from_task_state(t, p) and bool(objects_visible(task_family(t), f[None])[0])
              for t, p, f in zip(tasks, pred, frames, strict=True)]
    agree = [j == success_from_task_state(t, s) for t, j, s in zip(tasks, judged, states, strict=True)]
    succ = np.array([success_from_task_state(t, s) for t, s in zip(tasks, states, strict=True)])
    agree = np.array(agree)
    return {
        "mae": float(err.mean()),
        "mae_per_dim": {n: float(v) for n, v in zip(TASK_STATE_NAMES, err.mean(0), strict=True)},
        "success_agreement": float(agree.mean()),
        "success_agreement_on_successes": float(agree[succ].mean()) if succ.any() else None,
        "frames": int(len(frames)),
    }


MIN_PIXELS = 4  # real 64x64 frames show >= 16 block, >= 19 goal, >= 21 handle pixels


def objects_visible(family: str, frames: np.ndarray) -> np.ndarray:
    """uint8 frames (M,H,W,3) -> (M,) bool: the objects success depends on are on screen.

    Red block and green goal (push), yellow handle and green target marker (drawer), counted
    by colour (thresholds scaled from 64x64). A readout regresses *some* state from any image,
    so on a frame where a world model has erased the objects it tends towards the mean state,
    which can satisfy the predicate by accident; this check turns such frames into failures.
    """
    f = np.asarray(frames).astype(np.int16)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    need = max(1, round(MIN_PIXELS * f.shape[1] * f.shape[2] / 64**2))
    green = ((g > 150) & (r < 120) & (b < 140)).sum((1, 2)) >= need
    if family == "push":
        other = ((r > 150) & (g < 90) & (b < 90)).sum((1, 2)) >= need          # red block
    else:
        other = ((r > 170) & (g > 150) & (b < 90)).sum((1, 2)) >= need         # yellow handle
    return green & other


def judge_success(readout: StateReadout, task: str, frames: np.ndarray) -> np.ndarray:
    """Success on frames (M,H,W,3): the task predicate on the read-out state, and the objects visible."""
    return judge_states(task, readout.read_uint8(frames), frames)


def judge_states(task: str, states: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Success of task states (M,8) taken from frames (M,H,W,3) (read out, or derived from
    read-outs such as the contact-gated push track): the predicate, and the objects visible."""
    from worldmodels.envs.robot import success_from_task_state, task_family

    ok = np.array([success_from_task_state(task, s) for s in states], dtype=bool)
    return ok & objects_visible(task_family(task), frames)
