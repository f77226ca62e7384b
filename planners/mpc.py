"""Closed-loop model-predictive control in the MuJoCo robot world.

Every control step the planner (CEM or MPPI) optimises an action sequence against a cost
computed from a model's predictions, the first action is executed in the real simulator, and
the plan is warm-started at the next step. With ``action_repeat = r > 1`` (the default for a
world model trained with ``frame_skip = r``) every planned action is held for r environment
steps: the planner searches ``horizon`` held actions (one per world-model step), the model
sees each repeated r times, and the first one is executed r times before re-planning.
Models: ``"random"`` (no planning: uniform actions, the floor), ``"oracle"`` (`SimModel`, the
true simulator: the ceiling), or a world-model directory (``VideoWorldModel.from_pretrained``)::

    cfg = PlanRunConfig(task="push", planner="cem", model="oracle", episodes=10)
    summary = run_mpc(cfg)          # {"success_rate", "episodes": [...], ...}; GIFs in cfg.out

An episode succeeds when the task predicate holds at any step (it then ends early).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from planners.base import PlannerConfig
from planners.costs import GOAL_WEIGHT


@dataclass
class PlanRunConfig:
    """Closed-loop MPC evaluation (``wm plan robot``).

    task:       robot task ("push", "drawer", "drawer_open", "drawer_close").
    planner:    "cem" or "mppi".
    model:      "random", "oracle", or a world-model directory (e.g. runs/wm_video).
    cost:       "state" (readout/true state distance to goal), "pixel" or "lpips" (goal image).
    readout:    state-readout directory (needed for cost "state" with a learned world model).
    episodes:   seeded episodes (seeds seed, seed+1, ...).
    max_steps:  control steps per episode.
    image_size: rendered frame size (must match the world model's).
    context:    frames of context given to the world model (k); actions between them too.
    action_repeat: environment steps each planned action is held for; 0 = the world model's
                frame_skip (1 for "oracle"). Set it for the oracle to compare at equal knobs.
    n_samples:  world-model samples per action sequence (costs averaged).
    goal_weight: weight of the distance to the goal against the pusher-shaping term in the
                "state" cost (`planners.costs.state_cost`); lower trusts predicted object
                motion less.
    contact_gate: push "state" cost with a learned model: keep the goal where the current
                frame has it and count only block motion the predicted pusher could cause
                (`planners.costs.contact_gated_push_states`); ignored for the oracle.
    seed:       first episode seed (and planner seed).
    videos:     how many episodes to save as GIFs.
    out:        output directory (summary.json, config.yaml, GIFs).
    knobs:      planner knobs (`planners.base.PlannerConfig`).
    """

    task: str = "push"
    planner: str = "cem"
    model: str = "oracle"
    cost: str = "state"
    readout: str = "runs/readout"
    episodes: int = 10
    max_steps: int = 50
    image_size: int = 64
    context: int = 1
    action_repeat: int = 0
    n_samples: int = 1
    goal_weight: float = GOAL_WEIGHT
    contact_gate: bool = False
    seed: int = 0
    videos: int = 3
    out: str = "runs/plan"
    knobs: PlannerConfig = field(default_factory=PlannerConfig)

    def __post_init__(self) -> None:
        import math

        from worldmodels.envs.robot import MAX_IMAGE_SIZE, check_task

        check_task(self.task)
        if self.planner not in ("cem", "mppi"):
            raise ValueError(f"--planner must be cem or mppi, got {self.planner!r}")
        if self.cost not in ("state", "pixel", "lpips"):
            raise ValueError(f"--cost must be state, pixel or lpips, got {self.cost!r}")
        for name in ("episodes", "max_steps", "context", "n_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.goal_weight > 0 and math.isfinite(self.goal_weight)):
            raise ValueError(f"goal_weight must be a finite number > 0, got {self.goal_weight}")
        if not 8 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"image_size must be in [8, {MAX_IMAGE_SIZE}], got {self.image_size}")
        if self.seed < 0 or self.videos < 0:
            raise ValueError(f"seed and videos must be >= 0 (episode seeds are non-negative), got "
                             f"seed={self.seed}, videos={self.videos}")
        if self.action_repeat < 0:
            raise ValueError(f"action_repeat must be >= 0 (0 = the model's frame_skip), got "
                             f"{self.action_repeat}")


def load_world_model(spec: str, task: str, image_size: int):
    """``"oracle"`` -> SimModel; otherwise a directory -> VideoWorldModel (clear error if absent)."""
    if spec == "oracle":
        from planners.sim_model import SimModel

        return SimModel(task, image_size)
    path = Path(spec)
    if not path.is_dir():
        raise FileNotFoundError(f"world model {spec!r}: not 'random', 'oracle' or an existing directory")
    from worldmodels.world_model import VideoWorldModel

    return VideoWorldModel.from_pretrained(path).eval()


def goal_image(env) -> np.ndarray:
    """Frame (H,W,3) of the current scene with the goal achieved (block on the goal / drawer at
    its target opening); the simulator state is restored afterwards."""
    saved = env.get_state()
    m, d = env.model, env.data
    ts = env.task_state()
    if env.family == "push":
        adr = int(m.joint("block").qposadr[0])
        d.qpos[adr:adr + 2] = ts[4:6]
    else:
        d.qpos[int(m.joint("drawer").qposadr[0])] = ts[7]
    env._mj.mj_forward(m, d)
    frame = env.render()
    env.set_state(saved)
    return frame


def to_tensor(frames) -> torch.Tensor:
    """uint8 (...,H,W,3) -> float (...,3,H,W) in [0,1]."""
    x = torch.from_numpy(np.asarray(frames))
    return x.movedim(-1, -3).float() / 255.0


class MPCController:
    """Chooses each action by planning against ``model`` (oracle fast path when it is a SimModel)."""

    def __init__(self, cfg: PlanRunConfig, env, model, readout=None, lpips=None) -> None:
        from planners.registry import make_planner
        from planners.sim_model import SimModel

        self.cfg, self.env, self.model, self.readout, self.lpips = cfg, env, model, readout, lpips
        self.planner = make_planner(cfg.planner, cfg.knobs, env.action_low, env.action_high)
        self.oracle = isinstance(model, SimModel)
        spec = getattr(getattr(model, "task", None), "spec", None)
        self.k = int(getattr(spec, "context_frames", 0) or cfg.context)   # the model's own context length
        if cfg.cost == "state" and not self.oracle and readout is None:
            raise ValueError("cost 'state' with a learned world model needs a readout (--readout DIR)")
        skip = int(getattr(spec, "frame_skip", 1))
        self.repeat = cfg.action_repeat or skip
        if self.repeat % skip:
            raise ValueError(f"action_repeat={cfg.action_repeat} must be a multiple of the world "
                             f"model's frame_skip={skip}")
        if skip > 1 and self.k > 1:
            raise ValueError(f"MPC with a frame_skip={skip} world model needs a 1-frame-context "
                             f"model (this one has {self.k})")

    def reset(self, first_frame: np.ndarray) -> None:
        self.planner.reset()
        self.frames = [first_frame]
        self.actions: list[np.ndarray] = []
        self.queue: list[np.ndarray] = []  # the held action's remaining repeats
        self.goal = to_tensor(goal_image(self.env)) if self.cfg.cost != "state" else None

    def act(self) -> np.ndarray:
        """The next environment action: re-plan when the held action's repeats are used up."""
        if not self.queue:
            self.queue = [self._plan()] * self.repeat
        return self.queue.pop(0)

    def _plan(self) -> np.ndarray:
        from planners.costs import world_model_cost
        from planners.sim_model import oracle_state_cost

        cfg, task = self.cfg, self.env.task
        if self.oracle:
            self.model.sync(self.env)
        if self.oracle and cfg.cost == "state":
            cost_fn = oracle_state_cost(self.model, task, cfg.goal_weight)
        else:
            k = self.k
            pad = max(0, k - len(self.frames))                  # too early: repeat frame 0, zero actions
            frames = [self.frames[0]] * pad + self.frames[-k:]
            acts = [np.zeros(self.env.action_dim, np.float32)] * pad + self.actions
            ctx = to_tensor(np.stack(frames[-k:]))                                          # (k,3,H,W)
            past = torch.as_tensor(np.array(acts[len(acts) - (k - 1):] if k > 1 else
                                            np.zeros((0, self.env.action_dim)), dtype=np.float32))  # (k-1,A)
            cost_fn = world_model_cost(self.model, ctx, past, cfg.cost, task=task, readout=self.readout,
                                       goal_image=self.goal, lpips=self.lpips, n_samples=cfg.n_samples,
                                       goal_weight=cfg.goal_weight, contact_gate=cfg.contact_gate)
        if self.repeat > 1:  # planner: (S,h,A) held actions -> model: (S,h*r,A) env actions
            held, r = cost_fn, self.repeat
            cost_fn = lambda seqs: held(seqs.repeat_interleave(r, dim=1))  # noqa: E731
        return self.planner.plan(cost_fn)

    def observe(self, action: np.ndarray, frame: np.ndarray) -> None:
        self.actions.append(np.asarray(action, np.float32))
        self.frames.append(frame)


def run_episode(env, seed: int, controller, max_steps: int, rng: np.random.Generator) -> dict:
    """One closed-loop episode; ``controller`` None = random actions.

    Returns success, steps, frames, and the task distance (`task_distance`, metres) at the
    start and the end: a graded measure of progress where success rates are all 0.
    """
    from worldmodels.envs.robot import task_distance

    frame = env.reset(seed=seed)
    start_distance = task_distance(env.task, env.task_state())
    frames = [frame]
    if controller is not None:
        controller.reset(frame)
    success = env.is_success()
    steps = 0
    while not success and steps < max_steps:
        a = controller.act() if controller is not None else rng.uniform(env.action_low, env.action_high)
        frame, _, _, info = env.step(a)
        if controller is not None:
            controller.observe(a, frame)
        frames.append(frame)
        success = bool(info["success"])
        steps += 1
    return {"seed": seed, "success": success, "steps": steps, "start_distance": start_distance,
            "final_distance": task_distance(env.task, env.task_state()), "frames": np.stack(frames)}


EPISODES_LOG = "episodes.jsonl"


def finished_episodes(out: str | Path) -> dict[int, dict]:
    """Episodes an earlier run in ``out`` finished, by index: ``episodes.jsonl`` (one line per
    episode, written as each ends), else a ``summary.json`` that predates it; {} when none."""
    import json

    out = Path(out)
    if (out / EPISODES_LOG).is_file():
        rows = [json.loads(x) for x in (out / EPISODES_LOG).read_text().splitlines() if x.strip()]
        return {int(r.pop("index")): r for r in rows}
    if (out / "summary.json").is_file():
        return dict(enumerate(json.loads((out / "summary.json").read_text())["per_episode"]))
    return {}


def _jsonl(index: int, episode: dict) -> str:
    import json

    return json.dumps({"index": index, **episode}, default=lambda v: v.item()) + "\n"  # numpy scalars


def run_mpc(cfg: PlanRunConfig, progress: bool = True, resume: bool = False) -> dict:
    """Run ``cfg.episodes`` seeded episodes; write summary.json, config.yaml, episodes.jsonl and
    GIFs to cfg.out. ``resume``: keep the episodes an earlier run in cfg.out finished
    (`finished_episodes`; the caller checks that cfg is that run's config) and run only the
    missing ones. The planner's and the random actions' generators start from ``cfg.seed`` at
    the first episode run, so a resumed episode is a valid episode of its seed but not
    bit-identical to the one an uninterrupted run would have produced."""
    import time

    from planners.report import write_gif, write_json
    from worldmodels.atomic import atomic_write
    from worldmodels.config import save_config, to_dict
    from worldmodels.envs.robot import RobotEnv

    out = Path(cfg.out)
    finished = finished_episodes(out) if resume else {}     # all kept, for a later resume
    done = {i: ep for i, ep in finished.items() if i < cfg.episodes}
    save_config(cfg, out)
    log = out / EPISODES_LOG
    atomic_write(log, lambda f: f.writelines(_jsonl(i, ep) for i, ep in sorted(finished.items())), text=True)
    env = RobotEnv(cfg.task, image_size=cfg.image_size, max_steps=cfg.max_steps, seed=cfg.seed)
    controller = None
    if cfg.model != "random":
        model = load_world_model(cfg.model, cfg.task, cfg.image_size)
        readout = None
        if cfg.cost == "state" and cfg.model != "oracle":
            from worldmodels.envs.robot_readout import StateReadout

            readout = StateReadout.load(cfg.readout)
        lpips = None
        if cfg.cost == "lpips":
            from worldmodels.metrics import lpips_fn

            lpips = lpips_fn(net="vgg")
        controller = MPCController(cfg, env, model, readout, lpips)
    rng = np.random.default_rng(cfg.seed)
    episodes = []
    it = range(cfg.episodes)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"{cfg.model} {cfg.planner} {cfg.task}")
    t0 = time.time()
    for i in it:
        if i in done:
            episodes.append(done[i])
            continue
        ep = run_episode(env, cfg.seed + i, controller, cfg.max_steps, rng)
        if i < cfg.videos:
            write_gif(out / f"episode_{i:02d}.gif", ep["frames"])
        episodes.append({k: v for k, v in ep.items() if k != "frames"})
        with log.open("a") as f:  # what a resumed run keeps
            f.write(_jsonl(i, episodes[-1]))
    rate = float(np.mean([e["success"] for e in episodes]))
    summary = {"task": cfg.task, "planner": cfg.planner, "model": cfg.model, "cost": cfg.cost,
               "episodes": len(episodes), "success_rate": rate,
               "successes": int(sum(e["success"] for e in episodes)),
               "mean_steps": float(np.mean([e["steps"] for e in episodes])),
               # metres of task distance removed per episode (> 0 = moved towards the goal)
               "mean_progress": float(np.mean([e["start_distance"] - e["final_distance"]
                                               for e in episodes])),
               "seconds": time.time() - t0, "per_episode": episodes, "config": to_dict(cfg),
               "episodes_resumed": len(done)}
    write_json(out / "summary.json", summary)
    return summary
