"""The true simulator behind the world-model ``predict`` API: the oracle upper bound.

`SimModel` clones the live environment's full state (``sync``), then answers ``predict`` by
replaying each action sequence in a private copy of the simulator and rendering the frames,
exactly as a perfect world model would. ``rollout_task_states`` is the fast path (physics
only, no rendering) used by oracle MPC with a state cost::

    sim = SimModel("push", image_size=64)
    sim.sync(env)                                      # env: the RobotEnv being controlled
    frames = sim.predict(ctx, actions)                 # (B,1,N,3,H,W), ctx ignored
    states = sim.rollout_task_states(seqs)             # (S,N,8)
"""

from __future__ import annotations

import numpy as np
import torch

from planners.costs import GOAL_WEIGHT, state_cost


class SimModel:
    """Perfect world model: MuJoCo itself (context frames are ignored; the synced state is used)."""

    def __init__(self, task: str = "push", image_size: int = 64) -> None:
        from worldmodels.envs.robot import RobotEnv

        self.env = RobotEnv(task, image_size=image_size, max_steps=10**9, seed=0)
        self.image_size = image_size
        self.state: np.ndarray | None = None

    def sync(self, env) -> None:
        """Copy the full simulator state of ``env`` (call before each planning step)."""
        self.state = env.get_state()

    def _start(self) -> None:
        if self.state is None:
            raise RuntimeError("SimModel.sync(env) must be called before predicting")
        self.env.set_state(self.state)

    @torch.no_grad()
    def rollout_task_states(self, seqs: torch.Tensor) -> torch.Tensor:
        """(S,N,A) action sequences from the synced state -> task states (S,N,8), no rendering."""
        from worldmodels.envs import robot_scene as scene

        seqs_np = seqs.detach().cpu().numpy().astype(np.float64)
        S, N, _ = seqs_np.shape
        e = self.env
        out = np.empty((S, N, 8), np.float32)
        for i in range(S):
            self._start()
            for t in range(N):
                e.data.ctrl[:] = np.clip(seqs_np[i, t], -1, 1) * scene.MAX_SPEED
                for _ in range(scene.SUBSTEPS):
                    e._mj.mj_step(e.model, e.data)
                out[i, t] = e.task_state()
        return torch.from_numpy(out)

    @torch.no_grad()
    def predict(self, context_frames: torch.Tensor, actions: torch.Tensor, n_samples: int = 1) -> torch.Tensor:
        """World-model API: frames (B,n,N,3,H,W) for actions[:, k-1:] from the synced state.

        The simulator is deterministic, so the ``n_samples`` copies are identical.
        """
        k = context_frames.shape[1]
        future = actions[:, k - 1:].detach().cpu().numpy()                  # (B,N,A)
        B, N, _ = future.shape
        frames = np.empty((B, N, self.image_size, self.image_size, 3), np.uint8)
        for b in range(B):
            self._start()
            for t in range(N):
                frames[b, t] = self.env.step(future[b, t])[0]
        x = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 255.0  # (B,N,3,H,W)
        return x.unsqueeze(1).expand(B, n_samples, *x.shape[1:])


def oracle_state_cost(sim: SimModel, task: str, goal_weight: float = GOAL_WEIGHT):
    """``cost_fn`` for oracle MPC: true task states (fast path) -> `planners.costs.state_cost`."""
    return lambda seqs: state_cost(task, sim.rollout_task_states(seqs), goal_weight)


class LoopSim:
    """The true simulator as a *closed-loop* world model (Real2Sim's perfect-model control).

    ``begin(task, seeds)`` resets one environment per batch row; each ``predict`` call then steps
    every row with its last action and returns the rendered frames. With it, simulated success
    equals real success up to the readout's errors, which checks the evaluator end to end.
    """

    def __init__(self, image_size: int = 64) -> None:
        self.image_size = image_size
        self.envs: list = []

    def begin(self, task: str, seeds: list[int]) -> None:
        from worldmodels.envs.robot import RobotEnv

        for e in self.envs:
            e.close()
        self.envs = [RobotEnv(task, image_size=self.image_size, max_steps=10**9, seed=s) for s in seeds]
        for e, s in zip(self.envs, seeds, strict=True):
            e.reset(seed=s)

    @torch.no_grad()
    def predict(self, context_frames: torch.Tensor, actions: torch.Tensor, n_samples: int = 1) -> torch.Tensor:
        k = context_frames.shape[1]
        future = actions[:, k - 1:].cpu().numpy()                               # (B,N,A)
        if len(future) != len(self.envs):
            raise RuntimeError(f"LoopSim: batch {len(future)} != {len(self.envs)} environments (call begin)")
        frames = np.stack([[e.step(a)[0] for a in seq] for e, seq in zip(self.envs, future, strict=True)])
        x = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 255.0    # (B,N,3,H,W)
        return x.unsqueeze(1).expand(len(x), n_samples, *x.shape[1:])
