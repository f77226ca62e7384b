"""Build a robot dataset: one ``.npz`` per episode plus ``meta.json`` (``wm data build robot``).

    wm data build robot --out data/robot --episodes 200            # tiny preset, 64x64
    wm data build robot --config data/recipes/robot_tiny.yaml --set workers=2

Episode ``i`` is ``ep_{i:06d}.npz`` with ``image`` (T,H,W,3) uint8, ``action`` (T,2) float32
(``action[t]`` is taken at ``image[t]``; the last one is the policy's action at the final frame
and is not executed), ``state`` (T,8) float32 task states (``TASK_STATE_NAMES``), ``success``
(T,) bool, ``task``, ``policy`` ("expert", "random" or "poke"), ``noise`` and ``seed``. Its task is
``tasks[i % len(tasks)]``; its policy and seeds come from ``SeedSequence([seed, i])`` only, so
a resumed build (finished, loadable episodes are skipped) equals an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from worldmodels.atomic import atomic_write

META_VERSION = 1
# Fields that define the data; resuming into a folder built with other values is refused.
DATA_FIELDS = ("tasks", "image_size", "episode_len", "seed", "expert_noise", "random_fraction", "action_hold",
               "poke_fraction")


@dataclass
class RobotDataConfig:
    """Config of ``wm data build robot``.

    Attributes:
        out: output folder (created; existing finished episodes are kept).
        episodes: number of episodes to have in ``out`` when done.
        tasks: task names cycled over episodes (see ``worldmodels.envs.robot.TASKS``).
        image_size: square frame size in pixels (8..256).
        episode_len: frames per episode (episode_len - 1 control steps are executed).
        seed: base seed; episode i uses ``SeedSequence([seed, i])``.
        expert_noise: per-episode expert noise levels, drawn uniformly (0 = perfect expert).
        random_fraction: probability that an episode uses the uniform random policy instead.
        poke_fraction: probability that a push episode not drawn random uses the poke policy
            (`robot_experts.poke_action`: through the block from any side) instead of the
            expert, so the data shows the block moving where it is pushed, not only to the goal.
        action_hold: per-episode action hold, drawn uniformly: the policy acts every this many
            control steps and holds its action (experts plan for it), as a 3.3 Hz controller does
            for a frame-skip-6 world model; [1] = a new action every step.
        test_every: split rule written to meta.json: sorted file i is test iff i % test_every == 0.
        workers: parallel processes; 0 = one per CPU core.
    """

    out: str = "data/robot"
    episodes: int = 200
    tasks: list[str] = field(default_factory=lambda: ["push", "drawer_open", "drawer_close"])
    image_size: int = 64
    episode_len: int = 50
    seed: int = 0
    expert_noise: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0])
    random_fraction: float = 0.2
    poke_fraction: float = 0.0
    action_hold: list[int] = field(default_factory=lambda: [1])
    test_every: int = 10
    workers: int = 0

    def __post_init__(self) -> None:
        from worldmodels.envs.robot import MAX_IMAGE_SIZE, check_task

        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if not self.tasks:
            raise ValueError("tasks must name at least one task")
        for t in self.tasks:
            check_task(t)
        if not 8 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"image_size must be in [8, {MAX_IMAGE_SIZE}], got {self.image_size}")
        if self.episode_len < 2:
            raise ValueError(f"episode_len must be >= 2, got {self.episode_len}")
        if not self.expert_noise or not all(0 <= n < float("inf") for n in self.expert_noise):
            raise ValueError(f"expert_noise must be a non-empty list of finite levels >= 0 (NaN or "
                             f"inf noise gives non-finite actions), got {self.expert_noise}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0 (SeedSequence takes non-negative integers), got {self.seed}")
        if not 0.0 <= self.random_fraction <= 1.0:
            raise ValueError(f"random_fraction must be in [0,1], got {self.random_fraction}")
        if not 0.0 <= self.poke_fraction <= 1.0:
            raise ValueError(f"poke_fraction must be in [0,1], got {self.poke_fraction}")
        if not self.action_hold or any(int(h) != h or h < 1 for h in self.action_hold):
            raise ValueError(f"action_hold must be a non-empty list of integers >= 1 (control steps), "
                             f"got {self.action_hold}")
        if self.test_every < 1:
            raise ValueError(f"test_every must be >= 1, got {self.test_every}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0 (0 = all cores), got {self.workers}")


def episode_path(out: str | Path, index: int) -> Path:
    return Path(out) / f"ep_{index:06d}.npz"


def episode_plan(cfg: RobotDataConfig, index: int) -> dict:
    """Task, policy, noise and seeds of episode ``index`` (a pure function of seed and index)."""
    env_ss, pol_ss = np.random.SeedSequence([cfg.seed, index]).spawn(2)
    choice = np.random.default_rng(pol_ss)
    task = cfg.tasks[index % len(cfg.tasks)]
    if choice.random() < cfg.random_fraction:
        policy, noise = "random", 0.0
    # drawn only when poke is on, so folders built before it keep their plans
    elif cfg.poke_fraction > 0 and task == "push" and choice.random() < cfg.poke_fraction:
        policy, noise = "poke", 0.0
    else:
        policy, noise = "expert", float(cfg.expert_noise[choice.integers(len(cfg.expert_noise))])
    # drawn only when there is a choice, so folders built before action_hold keep their plans
    hold = int(cfg.action_hold[choice.integers(len(cfg.action_hold))]) if len(cfg.action_hold) > 1 \
        else int(cfg.action_hold[0])
    return {
        "index": index,
        "task": task,
        "policy": policy,
        "noise": noise,
        "hold": hold,
        "env_seed": int(env_ss.generate_state(1)[0]),
        "policy_seed": int(pol_ss.generate_state(1)[0]),
    }


_ENVS: dict = {}


def _env(task: str, image_size: int, max_steps: int):
    from worldmodels.envs.robot import RobotEnv

    key = (task, image_size, max_steps)
    if key not in _ENVS:
        _ENVS[key] = RobotEnv(task, image_size=image_size, max_steps=max_steps)
    return _ENVS[key]


def rollout_episode(cfg: RobotDataConfig, plan: dict) -> dict[str, np.ndarray]:
    """Run one planned episode; returns the arrays saved to its npz."""
    from worldmodels.envs.robot import expert_action, poke_action, random_action

    T = cfg.episode_len
    env = _env(plan["task"], cfg.image_size, T - 1)
    rng = np.random.default_rng(plan["policy_seed"])
    frame = env.reset(seed=plan["env_seed"])
    image = np.empty((T, cfg.image_size, cfg.image_size, 3), np.uint8)
    action = np.empty((T, env.action_dim), np.float32)
    state = np.empty((T, len(env.task_state())), np.float32)
    success = np.empty(T, bool)
    for t in range(T):
        image[t], state[t], success[t] = frame, env.task_state(), env.is_success()
        if t % plan["hold"]:  # holding the last action
            action[t] = action[t - 1]
        elif plan["policy"] == "random":
            action[t] = random_action(env, rng)
        elif plan["policy"] == "poke":
            action[t] = poke_action(env, rng, plan["hold"])
        else:
            action[t] = expert_action(env, plan["noise"], rng, plan["hold"])
        if t < T - 1:
            frame, _, _, _ = env.step(action[t])
    return {"image": image, "action": action, "state": state, "success": success}


def _record(plan: dict, success_last: bool, skipped: bool) -> dict:
    keep = ("index", "task", "policy", "noise", "hold")
    return {**{k: plan[k] for k in keep}, "success": bool(success_last), "skipped": skipped}


def existing_ok(cfg: RobotDataConfig, path: Path) -> dict | None:
    """Summary of a finished episode file that matches ``cfg``, or None if it must be rebuilt."""
    from worldmodels.episodes import EpisodeError, load_episode

    if not path.is_file():
        return None
    try:
        ep = load_episode(path)
    except EpisodeError:
        return None
    if len(ep) != cfg.episode_len or ep.image.shape[1] != cfg.image_size or ep.success is None:
        return None
    return {"success_last": bool(ep.success[-1])}


def build_one(args: tuple[RobotDataConfig, int]) -> dict:
    """Build (or skip, if already finished) episode ``index``; returns its summary record."""
    from worldmodels.episodes import save_episode

    cfg, index = args
    plan = episode_plan(cfg, index)
    path = episode_path(cfg.out, index)
    done = existing_ok(cfg, path)
    if done is not None:
        return _record(plan, done["success_last"], skipped=True)
    arrays = rollout_episode(cfg, plan)
    save_episode(
        path, arrays["image"], arrays["action"], state=arrays["state"], success=arrays["success"],
        task=np.array(plan["task"]), policy=np.array(plan["policy"]),
        noise=np.float32(plan["noise"]), seed=np.int64(plan["env_seed"]), hold=np.int64(plan["hold"]),
    )
    return _record(plan, arrays["success"][-1], skipped=False)


def _init_worker() -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def check_resume_compatible(cfg: RobotDataConfig) -> None:
    """Refuse to resume into a folder whose saved config differs on data-defining fields."""
    import yaml

    from worldmodels.config import to_dict

    saved_path = Path(cfg.out) / "config.yaml"
    if not saved_path.is_file():
        return
    saved = yaml.safe_load(saved_path.read_text()) or {}
    now = to_dict(cfg)
    diff = [k for k in DATA_FIELDS if k in saved and saved[k] != now[k]]
    if diff:
        details = ", ".join(f"{k}: {saved[k]!r} there vs {now[k]!r} now" for k in diff)
        raise ValueError(
            f"{saved_path}: this folder was built with different settings ({details}); "
            f"use another --out or the same settings to resume"
        )


def build_dataset(cfg: RobotDataConfig, progress: bool = True) -> dict:
    """Build (or resume) the dataset described by ``cfg``; returns the meta dict it writes."""
    from tqdm import tqdm

    from worldmodels.config import save_config
    from worldmodels.envs.robot import ACTION_NAMES, TASK_STATE_NAMES

    out = Path(cfg.out)
    check_resume_compatible(cfg)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    workers = cfg.workers or os.cpu_count() or 1
    jobs = [(cfg, i) for i in range(cfg.episodes)]
    records: list[dict] = []
    t0 = time.perf_counter()
    bar = tqdm(total=len(jobs), desc=f"robot episodes -> {out}", unit="ep", disable=not progress)
    if workers == 1:
        _init_worker()
        for job in jobs:
            records.append(build_one(job))
            bar.update(1)
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
            for rec in pool.imap_unordered(build_one, jobs, chunksize=1):
                records.append(rec)
                bar.update(1)
    bar.close()
    seconds = time.perf_counter() - t0
    extra = [p.name for p in out.glob("ep_*.npz") if p.name > episode_path(out, cfg.episodes - 1).name]
    if extra:
        import warnings

        warnings.warn(f"{out}: {len(extra)} episode file(s) beyond --episodes {cfg.episodes} "
                      f"(e.g. {extra[0]}) remain and will be loaded as part of the folder",
                      stacklevel=2)
    meta = make_meta(cfg, records, seconds, ACTION_NAMES, TASK_STATE_NAMES)
    atomic_write(out / "meta.json", lambda f: json.dump(meta, f, indent=2), text=True)
    return meta


def make_meta(cfg: RobotDataConfig, records: list[dict], seconds: float,
              action_names: list[str], state_names: tuple[str, ...]) -> dict:
    records = sorted(records, key=lambda r: r["index"])
    built = [r for r in records if not r["skipped"]]
    by_task: dict[str, list[bool]] = {}
    for r in records:
        by_task.setdefault(r["task"], []).append(r["success"])
    policies = Counter(
        r["policy"] if r["policy"] in ("random", "poke") else f"expert_noise_{r['noise']:g}" for r in records
    )
    frames_built = len(built) * cfg.episode_len
    return {
        "version": META_VERSION,
        "layout": "rlvr",
        "env": "worldmodels.envs.robot.RobotEnv",
        "episodes": len(records),
        "episode_len": cfg.episode_len,
        "frames": len(records) * cfg.episode_len,
        "image_size": cfg.image_size,
        "action_names": list(action_names),
        "action_low": [-1.0] * len(action_names),
        "action_high": [1.0] * len(action_names),
        "action_meaning": "pusher velocity / max speed; action[t] is taken at image[t]",
        "state_names": list(state_names),
        "seed": cfg.seed,
        "tasks": list(cfg.tasks),
        "test_every": cfg.test_every,
        "counts_by_task": {t: len(v) for t, v in by_task.items()},
        "counts_by_policy": dict(sorted(policies.items())),
        "success_rate": float(np.mean([r["success"] for r in records])),
        "success_rate_by_task": {t: float(np.mean(v)) for t, v in by_task.items()},
        "build": {
            "built": len(built),
            "skipped": len(records) - len(built),
            "seconds": round(seconds, 2),
            "frames_per_s": round(frames_built / seconds, 1) if seconds > 0 else None,
            "workers": cfg.workers or os.cpu_count(),
        },
    }
