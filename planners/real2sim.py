"""Real2Sim policy evaluation: rank image policies inside a world model, compare with MuJoCo.

For each task family and policy: the *real* success rate is measured in MuJoCo; the *sim*
success rate by running the same policy closed-loop inside a world model (the policy sees only
frames the model generated from its own actions; success is judged by the state readout with
the same predicate MuJoCo uses). Both sides start from the same seeded initial frame. SIMPLER's
Pearson and MMRV then say how well the model ranks the policies (per task and overall)::

    res, videos = evaluate(Real2SimConfig(models=("runs/wm_video", "runs/wm_rlvr")), policies, readout)
    write_report(res, videos, "runs/real2sim")        # planners.report

An episode succeeds when the predicate holds at any step (as in ``wm plan``).

World models trained with ``frame_skip = s`` generate one frame per s environment steps, so the
policy acts every ``action_repeat`` steps on *both* sides (each action held, as a 3 Hz robot
controller would): in MuJoCo it sees every ``action_repeat``-th frame, in the world model every
generated frame. Success is judged at every environment step in MuJoCo and at every generated
frame in the world model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from planners.mpc import to_tensor
from planners.simpler import ranking_metrics


@dataclass
class Real2SimConfig:
    """Real2Sim evaluation (``wm real2sim run``).

    tasks:       task families evaluated ("push", "drawer").
    models:      world-model directories (or "oracle-loop" for the perfect closed-loop simulator).
    names:       display names of the models (default: "base", "rlvr", then directory names).
    readout:     state-readout directory (judges success on generated frames; feeds readout policies).
    policies:    directory of trained BC policies (``wm real2sim policies``); "" = scripted + random only.
    episodes:    episodes per policy per side per task (seeds seed .. seed+episodes-1).
    max_steps:   control steps per episode (both sides).
    image_size:  frame size (match the world model).
    batch:       world-model episodes generated in lock-step.
    seed:        first episode seed.
    videos:      episodes per (task, policy) kept as side-by-side GIFs in the report (0 or 1).
    action_repeat: environment steps each policy action is held, on both sides; 0 = the world
                 models' frame_skip (their least common multiple; 1 for 20 Hz models and
                 "oracle-loop"). It must be a multiple of every model's frame_skip.
    reuse_real:  results.json of an earlier run with the same seeds/episodes/steps whose real
                 side is reused (only the GIF episodes are re-run in MuJoCo); "" = measure.
    contact_gate: judge push inside the world model on a physically consistent block track:
                 the goal stays where the first frame has it and the block moves only where the
                 read-out pusher could have pushed it (`planners.costs.contact_gated_push_states`).
                 Off = the predicate on each generated frame's read-out state as it is.
    """

    tasks: tuple[str, ...] = ("push", "drawer")
    models: tuple[str, ...] = ("runs/wm_video",)
    names: tuple[str, ...] = ()
    readout: str = "runs/readout"
    policies: str = "runs/policies"
    episodes: int = 50
    max_steps: int = 40
    image_size: int = 64
    batch: int = 25
    seed: int = 5000
    videos: int = 1
    reuse_real: str = ""
    action_repeat: int = 0
    contact_gate: bool = False

    def __post_init__(self) -> None:
        from worldmodels.envs.robot import MAX_IMAGE_SIZE

        if not self.tasks:
            raise ValueError("tasks: give at least one task family ('push', 'drawer')")
        for t in self.tasks:
            if t not in ("push", "drawer"):
                raise ValueError(f"real2sim tasks are task families 'push' or 'drawer', got {t!r}")
        if not self.models:
            raise ValueError("give at least one world model (--model DIR)")
        if self.names and len(self.names) != len(self.models):
            raise ValueError(f"{len(self.names)} names for {len(self.models)} models")
        if self.action_repeat < 0:
            raise ValueError(f"action_repeat must be >= 0 (0 = the models' frame_skip), got {self.action_repeat}")
        for name in ("episodes", "max_steps", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if len(set(self.model_names())) != len(self.models):
            raise ValueError(f"names must be distinct (one results column per model), got {self.model_names()}")
        if self.videos not in (0, 1):
            raise ValueError(f"videos must be 0 or 1 (GIF episodes per task and policy), got {self.videos}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0 (episode seeds are non-negative), got {self.seed}")
        if not 8 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"image_size must be in [8, {MAX_IMAGE_SIZE}], got {self.image_size}")

    def model_names(self) -> list[str]:
        if self.names:
            return list(self.names)
        return [("base", "rlvr")[i] if i < 2 else m for i, m in enumerate(self.models)]


def run_real(policy, task: str, seeds: list[int], max_steps: int, image_size: int, keep: int = 1,
             repeat: int = 1):
    """Policy in MuJoCo, acting every ``repeat`` steps: (successes (E,) bool, kept clips [(T,H,W,3)])."""
    from worldmodels.envs.robot import RobotEnv

    env = RobotEnv(task, image_size=image_size, max_steps=max_steps, seed=seeds[0])
    succ, clips = [], []
    for i, seed in enumerate(seeds):
        policy.reset([seed])
        frame = env.reset(seed=seed)
        frames, ok = [frame], env.is_success()
        for t in range(max_steps):
            if ok:
                break
            if t % repeat == 0:
                action = policy.act(frame[None])[0]
            frame, _, _, info = env.step(action)
            frames.append(frame)
            ok = bool(info["success"])
        succ.append(ok)
        if i < keep:
            clips.append(np.stack(frames))
    env.close()
    return np.array(succ), clips


def first_frames(task: str, seeds: list[int], image_size: int) -> np.ndarray:
    """Initial frames (E,H,W,3) of the seeded episodes (the shared start of both sides)."""
    from worldmodels.envs.robot import RobotEnv

    env = RobotEnv(task, image_size=image_size, seed=seeds[0])
    out = np.stack([env.reset(seed=s) for s in seeds])
    env.close()
    return out


def _spec_field(model, name: str) -> int:
    spec = getattr(getattr(model, "task", None), "spec", None)
    return int(getattr(spec, name, 1) or 1)


def context_len(model) -> int:
    return _spec_field(model, "context_frames")


def resolve_action_repeat(requested: int, models: list) -> int:
    """The policies' action repeat for these models: ``requested``, or (0) the least common
    multiple of their frame skips; checked to be a multiple of each (one generated frame per
    ``frame_skip`` env steps) and, when > 1, that every model has a 1-frame context."""
    import math

    skips = [_spec_field(m, "frame_skip") for m in models]
    repeat = requested or math.lcm(*skips)
    for m, s in zip(models, skips, strict=True):
        if repeat % s:
            raise ValueError(f"action_repeat={repeat} must be a multiple of every world model's "
                             f"frame_skip (one is {s})")
        if repeat > 1 and context_len(m) > 1:
            raise ValueError(f"action_repeat={repeat} needs 1-frame-context world models "
                             f"(one has {context_len(m)} context frames)")
    return repeat


@torch.no_grad()
def run_sim(policy, model, readout, task: str, seeds: list[int], max_steps: int, image_size: int,
            batch: int = 25, keep: int = 1, repeat: int = 1, contact_gate: bool = False):
    """Policy closed-loop inside ``model``: (successes (E,) bool by readout, kept clips).

    With ``repeat = r > 1`` (a 1-frame-context model) each action is held for r env steps: the
    model gets it r times (env rate, ``predict``'s contract) and its last generated frame is
    what the policy sees next; ``ceil(max_steps / r)`` policy steps cover ``max_steps``.
    ``contact_gate`` (push): judge on the contact-gated block track (`Real2SimConfig`)."""
    from worldmodels.envs.robot_readout import judge_success

    gate = contact_gate and task == "push"
    resolve_action_repeat(repeat, [model])                              # repeat fits the model
    starts = first_frames(task, seeds, image_size)                      # (E,H,W,3)
    k = context_len(model)
    succ, clips = np.zeros(len(seeds), bool), []
    for lo in range(0, len(seeds), batch):
        idx = list(range(lo, min(lo + batch, len(seeds))))
        if hasattr(model, "begin"):
            model.begin(task, [seeds[i] for i in idx])
        policy.reset([seeds[i] for i in idx])                          # one row per seed
        B = len(idx)
        hist = [starts[idx]] * k                                        # k x (B,H,W,3), padded
        acts = [np.zeros((B, 2), np.float32)] * (k - 1)                 # zero actions between pads
        done = judge_success(readout, task, starts[idx])
        track = [readout.read_uint8(starts[idx])] if gate else None    # read-out states, (B,8) each
        clip, clip_open = [starts[idx[0]]], lo == 0 and not done[0]
        for _ in range(-(-max_steps // repeat)):
            a = policy.act(hist[-1])                                    # (B,A)
            ctx = to_tensor(np.stack(hist[-k:], 1))                     # (B,k,3,H,W)
            past = acts[len(acts) - (k - 1):] if k > 1 else []
            act_seq = torch.from_numpy(np.stack([*past, *[a] * repeat], 1))   # (B,k-1+r,A)
            # only unfinished episodes are generated (a closed-loop simulator steps every row)
            li = np.arange(B) if hasattr(model, "begin") else np.flatnonzero(~done)
            pred = model.predict(ctx[li], act_seq[li].float(), n_samples=1)[:, 0, -1]  # (b,3,H,W)
            frame = hist[-1].copy()                                     # finished rows hold still
            frame[li] = (pred.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
            hist.append(frame)
            acts.append(a)
            if gate:
                track.append(readout.read_uint8(frame))
                done |= judge_gated_push(track, frame)
            else:
                done[li] |= judge_success(readout, task, frame[li])
            if clip_open:
                clip.append(frame[0])
                clip_open = not done[0]                                 # stop at the first success
            if done.all():
                break
        succ[idx] = done
        if lo == 0 and keep:
            clips.append(np.stack(clip))
    return succ, clips


def judge_gated_push(track: list[np.ndarray], frames: np.ndarray) -> np.ndarray:
    """Push success of the latest frames (B,H,W,3) on the contact-gated block track.

    track: read-out states [(B,8)] from the first frame to the latest. Returns (B,) bool."""
    from planners.costs import contact_gated_push_states
    from worldmodels.envs.robot_readout import judge_states

    states = torch.from_numpy(np.stack(track[1:], 1)).float()                   # (B,T,8)
    last = contact_gated_push_states(states, torch.from_numpy(track[0]).float())[:, -1].numpy()
    return judge_states("push", last, frames)


# Expert action-noise levels per action repeat, chosen so the experts span success ~0 to ~1 in
# MuJoCo: a held action carries its noise `repeat` times as far (docs/planning.md, Real2Sim).
EXPERT_NOISES = (1.5, 0.6, 0.0)
EXPERT_NOISES_HELD = (0.3, 0.1, 0.0)


def build_policies(family: str, readout, policies_dir: str | None, repeat: int = 1) -> list:
    """The evaluated set: random, scripted experts on read-out state at three noise levels, and
    every BC policy saved under ``policies_dir/<family>/*`` (sorted by name). With ``repeat`` > 1
    the experts plan for actions held ``repeat`` steps, at the ``EXPERT_NOISES_HELD`` levels."""
    from pathlib import Path

    from planners.policies import BCPolicy, RandomPolicy, ReadoutExpert

    noises = EXPERT_NOISES if repeat == 1 else EXPERT_NOISES_HELD
    pols = [RandomPolicy(), *[ReadoutExpert(readout, family, n, hold=repeat) for n in noises]]
    root = Path(policies_dir) / family if policies_dir else None
    if root is not None and root.is_dir():
        pols += [BCPolicy.load(d) for d in sorted(root.iterdir()) if (d / "policy.json").is_file()]
    return pols


def load_real(cfg: Real2SimConfig, repeat: int = 1) -> dict:
    """Per-episode real outcomes {task: {policy: [0/1,...]}} from ``cfg.reuse_real`` (checked to match)."""
    import json
    from pathlib import Path

    p = Path(cfg.reuse_real)
    if not p.is_file():
        raise FileNotFoundError(f"reuse_real: {p} does not exist (a results.json of wm real2sim run)")
    old = json.loads(p.read_text())
    oc = old.get("config", {})
    # what the real side depends on: the episodes, and the policies (BC ones from `policies`,
    # the scripted experts act on `readout`'s read-out state)
    for key in ("episodes", "max_steps", "seed", "image_size", "readout", "policies"):
        if oc.get(key) != getattr(cfg, key):
            raise ValueError(f"reuse_real: {p} has {key}={oc.get(key)!r}, this run {getattr(cfg, key)!r}")
    if old.get("action_repeat", 1) != repeat:
        raise ValueError(f"reuse_real: {p} has action_repeat={old.get('action_repeat', 1)}, this run {repeat}")
    return {t: {n: row["real_episodes"] for n, row in rows.items()} for t, rows in old["success"].items()}


def _measure_row(cfg: Real2SimConfig, pol, task: str, models: list, readout, repeat: int,
                 earlier: dict) -> tuple[dict, list]:
    """One (task, policy) row: real and per-model simulated successes, and its clips."""
    names = cfg.model_names()
    seeds = [cfg.seed + i for i in range(cfg.episodes)]
    if pol.name in earlier.get(task, {}):
        real = np.array(earlier[task][pol.name], bool)
        real_clips = run_real(pol, task, seeds[:cfg.videos], cfg.max_steps, cfg.image_size,
                              keep=cfg.videos, repeat=repeat)[1] if cfg.videos else []
    else:
        real, real_clips = run_real(pol, task, seeds, cfg.max_steps, cfg.image_size,
                                    keep=cfg.videos, repeat=repeat)
    row = {"real": float(real.mean()), "real_episodes": real.astype(int).tolist(), "sim": {},
           "sim_episodes": {}}
    clips = list(real_clips)
    for name, model in zip(names, models, strict=True):
        sim, sim_clips = run_sim(pol, model, readout, task, seeds, cfg.max_steps, cfg.image_size,
                                 cfg.batch, keep=cfg.videos, repeat=repeat,
                                 contact_gate=cfg.contact_gate)
        row["sim"][name] = float(sim.mean())
        row["sim_episodes"][name] = sim.astype(int).tolist()
        clips += sim_clips
    return row, clips


def evaluate(cfg: Real2SimConfig, models: list, readout, progress: bool = True,
             policy_sets: dict | None = None, rows=None) -> tuple[dict, dict]:
    """Run both sides for every task family, policy and model. Returns (results, videos) for
    `planners.report.write_report` (videos: (task, policy) -> [real clip, one clip per model]).
    ``policy_sets`` (family -> list of policies) replaces `build_policies` when given.
    ``rows`` (`planners.real2sim_rows.RowLog`, optional): each finished row is logged there,
    and rows it already holds (an interrupted run of the same config) are kept, not re-run."""
    import time

    from worldmodels.config import to_dict

    names = cfg.model_names()
    repeat = resolve_action_repeat(cfg.action_repeat, models)
    earlier = load_real(cfg, repeat) if cfg.reuse_real else {}
    success, videos, policies_meta, timing = {}, {}, {}, {}
    for task in cfg.tasks:
        success[task] = {}
        pols = policy_sets[task] if policy_sets else build_policies(task, readout, cfg.policies, repeat)
        for pol in pols:
            t0 = time.time()
            kept = rows.get(task, pol.name) if rows is not None else None
            if kept is not None:
                row, clips, seconds = kept
            else:
                row, clips = _measure_row(cfg, pol, task, models, readout, repeat, earlier)
                seconds = time.time() - t0
                if rows is not None:
                    rows.put(task, pol.name, row, clips, seconds)
            success[task][pol.name] = row
            policies_meta[pol.name] = pol.description
            timing[f"{task}/{pol.name}"] = seconds
            if cfg.videos and clips:  # a kept row whose GIF is gone has none
                videos[(task, pol.name)] = clips
            if progress:
                sims = " ".join(f"{n}={row['sim'][n]:.2f}" for n in names)
                print(f"[real2sim] {task:<7}{pol.name:<14} real={row['real']:.2f} {sims} "
                      f"({seconds:.0f}s{', kept from the interrupted run' if kept else ''})", flush=True)
    results = {"tasks": list(cfg.tasks), "models": names, "model_paths": list(cfg.models),
               "episodes": cfg.episodes, "max_steps": cfg.max_steps, "action_repeat": repeat,
               "policies": [{"name": p, "description": d} for p, d in policies_meta.items()],
               "success": success, "seconds": timing, "config": to_dict(cfg)}
    results["metrics"] = compute_metrics(results)
    return results, videos


def compute_metrics(results: dict) -> dict:
    """SIMPLER metrics {model: {task|"overall": {...}}} from ``results["success"]``."""
    names = [p["name"] for p in results["policies"]]
    metrics = {}
    for m in results["models"]:
        metrics[m], all_r, all_s = {}, [], []
        for task in results["tasks"]:
            rows = results["success"][task]
            r = [rows[p]["real"] for p in names if p in rows]
            s = [rows[p]["sim"][m] for p in names if p in rows]
            metrics[m][task] = ranking_metrics(r, s)
            all_r, all_s = all_r + r, all_s + s
        metrics[m]["overall"] = ranking_metrics(all_r, all_s)
    return metrics


def _gif_panels(path, n: int, size: int, gap: int = 2) -> list[np.ndarray]:
    import imageio.v2 as imageio

    frames = np.stack([f[..., :3] for f in imageio.mimread(path)])            # (T,H,n*W+gaps,3)
    return [frames[:, :size, i * (size + gap): i * (size + gap) + size] for i in range(n)]


def truncate_episodes(run: dict, n: int) -> dict:
    """The same results restricted to the first ``n`` episodes (rates recomputed per episode)."""
    import copy

    if n > run["episodes"]:
        raise ValueError(f"cannot truncate to {n} episodes: the run has {run['episodes']}")
    run = copy.deepcopy(run)
    for rows in run["success"].values():
        for row in rows.values():
            row["real_episodes"] = row["real_episodes"][:n]
            row["real"] = float(np.mean(row["real_episodes"]))
            for m in row["sim_episodes"]:
                row["sim_episodes"][m] = row["sim_episodes"][m][:n]
                row["sim"][m] = float(np.mean(row["sim_episodes"][m]))
    run["episodes"] = n
    run["config"] = {**run["config"], "episodes": n}
    return run


def merge_results(dirs: list[str], episodes: int | None = None) -> tuple[dict, dict]:
    """Combine ``wm real2sim run`` report dirs measured on the same episodes (same config
    seeds/episodes/steps, identical real outcomes) into one results dict with every model side
    by side, plus videos re-tiled from their GIFs (real | model A | model B ...).
    ``episodes`` first restricts every run to its first N episodes (same seeds), so a model
    measured on fewer episodes can sit next to one measured on more."""
    import json
    from pathlib import Path

    runs = [json.loads((Path(d) / "results.json").read_text()) for d in dirs]
    if episodes is not None:
        runs = [truncate_episodes(r, episodes) for r in runs]
    base = runs[0]
    keys = ("episodes", "max_steps", "seed", "image_size")
    merged = {**base, "models": list(base["models"]), "model_paths": list(base.get("model_paths", []))}
    merged["success"] = json.loads(json.dumps(base["success"]))
    for d, run in zip(dirs[1:], runs[1:], strict=True):
        for k in keys:
            if run["config"][k] != base["config"][k]:
                raise ValueError(f"{d}: {k}={run['config'][k]} differs from {dirs[0]} ({base['config'][k]})")
        if run.get("action_repeat", 1) != base.get("action_repeat", 1):
            raise ValueError(f"{d}: action_repeat={run.get('action_repeat', 1)} differs from {dirs[0]} "
                             f"({base.get('action_repeat', 1)})")
        for task in base["tasks"]:
            for pol, row in base["success"][task].items():
                other = run["success"].get(task, {}).get(pol)
                if other is None or other["real_episodes"] != row["real_episodes"]:
                    raise ValueError(f"{d}: real episodes of {task}/{pol} differ from {dirs[0]} (not the same episodes)")
        for m, path in zip(run["models"], run.get("model_paths", run["models"]), strict=False):
            if m in merged["models"]:
                continue
            merged["models"].append(m)
            merged["model_paths"].append(path)
            for task in base["tasks"]:
                for pol in base["success"][task]:
                    src = run["success"][task][pol]
                    merged["success"][task][pol]["sim"][m] = src["sim"][m]
                    merged["success"][task][pol]["sim_episodes"][m] = src["sim_episodes"][m]
    merged["metrics"] = compute_metrics(merged)
    merged["merged_from"] = [str(d) for d in dirs]
    videos, size = {}, base["config"]["image_size"]
    for task in base["tasks"]:
        for pol in base["success"][task]:
            clips = None
            for d, run in zip(dirs, runs, strict=True):
                gif = Path(d) / "gifs" / f"{task}_{pol}.gif"
                if not gif.is_file():
                    clips = None
                    break
                panels = _gif_panels(gif, 1 + len(run["models"]), size)
                clips = panels if clips is None else clips + [p for m, p in zip(run["models"], panels[1:], strict=True)
                                                              if m not in base["models"]]
            if clips:
                videos[(task, pol)] = clips
    return merged, videos
