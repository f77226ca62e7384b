"""Image-based policies for Real2Sim: each maps frames to actions, nothing else.

All policies share ``act(frames uint8 (B,H,W,3)) -> actions float32 (B,A)`` and
``reset(seeds: list[int])`` (one seed per row of the coming batch), so the same policy can
drive B real environments or B world-model rollouts in lock-step. Random streams are per
episode seed, so an episode sees the same noise in reality and in the world model (common
random numbers: a perfect model reproduces reality episode by episode)::

    ro = StateReadout.load("runs/readout")
    pols = [RandomPolicy(), ReadoutExpert(ro, "push", noise=0.5), BCPolicy.load("runs/bc/push_large")]
    a = pols[1].act(frames)                  # (B,2)

- `RandomPolicy`: uniform actions (the floor).
- `ReadoutExpert`: reads the task state from the frame with the `StateReadout`, then applies
  the scripted expert of ``worldmodels.envs.robot_experts`` plus Gaussian ``noise``.
- `BCPolicy`: a CoordConv CNN behaviour-cloned on expert demonstrations (`train_bc`);
  competence set by the number of demonstrations and training steps.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from worldmodels.envs.robot_readout import StateReadout


class RandomPolicy:
    def __init__(self, action_dim: int = 2, name: str = "random") -> None:
        self.name, self.description = name, "uniform random actions"
        self.action_dim = action_dim
        self.rngs = [np.random.default_rng(0)]

    def reset(self, seeds: list[int]) -> None:
        self.rngs = [np.random.default_rng(s) for s in seeds]   # one stream per episode row

    def act(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([r.uniform(-1, 1, self.action_dim) for r in self.rngs[:len(frames)]]).astype(np.float32)


class ReadoutExpert:
    """Scripted expert on the read-out state (so it is image-based)."""

    def __init__(self, readout: StateReadout, family: str, noise: float = 0.0, name: str | None = None,
                 hold: int = 1) -> None:
        self.readout, self.family, self.noise, self.hold = readout, family, float(noise), int(hold)
        self.name = name or f"expert_n{noise:g}"
        self.description = (f"scripted expert on read-out state, action noise std {noise:g}"
                            + (f", actions planned to be held {hold} steps" if hold > 1 else ""))
        self.rngs = [np.random.default_rng(0)]

    def reset(self, seeds: list[int]) -> None:
        self.rngs = [np.random.default_rng(s) for s in seeds]   # one stream per episode row

    def act(self, frames: np.ndarray) -> np.ndarray:
        from worldmodels.envs.robot_experts import drawer_expert, push_expert

        states = self.readout.read_uint8(frames).astype(np.float64)        # (B,8)
        fn = push_expert if self.family == "push" else drawer_expert
        a = np.stack([fn(s, self.hold) for s in states])
        if self.noise > 0:
            a = a + self.noise * np.stack([r.standard_normal(a.shape[1]) for r in self.rngs[:len(a)]])
        return np.clip(a, -1, 1).astype(np.float32)


class BCNet(nn.Module):
    """CoordConv CNN (3,H,W) -> tanh action (A,)."""

    def __init__(self, image_size: int = 64, width: int = 16, action_dim: int = 2) -> None:
        super().__init__()
        self.config = {"image_size": image_size, "width": width, "action_dim": action_dim}
        # reuse the readout's trunk (same architecture), then squash to [-1, 1]
        self.trunk = StateReadout(image_size, width, state_dim=action_dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.trunk.normalised(frames))


class BCPolicy:
    def __init__(self, net: BCNet, name: str = "bc", description: str = "behaviour-cloned CNN") -> None:
        self.net, self.name, self.description = net.eval(), name, description

    def reset(self, seeds: list[int]) -> None:  # deterministic
        pass

    @torch.no_grad()
    def act(self, frames: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.asarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        return self.net(x).numpy().astype(np.float32)

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, tmp / "policy.safetensors")
        meta = {**self.net.config, "name": self.name, "description": self.description}
        (tmp / "policy.json").write_text(json.dumps(meta, indent=2))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> BCPolicy:
        """The policy saved in directory ``path``. Raises FileNotFoundError naming the absent file,
        or ``WeightsMismatch`` naming ``policy.safetensors`` and the keys that are missing,
        unexpected or shaped unlike ``policy.json``'s config."""
        from safetensors.torch import load_file

        from worldmodels.strict_load import load_state_dict_strict

        path = Path(path)
        weights = path / "policy.safetensors"
        if not (path / "policy.json").is_file():
            raise FileNotFoundError(f"{path / 'policy.json'} not found (a BC policy dir written by BCPolicy.save)")
        if not weights.is_file():
            raise FileNotFoundError(f"{weights} not found (next to policy.json); the policy dir is incomplete")
        meta = json.loads((path / "policy.json").read_text())
        net = BCNet(meta["image_size"], meta["width"], meta["action_dim"])
        load_state_dict_strict(net, load_file(weights), weights)
        return cls(net, meta["name"], meta["description"])


def collect_demos(task: str, episodes: int, steps: int = 40, image_size: int = 64, noise: float = 0.3,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Expert demonstrations with DART-style noise: the env executes the noisy action, the
    label is the clean expert action. Returns frames (M,H,W,3) uint8 and actions (M,2)."""
    from worldmodels.envs.robot import RobotEnv, expert_action

    env = RobotEnv(task, image_size=image_size, max_steps=steps, seed=seed)
    rng = np.random.default_rng(seed)
    frames, acts = [], []
    for ep in range(episodes):
        frame = env.reset(seed=10_000 + seed * 1000 + ep)
        for _ in range(steps):
            clean = expert_action(env, 0.0, rng)
            frames.append(frame)
            acts.append(clean)
            noisy = np.clip(clean + noise * rng.standard_normal(clean.shape), -1, 1)
            frame = env.step(noisy)[0]
    return np.stack(frames), np.stack(acts).astype(np.float32)


def train_bc(frames: np.ndarray, actions: np.ndarray, steps: int = 800, batch_size: int = 64, lr: float = 2e-3,
             width: int = 16, seed: int = 0, name: str = "bc", description: str = "") -> BCPolicy:
    """Behaviour cloning (MSE on actions) of a `BCNet`."""
    torch.manual_seed(seed)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()    # (M,3,H,W) uint8
    y = torch.from_numpy(actions)                                    # (M,A)
    net = BCNet(frames.shape[1], width, y.shape[1])
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.02)
    g = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        loss = nn.functional.mse_loss(net(x[idx].float() / 255.0), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return BCPolicy(net, name, description or f"BC CNN, {len(frames)} frames, {steps} steps")
