"""The robot world: a MuJoCo tabletop with a planar pusher, a block and a drawer.

    import os; os.environ.setdefault("MUJOCO_GL", "egl")
    from worldmodels.envs.robot import RobotEnv, expert_action
    env = RobotEnv("push", image_size=64, max_steps=50, seed=0)
    frame = env.reset()                      # (64,64,3) uint8
    rng = np.random.default_rng(0)
    frame, reward, done, info = env.step(expert_action(env, noise=0.0, rng=rng))

Tasks (``TASKS``):
- ``push``: push the red block into the green goal disc (randomised block, goal and pusher).
- ``drawer_open`` / ``drawer_close``: open the drawer (hook the yellow handle from the left
  and pull) or close it (push the handle); randomised initial opening and pusher position.
- ``drawer``: either of the two, drawn at reset (the green marker shows the target line).

Actions are planar pusher velocities ``(vx, vy)`` in [-1,1] (times ``MAX_SPEED`` m/s); each
control step runs ``SUBSTEPS`` physics steps. The reward is 1.0 on success, else 0.0; episodes
do not end early on success (``done`` only when ``max_steps`` steps have run).

``task_state()`` is the vector a state readout predicts from images (``TASK_STATE_NAMES``):

    0 pusher_x, 1 pusher_y      pusher centre (m, world frame)
    2 block_x,  3 block_y       block centre (m)
    4 goal_x,   5 goal_y        green goal marker centre (m)
    6 drawer_opening            drawer slide position (m, 0 = closed .. 0.12)
    7 drawer_goal               target opening for drawer tasks (0 or 0.12; 0 for push)

``success_from_task_state(task, s)`` applies the same predicate as ``RobotEnv.is_success``.
"""

from __future__ import annotations

import os

import numpy as np

from worldmodels.envs import robot_scene as S
from worldmodels.envs.robot_experts import expert_action, poke_action, random_action

__all__ = [
    "TASKS", "TASK_STATE_NAMES", "RobotEnv", "success_from_task_state", "task_distance", "task_family",
    "expert_action", "poke_action", "random_action",
]

TASKS: tuple[str, ...] = ("push", "drawer", "drawer_open", "drawer_close")
TASK_STATE_NAMES: tuple[str, ...] = (
    "pusher_x", "pusher_y", "block_x", "block_y", "goal_x", "goal_y",
    "drawer_opening", "drawer_goal",
)
ACTION_NAMES = ["vx", "vy"]
MAX_IMAGE_SIZE = 256


def check_task(task: str) -> str:
    """Return ``task`` or raise a ValueError listing the valid task names."""
    if task not in TASKS:
        raise ValueError(f"unknown robot task {task!r}; valid tasks: {', '.join(TASKS)}")
    return task


def task_family(task: str) -> str:
    """``"push"`` or ``"drawer"``."""
    return "push" if check_task(task) == "push" else "drawer"


def task_distance(task: str, task_state: np.ndarray) -> float:
    """Metres still to go: block centre to goal (push) or drawer opening to its goal (drawer)."""
    s = np.asarray(task_state, dtype=np.float64)
    if s.shape[-1] != len(TASK_STATE_NAMES):
        raise ValueError(f"task_state must have {len(TASK_STATE_NAMES)} entries, got {s.shape}")
    if task_family(task) == "push":
        return float(np.hypot(s[2] - s[4], s[3] - s[5]))
    return float(abs(s[6] - s[7]))


def success_from_task_state(task: str, task_state: np.ndarray) -> bool:
    """The success predicate on a task-state vector (true or predicted; see module doc):
    :func:`task_distance` within the goal radius (push) or the drawer tolerance."""
    tol = S.GOAL_RADIUS if task_family(task) == "push" else S.DRAWER_TOL
    return task_distance(task, task_state) <= tol


def _init_gl() -> None:
    """Prepare headless rendering before the first EGL context exists.

    Mesa's EGL driver and libtriton both carry LLVM; loading libtriton *after* an EGL context
    exists crashes the process (torch 2.15 + triton 3.9: ``torch.optim`` imports
    ``torch._dynamo``, which imports triton, so "render, then train" in one process would
    segfault). Loading triton first, when it is installed, avoids that.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        import triton  # noqa: F401
    except Exception:  # noqa: BLE001 - absent or broken triton: nothing to order
        pass


class RobotEnv:
    """Tabletop pushing / drawer world rendered headless to RGB frames (see module doc)."""

    def __init__(self, task: str = "push", image_size: int = 64, max_steps: int = 50,
                 seed: int | None = None):
        check_task(task)
        if not 8 <= int(image_size) <= MAX_IMAGE_SIZE:
            raise ValueError(f"image_size must be in [8, {MAX_IMAGE_SIZE}], got {image_size}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        _init_gl()
        import mujoco

        self._mj = mujoco
        self.task = task
        self.image_size = int(image_size)
        self.max_steps = int(max_steps)
        self.model = mujoco.MjModel.from_xml_string(S.scene_xml(self.image_size))
        self.data = mujoco.MjData(self.model)
        self._renderer: mujoco.Renderer | None = None
        self.action_dim = 2
        self.action_low = -np.ones(2, dtype=np.float32)
        self.action_high = np.ones(2, dtype=np.float32)
        self.action_names = list(ACTION_NAMES)
        self._spec = mujoco.mjtState.mjSTATE_INTEGRATION
        self._qadr = {
            n: int(self.model.joint(n).qposadr[0]) for n in ("px", "py", "drawer", "block")
        }
        self._dadr = {n: int(self.model.joint(n).dofadr[0]) for n in ("px", "py", "drawer")}
        self._rng = np.random.default_rng(seed)
        self.drawer_goal = 0.0
        self.t = 0
        self.reset(seed)

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Randomise the initial state (seeded) and return the first frame (H,W,3) uint8."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        rng = self._rng
        m, d = self.model, self.data
        self._mj.mj_resetData(m, d)
        task = self.task
        if task == "drawer":
            task = "drawer_open" if rng.random() < 0.5 else "drawer_close"
        q = self._qadr
        if task == "push":
            block, goal = self._sample_push_layout(rng)
            opening, self.drawer_goal = 0.0, 0.0
            pusher = self._sample_far(rng, [block], 0.09)
        else:
            block = np.array([rng.uniform(-0.25, -0.16), rng.uniform(-0.24, -0.10)])
            if task == "drawer_open":
                opening, self.drawer_goal = rng.uniform(0.0, 0.04), S.DRAWER_MAX_OPEN
            else:
                opening, self.drawer_goal = rng.uniform(0.06, S.DRAWER_MAX_OPEN), 0.0
            goal_line = S.DRAWER_FRONT_Y - self.drawer_goal - S.HANDLE_OFFSET
            goal = np.array([S.CABINET_X + 0.15, goal_line])
            pusher = self._sample_far(rng, [block], 0.08, y_range=(-0.25, -0.11))
        d.qpos[q["block"] : q["block"] + 3] = [block[0], block[1], S.BLOCK_HALF]
        d.qpos[q["block"] + 3 : q["block"] + 7] = [1, 0, 0, 0]
        d.qpos[q["drawer"]] = opening
        d.qpos[q["px"]], d.qpos[q["py"]] = pusher
        d.mocap_pos[0] = [goal[0], goal[1], 0.001]
        self._mj.mj_forward(m, d)
        self.t = 0
        return self.render()

    @staticmethod
    def _sample_push_layout(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        while True:
            block = np.array([rng.uniform(-0.18, 0.18), rng.uniform(-0.18, -0.06)])
            goal = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.22, -0.02)])
            if 0.1 <= np.linalg.norm(goal - block) <= 0.25:
                return block, goal

    @staticmethod
    def _sample_far(rng, others, min_dist, y_range=(-0.25, 0.0)) -> np.ndarray:
        while True:
            p = np.array([rng.uniform(-0.25, 0.25), rng.uniform(*y_range)])
            if all(np.linalg.norm(p - o) >= min_dist for o in others):
                return p

    def step(self, action) -> tuple[np.ndarray, float, bool, dict]:
        """Apply a velocity action for one control step; returns (frame, reward, done, info)."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (self.action_dim,) or not np.isfinite(a).all():
            raise ValueError(f"action must be {self.action_dim} finite numbers, got {action!r}")
        a = np.clip(a, -1.0, 1.0)
        self.data.ctrl[:] = a * S.MAX_SPEED
        for _ in range(S.SUBSTEPS):
            self._mj.mj_step(self.model, self.data)
        self.t += 1
        success = self.is_success()
        done = self.t >= self.max_steps
        return self.render(), float(success), done, {"success": success, "t": self.t}

    # ------------------------------------------------------------------ observation
    def render(self) -> np.ndarray:
        """Current frame from the fixed top camera, (H,W,3) uint8."""
        if self._renderer is None:
            self._renderer = self._mj.Renderer(self.model, self.image_size, self.image_size)
        self._renderer.update_scene(self.data, camera="top")
        return self._renderer.render().copy()

    def task_state(self) -> np.ndarray:
        """float32 vector of ``TASK_STATE_NAMES`` (see the module doc)."""
        q, d = self._qadr, self.data
        return np.array([
            d.qpos[q["px"]], d.qpos[q["py"]],
            d.qpos[q["block"]], d.qpos[q["block"] + 1],
            d.mocap_pos[0, 0], d.mocap_pos[0, 1],
            d.qpos[q["drawer"]], self.drawer_goal,
        ], dtype=np.float32)

    @property
    def family(self) -> str:
        return task_family(self.task)

    def is_success(self) -> bool:
        return success_from_task_state(self.task, self.task_state())

    # ------------------------------------------------------------------ clone / restore
    def get_state(self) -> np.ndarray:
        """Full simulator state (physics, controls, goal marker) + drawer goal + step count."""
        n = self._mj.mj_stateSize(self.model, self._spec)
        s = np.empty(n, dtype=np.float64)
        self._mj.mj_getState(self.model, self.data, s, self._spec)
        return np.concatenate([s, [self.drawer_goal, float(self.t)]])

    def set_state(self, s: np.ndarray) -> None:
        """Restore a vector from :meth:`get_state` (same task and scene)."""
        s = np.asarray(s, dtype=np.float64)
        n = self._mj.mj_stateSize(self.model, self._spec)
        if s.shape != (n + 2,):
            raise ValueError(f"state must have shape ({n + 2},), got {s.shape}")
        self._mj.mj_setState(self.model, self.data, s[:n], self._spec)
        self.drawer_goal, self.t = float(s[n]), int(s[n + 1])
        self._mj.mj_forward(self.model, self.data)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
