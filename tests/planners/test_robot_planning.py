"""Robot-world pieces: state readout accuracy, the oracle simulator, MPC on it, the Real2Sim
evaluator end to end with the perfect closed-loop simulator. Small frames (32x32) keep it fast."""

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

import planners  # noqa: E402,F401  (triton before EGL)
from planners.base import PlannerConfig  # noqa: E402
from worldmodels.envs import robot_scene as S  # noqa: E402
from worldmodels.envs.robot_readout import (  # noqa: E402
    StateReadout,
    collect_frames,
    evaluate_readout,
    train_readout,
)

SIZE = 32


@pytest.fixture(scope="module")
def readout_and_heldout():
    f, s, _ = collect_frames(("push", "drawer"), episodes=160, steps=5, image_size=SIZE, seed=0)
    fh, sh, nh = collect_frames(("push", "drawer"), episodes=8, steps=20, every=2, image_size=SIZE, seed=1)
    ro = train_readout(f, s, steps=400, width=16, seed=0)
    return ro, (fh, sh, nh), s


def test_readout_error_bound(readout_and_heldout, tmp_path):
    ro, (fh, sh, nh), train_states = readout_and_heldout
    r = evaluate_readout(ro, fh, sh, nh)
    # independent reference: always predicting the training mean
    baseline = np.abs(sh - train_states.mean(0)).mean(0)
    per = np.array(list(r["mae_per_dim"].values()))
    for i in (2, 3, 4, 5, 6):  # block, goal, drawer opening: well below the mean predictor
        assert per[i] < 0.5 * baseline[i], (i, per[i], baseline[i])
    assert r["mae_per_dim"]["drawer_opening"] < 0.01  # metres
    assert r["mae_per_dim"]["block_x"] < 0.04 and r["mae_per_dim"]["goal_x"] < 0.04
    assert r["success_agreement"] > 0.8
    # frames with the objects erased (what a poor world model produces) are never successes
    from worldmodels.envs.robot_readout import judge_success, objects_visible

    assert objects_visible("push", fh).all() and objects_visible("drawer", fh).all()
    blank = np.broadcast_to(fh[:, :1, :1], fh.shape).copy()                   # table colour only
    assert not objects_visible("push", blank).any()
    assert not judge_success(ro, "push", blank).any()
    ro.save(tmp_path / "ro")
    again = StateReadout.load(tmp_path / "ro")
    assert np.allclose(again.read_uint8(fh[:4]), ro.read_uint8(fh[:4]), atol=1e-5)
    with pytest.raises(FileNotFoundError, match="wm plan readout"):
        StateReadout.load(tmp_path / "missing")


def test_sim_model_matches_env():
    from planners.sim_model import SimModel
    from worldmodels.envs.robot import RobotEnv

    env = RobotEnv("push", image_size=SIZE, seed=3)
    env.reset(seed=3)
    sim = SimModel("push", image_size=SIZE)
    sim.sync(env)
    acts = torch.tensor([[[0.5, 0.2], [-0.3, 1.0], [1.0, -1.0]]])                 # (1,3,2)
    pred = sim.predict(torch.zeros(1, 1, 3, SIZE, SIZE), acts, n_samples=2)       # (1,2,3,3,H,W)
    states = sim.rollout_task_states(acts)                                        # (1,3,8)
    frames = [env.step(a.numpy())[0] for a in acts[0]]
    assert pred.shape == (1, 2, 3, 3, SIZE, SIZE)
    assert np.array_equal((pred[0, 1, -1].permute(1, 2, 0) * 255).round().byte().numpy(), frames[-1])
    assert np.allclose(states[0, -1].numpy(), env.task_state(), atol=1e-6)


@pytest.mark.parametrize("planner", ["cem", pytest.param("mppi", marks=pytest.mark.slow)])
def test_oracle_mpc_solves_easy_push(planner, tmp_path):
    from planners.mpc import PlanRunConfig, run_mpc

    knobs = PlannerConfig(iterations=3, num_samples=48, num_elites=6, horizon=6)
    cfg = PlanRunConfig(task="push", planner=planner, model="oracle", episodes=3, max_steps=40,
                        image_size=SIZE, videos=1, out=str(tmp_path), knobs=knobs)
    summary = run_mpc(cfg, progress=False)
    assert summary["success_rate"] >= 2 / 3, summary["per_episode"]
    assert (tmp_path / "episode_00.gif").is_file() and (tmp_path / "summary.json").is_file()
    rnd = run_mpc(PlanRunConfig(task="push", model="random", episodes=3, max_steps=40, image_size=SIZE,
                                videos=0, out=str(tmp_path / "r")), progress=False)
    assert rnd["success_rate"] < summary["success_rate"]
    # graded progress: solved episodes removed most of the block's distance to the goal
    for ep in summary["per_episode"]:
        assert ep["final_distance"] <= S.GOAL_RADIUS or not ep["success"]
    assert summary["mean_progress"] > rnd["mean_progress"]


def test_world_model_cost_paths(readout_and_heldout):
    from planners.costs import image_cost, world_model_cost
    from planners.mpc import goal_image, to_tensor
    from planners.sim_model import SimModel
    from worldmodels.envs.robot import RobotEnv

    ro = readout_and_heldout[0]
    env = RobotEnv("drawer", image_size=SIZE, seed=2)
    first = env.reset(seed=2)
    sim = SimModel("drawer", SIZE)
    sim.sync(env)
    seqs = torch.rand(5, 3, 2) * 2 - 1
    ctx = to_tensor(first[None])
    for kind, kw in (("state", {"task": "drawer", "readout": ro}), ("pixel", {"goal_image": to_tensor(goal_image(env))})):
        c = world_model_cost(sim, ctx, torch.zeros(0, 2), kind, **kw)(seqs)
        assert c.shape == (5,) and torch.isfinite(c).all()
    goal = to_tensor(goal_image(env))
    assert image_cost(goal[None, None].expand(2, 3, -1, -1, -1), goal).abs().max() == 0
    with pytest.raises(ValueError, match="needs task= and readout="):
        world_model_cost(sim, ctx, torch.zeros(0, 2), "state")


class ReplayPolicy:
    """Open-loop replay of action sequences precomputed per seed on the true simulator (the
    scripted expert with ``noise``). Deterministic physics makes real and perfect-loop sim
    rollouts identical, so any sim/real gap can only come from the readout judging success."""

    def __init__(self, name, family, seeds, noise, steps):
        from worldmodels.envs.robot import RobotEnv, expert_action

        self.name, self.description = name, f"replayed expert, noise {noise}"
        env, rng, self.plans = RobotEnv(family, image_size=SIZE), np.random.default_rng(0), {}
        for s in seeds:
            env.reset(seed=s)
            self.plans[s] = []
            for _ in range(steps):
                a = expert_action(env, noise, rng)
                env.step(a)
                self.plans[s].append(a)

    def reset(self, seeds):
        self.rows, self.t = list(seeds), 0

    def act(self, frames):
        assert len(frames) == len(self.rows)
        a = np.stack([self.plans[s][min(self.t, len(self.plans[s]) - 1)] for s in self.rows])
        self.t += 1
        return a


def test_real2sim_with_perfect_loop(readout_and_heldout, tmp_path):
    from planners.policies import RandomPolicy
    from planners.real2sim import Real2SimConfig, build_policies, evaluate
    from planners.report import write_report
    from planners.sim_model import LoopSim

    ro = readout_and_heldout[0]
    cfg = Real2SimConfig(tasks=("drawer",), models=("oracle-loop",), names=("perfect",), policies="",
                         episodes=6, max_steps=30, image_size=SIZE, batch=3, seed=100)
    seeds = list(range(100, 106))
    pols = [RandomPolicy(), ReplayPolicy("replay_n1.5", "drawer", seeds, 1.5, 30),
            ReplayPolicy("replay_n0", "drawer", seeds, 0.0, 30)]
    res, videos = evaluate(cfg, [LoopSim(SIZE)], ro, progress=False, policy_sets={"drawer": pols})
    rows = res["success"]["drawer"]
    assert list(rows) == ["random", "replay_n1.5", "replay_n0"]
    assert set(res["metrics"]["perfect"]) == {"drawer", "overall"}
    assert rows["replay_n0"]["real"] >= 5 / 6 and rows["random"]["real"] <= 1 / 6
    agree = [r == s for row in rows.values() for r, s in zip(row["real_episodes"], row["sim_episodes"]["perfect"], strict=True)]
    assert np.mean(agree) >= 0.8, rows  # a perfect model reproduces reality up to readout errors
    assert res["metrics"]["perfect"]["drawer"]["pearson"] > 0.9
    page = write_report(res, videos, tmp_path / "rep")
    assert page.is_file() and len(list((tmp_path / "rep" / "gifs").glob("*.gif"))) == 3
    assert [p.name for p in build_policies("push", ro, "")] == ["random", "expert_n1.5", "expert_n0.6", "expert_n0"]
    held = build_policies("push", ro, "", repeat=6)  # 3.3 Hz: noise held 6 steps, experts plan for it
    assert [p.name for p in held] == ["random", "expert_n0.3", "expert_n0.1", "expert_n0"]
    assert all(p.hold == 6 for p in held[1:])
    # the real side can be reused from results.json (same seeds), e.g. to add an RLVR model later
    import dataclasses

    again = dataclasses.replace(cfg, reuse_real=str(tmp_path / "rep" / "results.json"), names=("p2",))
    res2, videos2 = evaluate(again, [LoopSim(SIZE)], ro, progress=False, policy_sets={"drawer": pols})
    assert res2["success"]["drawer"]["replay_n1.5"]["real_episodes"] == rows["replay_n1.5"]["real_episodes"]
    # two runs on the same episodes merge into one side-by-side report (GIFs re-tiled)
    from planners.real2sim import merge_results

    write_report(res2, videos2, tmp_path / "rep2")
    merged, mvideos = merge_results([str(tmp_path / "rep"), str(tmp_path / "rep2")])
    assert merged["models"] == ["perfect", "p2"] and set(merged["metrics"]) == {"perfect", "p2"}
    assert merged["success"]["drawer"]["replay_n0"]["sim"]["p2"] == res2["success"]["drawer"]["replay_n0"]["sim"]["p2"]
    assert len(mvideos) == 3 and all(len(c) == 3 and c[0].shape[1:] == (SIZE, SIZE, 3) for c in mvideos.values())
    write_report(merged, mvideos, tmp_path / "rep3")
    few, _ = merge_results([str(tmp_path / "rep"), str(tmp_path / "rep2")], episodes=2)
    row = few["success"]["drawer"]["replay_n1.5"]
    assert few["episodes"] == 2 and row["real"] == np.mean(rows["replay_n1.5"]["real_episodes"][:2])
    with pytest.raises(ValueError, match="has 6"):
        merge_results([str(tmp_path / "rep")], episodes=7)
    with pytest.raises(ValueError, match="episodes=6, this run 5"):
        evaluate(dataclasses.replace(again, episodes=5), [LoopSim(SIZE)], ro, progress=False, policy_sets={"drawer": pols[:1]})


class StaticWorldModel:
    """World-model stand-in: k=2 context frames; predicts 'nothing moves'; records call shapes."""

    class task:  # noqa: N801 - mimics VideoWorldModel.task.spec
        class spec:  # noqa: N801
            context_frames = 2

    def __init__(self):
        self.calls = []

    def predict(self, context_frames, actions, n_samples=1):
        B, k = context_frames.shape[:2]
        N = actions.shape[1] - (k - 1)
        self.calls.append((tuple(context_frames.shape), tuple(actions.shape), n_samples))
        return context_frames[:, -1:].unsqueeze(1).expand(B, n_samples, N, *context_frames.shape[2:])


def test_mpc_and_real2sim_with_a_learned_model_api(readout_and_heldout):
    from planners.mpc import MPCController, PlanRunConfig, run_episode
    from planners.policies import RandomPolicy
    from planners.real2sim import run_sim
    from worldmodels.envs.robot import RobotEnv

    ro = readout_and_heldout[0]
    wm = StaticWorldModel()
    knobs = PlannerConfig(iterations=2, num_samples=8, num_elites=2, horizon=3)
    cfg = PlanRunConfig(task="push", model="fake", image_size=SIZE, max_steps=3, n_samples=2, knobs=knobs)
    env = RobotEnv("push", image_size=SIZE, seed=0)
    ep = run_episode(env, 0, MPCController(cfg, env, wm, readout=ro), 3, np.random.default_rng(0))
    assert ep["steps"] == 3 and len(ep["frames"]) == 4
    # k=2 context frames (padded at t=0), k-1 past actions + horizon planned ones, 8 sequences
    assert set(wm.calls) == {((8, 2, 3, SIZE, SIZE), (8, 1 + 3, 2), 2)}
    wm.calls.clear()
    succ, clips = run_sim(RandomPolicy(), wm, ro, "drawer", [1, 2, 3], max_steps=4, image_size=SIZE, batch=2)
    assert succ.shape == (3,) and clips[0].shape[1:] == (SIZE, SIZE, 3)
    assert {c[0][0] for c in wm.calls} == {2, 1} and all(c[1][1] == 2 for c in wm.calls)


class SkipWorldModel:
    """Stand-in for a frame_skip=3, 1-frame-context world model: records the action sequences."""

    class task:  # noqa: N801
        class spec:  # noqa: N801
            context_frames, frame_skip = 1, 3

    def __init__(self):
        self.seen = []

    def predict(self, context_frames, actions, n_samples=1):
        assert actions.shape[1] % 3 == 0
        self.seen.append(actions.clone())
        B, N = context_frames.shape[0], actions.shape[1] // 3
        return context_frames[:, -1:].unsqueeze(1).expand(B, n_samples, N, *context_frames.shape[2:])


def test_mpc_holds_each_planned_action_for_the_models_frame_skip(readout_and_heldout):
    from planners.mpc import MPCController, PlanRunConfig, run_episode
    from worldmodels.envs.robot import RobotEnv

    wm = SkipWorldModel()
    knobs = PlannerConfig(iterations=1, num_samples=4, num_elites=2, horizon=2)
    cfg = PlanRunConfig(task="push", model="fake", image_size=SIZE, max_steps=7, knobs=knobs)
    env = RobotEnv("push", image_size=SIZE, seed=0)
    ctrl = MPCController(cfg, env, wm, readout=readout_and_heldout[0])
    executed = []
    orig = ctrl.observe
    ctrl.observe = lambda a, f: (executed.append(np.asarray(a)), orig(a, f))
    run_episode(env, 0, ctrl, 7, np.random.default_rng(0))
    assert len(wm.seen) == 3  # re-planned at env steps 0, 3 and 6
    seqs = wm.seen[0]  # (S, horizon*3, A): each planned action repeated 3 times
    assert seqs.shape == (4, 6, 2)
    assert torch.equal(seqs[:, 0], seqs[:, 2]) and torch.equal(seqs[:, 3], seqs[:, 5])
    assert np.array_equal(executed[0], executed[2]) and len(executed) == 7
    with pytest.raises(ValueError, match="multiple of the world model's frame_skip=3"):
        MPCController(PlanRunConfig(task="push", model="fake", image_size=SIZE, action_repeat=2,
                                    knobs=knobs), env, wm, readout=readout_and_heldout[0])


class CountingPolicy:
    """Deterministic per-row actions that change on every call (so held actions are visible)."""

    name, description = "counting", "test policy"

    def reset(self, seeds):
        self.calls = 0

    def act(self, frames):
        self.calls += 1
        a = np.array([np.sin(self.calls), np.cos(self.calls)], np.float32)
        return np.tile(a, (len(frames), 1))


def test_real2sim_action_repeat_holds_actions_on_both_sides(readout_and_heldout):
    """repeat=3 with a frame_skip=3 model: the model gets each action 3 times (env rate) and
    the real side acts every 3rd step; with the true simulator as the closed loop, the policy
    sees exactly the real frames 0, 3, 6, 9."""
    from planners.real2sim import run_real, run_sim
    from planners.sim_model import LoopSim

    ro = readout_and_heldout[0]
    wm, pol = SkipWorldModel(), CountingPolicy()
    run_sim(pol, wm, ro, "push", [1, 2], max_steps=7, image_size=SIZE, batch=2, repeat=3)
    assert len(wm.seen) == 3 == pol.calls                       # ceil(7 / 3) policy steps
    for acts in wm.seen:
        assert acts.shape == (2, 3, 2) and torch.equal(acts[:, 0], acts[:, 2])
    assert not torch.equal(wm.seen[0], wm.seen[1])
    _, real = run_real(CountingPolicy(), "push", [4], max_steps=9, image_size=SIZE, repeat=3)
    _, sim = run_sim(CountingPolicy(), LoopSim(SIZE), ro, "push", [4], max_steps=9, image_size=SIZE,
                     batch=1, repeat=3)
    assert real[0].shape[0] == 10 and sim[0].shape[0] == 4
    assert np.array_equal(real[0][::3], sim[0])


def test_resolve_action_repeat_checks_every_model():
    from planners.real2sim import resolve_action_repeat
    from planners.sim_model import LoopSim

    loop = LoopSim(SIZE)
    assert resolve_action_repeat(0, [loop]) == 1
    assert resolve_action_repeat(0, [loop, SkipWorldModel()]) == 3     # lcm of 1 and 3
    assert resolve_action_repeat(6, [SkipWorldModel()]) == 6
    with pytest.raises(ValueError, match="multiple of every world model's frame_skip"):
        resolve_action_repeat(2, [SkipWorldModel()])

    class TwoFrameContext:
        class task:  # noqa: N801
            class spec:  # noqa: N801
                context_frames, frame_skip = 2, 1

    with pytest.raises(ValueError, match="1-frame-context"):
        resolve_action_repeat(3, [TwoFrameContext()])


def test_readout_state_reward_tracks_the_true_state_error(readout_and_heldout, tmp_path):
    """``readout_state`` (worldmodels.tasks.video_rewards) against the simulator's own states: scoring
    frame pairs, it must follow minus the mean |true state difference| (the quantity it stands
    for), give exactly 0 for a perfect prediction, and need its readout option."""
    from worldmodels.rewards import build_reward

    ro, (fh, sh, _), _ = readout_and_heldout
    ro.save(tmp_path / "ro")
    reward = build_reward("readout_state", aggregate="mean", options={"readout": str(tmp_path / "ro")})
    frames = torch.from_numpy(fh).permute(0, 3, 1, 2).float() / 255.0            # (M,3,H,W)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(fh), 32, replace=False)
    other = rng.choice(len(fh), 32, replace=False)
    target = frames[pick].reshape(16, 2, *frames.shape[1:])                      # (B=16,T=2,...)
    pred = frames[other].reshape(16, 2, *frames.shape[1:])
    total, parts = reward(pred, {"target_frames": target})
    assert total.shape == (16,) and torch.equal(total, parts["readout_state"])
    true_err = np.abs(sh[other] - sh[pick]).mean(1).reshape(16, 2).mean(1)      # metres, (16,)
    r = total.numpy()
    assert np.corrcoef(r, -true_err)[0, 1] > 0.9, (r, true_err)
    # same scale (metres): within 30 % on average for this small 32x32 test readout
    assert np.abs(r + true_err).mean() < 0.3 * true_err.mean(), (r, true_err)
    assert torch.equal(reward(target, {"target_frames": target})[0], torch.zeros(16))
    with pytest.raises(ValueError, match="--readout"):
        build_reward("readout_state")
    with pytest.raises(FileNotFoundError, match="wm plan readout"):
        build_reward("readout_state+mae", options={"readout": str(tmp_path / "missing")})


class TeleportWorldModel:
    """Stand-in world model that answers any action with one fixed frame: the block on its goal
    and the pusher where it started (block motion no pusher caused)."""

    def __init__(self, frame):
        self.frame = torch.from_numpy(frame).permute(2, 0, 1).float() / 255         # (3,H,W)

    def predict(self, context_frames, actions, n_samples=1):
        B, N = context_frames.shape[0], actions.shape[1]
        return self.frame.expand(B, n_samples, N, *self.frame.shape).clone()


def test_real2sim_contact_gate_rejects_a_block_that_moved_by_itself(readout_and_heldout):
    from planners.mpc import goal_image
    from planners.policies import RandomPolicy
    from planners.real2sim import first_frames, run_sim
    from worldmodels.envs.robot import RobotEnv

    ro, seed = readout_and_heldout[0], 5001         # a seed whose block-on-goal frame this small readout reads right
    env = RobotEnv("push", image_size=SIZE, seed=seed)
    env.reset(seed=seed)
    assert (env.reset(seed=seed) == first_frames("push", [seed], SIZE)[0]).all()
    wm = TeleportWorldModel(goal_image(env))
    kw = dict(max_steps=2, image_size=SIZE, batch=1, keep=0)
    plain, _ = run_sim(RandomPolicy(), wm, ro, "push", [seed], **kw)
    gated, _ = run_sim(RandomPolicy(), wm, ro, "push", [seed], contact_gate=True, **kw)
    assert plain.tolist() == [True] and gated.tolist() == [False]
