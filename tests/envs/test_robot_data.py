"""The robot dataset builder: per-episode plans, config validation, resume == uninterrupted."""

import json
import os

import numpy as np
import pytest

from worldmodels.config import ConfigError, load_config
from worldmodels.envs.robot_data import (
    RobotDataConfig,
    build_dataset,
    episode_path,
    episode_plan,
)
from worldmodels.episodes import dataset_split, load_episode


def tiny(out, **kw):
    base = dict(out=str(out), episodes=4, episode_len=8, image_size=16, workers=1)
    return RobotDataConfig(**{**base, **kw})


def test_plan_depends_only_on_seed_and_index(tmp_path):
    a, b = tiny(tmp_path, episodes=10), tiny(tmp_path / "x", episodes=500, workers=2)
    assert [episode_plan(a, i) for i in range(10)] == [episode_plan(b, i) for i in range(10)]
    plans = [episode_plan(a, i) for i in range(30)]
    assert len({p["env_seed"] for p in plans}) == 30
    assert [p["task"] for p in plans[:4]] == ["push", "drawer_open", "drawer_close", "push"]
    other = [episode_plan(tiny(tmp_path, seed=1), i)["env_seed"] for i in range(30)]
    assert other != [p["env_seed"] for p in plans]
    assert {episode_plan(tiny(tmp_path, random_fraction=1.0), i)["policy"] for i in range(20)} \
        == {"random"}
    experts = [episode_plan(tiny(tmp_path, random_fraction=0.0, expert_noise=[0.0, 2.0]), i)
               for i in range(40)]
    assert {p["policy"] for p in experts} == {"expert"}
    assert {p["noise"] for p in experts} == {0.0, 2.0}


@pytest.mark.parametrize(
    "override, match",
    [
        ("tasks=[push, fly]", "unknown robot task 'fly'; valid tasks: push"),
        ("episodes=0", "episodes"),
        ("image_size=300", "image_size"),
        ("episode_len=1", "episode_len"),
        ("expert_noise=[-1]", "expert_noise"),
        ("random_fraction=1.5", "random_fraction"),
        ("poke_fraction=-0.1", "poke_fraction"),
        ("test_every=0", "test_every"),
        ("action_hold=[0]", "action_hold"),
        ("action_hold=[]", "action_hold"),
        ("workers=-1", "workers"),
        ("colour=red", "unknown config field"),
        ("episodes=many", "expected an integer"),
    ],
)
def test_config_validation(override, match):
    with pytest.raises((ConfigError, ValueError), match=match):
        load_config(RobotDataConfig, None, [override])


def test_recipe_loads():
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "data" / "recipes" / "robot_tiny.yaml"
    cfg = load_config(RobotDataConfig, recipe, ["workers=2"])
    assert cfg.episodes == 200 and cfg.image_size == 64 and cfg.test_every == 10
    assert cfg.workers == 2


def test_every_robot_recipe_is_a_valid_config():
    """Each shipped robot-data recipe loads (a typo'd field or bad value fails here, not after
    a long build), and writes under data/ (git-ignored), not into the source tree."""
    from pathlib import Path

    recipes = sorted((Path(__file__).resolve().parents[2] / "data" / "recipes").glob("robot_*.yaml"))
    assert len(recipes) >= 4
    for recipe in recipes:
        cfg = load_config(RobotDataConfig, recipe, [])
        assert cfg.out.startswith("data/") and cfg.episodes >= 1, recipe.name


def test_build_writes_episodes_and_meta(tmp_path):
    cfg = tiny(tmp_path / "d", episodes=5)
    meta = build_dataset(cfg, progress=False)
    files = sorted((tmp_path / "d").glob("*.npz"))
    assert [f.name for f in files] == [f"ep_{i:06d}.npz" for i in range(5)]
    on_disk = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert on_disk == meta
    for key in ("action_names", "action_low", "action_high", "image_size", "seed", "episodes",
                "tasks", "test_every", "episode_len"):
        assert key in meta
    assert meta["episodes"] == 5 and meta["frames"] == 40 and meta["image_size"] == 16
    assert sum(meta["counts_by_task"].values()) == 5
    assert sum(meta["counts_by_policy"].values()) == 5
    assert (tmp_path / "d" / "config.yaml").is_file()
    raw = np.load(files[1])
    assert set(raw.files) >= {"image", "action", "state", "success", "task", "policy", "noise",
                              "seed"}
    ep = load_episode(files[1])
    assert ep.image.shape == (8, 16, 16, 3) and ep.action.shape == (8, 2)
    assert ep.state.shape == (8, 8) and ep.success.shape == (8,) and ep.task == "drawer_open"
    plan = episode_plan(cfg, 1)
    assert str(raw["policy"]) == plan["policy"] and float(raw["noise"]) == plan["noise"]
    assert np.all(np.abs(ep.action) <= 1.0)
    assert len(dataset_split(tmp_path / "d", "test")) == 1  # test_every=10


def test_action_hold_episodes(tmp_path):
    """action_hold=[1, 6]: some episodes act every 6th step and hold the action in between;
    [1] (the default) leaves the plans of folders built before the field existed unchanged."""
    cfg = tiny(tmp_path / "h", episodes=12, episode_len=14, action_hold=[1, 6], random_fraction=0.5)
    plans = [episode_plan(cfg, i) for i in range(12)]
    assert {p["hold"] for p in plans} == {1, 6}
    old = [episode_plan(tiny(tmp_path), i) for i in range(12)]
    held = [episode_plan(tiny(tmp_path, action_hold=[6]), i) for i in range(12)]
    assert all(p["hold"] == 1 for p in old) and all(p["hold"] == 6 for p in held)
    # a single hold draws nothing: the rest of every plan is what it was before the field existed
    assert [{**p, "hold": 0} for p in old] == [{**p, "hold": 0} for p in held]
    build_dataset(cfg, progress=False)
    for p in plans:
        a = load_episode(episode_path(cfg.out, p["index"])).action                   # (14,2)
        blocks = a[: 12].reshape(-1, p["hold"], 2) if p["hold"] > 1 else None
        if blocks is not None:  # constant within each block of 6, new at every block start
            assert np.array_equal(blocks, np.repeat(blocks[:, :1], 6, 1))
            assert not np.array_equal(blocks[0, 0], blocks[1, 0])
        else:
            assert len({tuple(x) for x in a[:6]}) > 1 or p["policy"] == "expert"


def test_poke_episodes_push_the_block_in_every_direction(tmp_path):
    """poke_fraction: push episodes drive the pusher through the block from any side, so the
    block moves a lot and often away from the goal (the expert only moves it towards the goal);
    drawer tasks never poke, and poke_fraction=0 leaves older folders' plans unchanged."""
    from worldmodels.envs.robot_data import rollout_episode

    cfg = tiny(tmp_path, tasks=["push", "drawer_open"], random_fraction=0.0, poke_fraction=1.0,
               action_hold=[6], episode_len=50, image_size=16)
    plans = [episode_plan(cfg, i) for i in range(16)]
    assert {p["policy"] for p in plans if p["task"] == "push"} == {"poke"}
    assert {p["policy"] for p in plans if p["task"] != "push"} == {"expert"}
    cos = []
    for p in [p for p in plans if p["task"] == "push"]:
        st = rollout_episode(cfg, p)["state"]                                       # (50, 8)
        moved, to_goal = st[-1, 2:4] - st[0, 2:4], st[0, 4:6] - st[0, 2:4]
        assert np.linalg.norm(moved) > 0.05                                          # it was pushed
        cos.append(moved @ to_goal / np.linalg.norm(moved) / np.linalg.norm(to_goal))
    assert min(cos) < -0.3 and max(cos) > 0.3                                       # towards and away
    # poking is drawn after the random/expert choice and only for push: drawer plans and the
    # random episodes are the same as without it
    before = [episode_plan(tiny(tmp_path, tasks=["push", "drawer_open"], random_fraction=0.3), i)
              for i in range(40)]
    after = [episode_plan(tiny(tmp_path, tasks=["push", "drawer_open"], random_fraction=0.3,
                               poke_fraction=0.5), i) for i in range(40)]
    assert [p for p in before if p["task"] != "push"] == [p for p in after if p["task"] != "push"]
    assert [p["policy"] == "random" for p in before] == [p["policy"] == "random" for p in after]
    assert 0 < sum(p["policy"] == "poke" for p in after) < 20


def test_episode_replays_in_the_env(tmp_path):
    """Stored frames/states are what the env produces when the stored actions are replayed."""
    from worldmodels.envs.robot import RobotEnv

    cfg = tiny(tmp_path / "d", episodes=1)
    build_dataset(cfg, progress=False)
    ep = load_episode(episode_path(cfg.out, 0))
    plan = episode_plan(cfg, 0)
    env = RobotEnv(plan["task"], image_size=16)
    frames = [env.reset(seed=plan["env_seed"])]
    states = [env.task_state()]
    for a in ep.action[:-1]:
        frames.append(env.step(a)[0])
        states.append(env.task_state())
    assert np.array_equal(np.stack(frames), ep.image)
    assert np.array_equal(np.stack(states), ep.state)


def test_resume_equals_uninterrupted_and_rebuilds_broken(tmp_path):
    full = tiny(tmp_path / "full", episodes=4)
    build_dataset(full, progress=False)
    part = tiny(tmp_path / "part", episodes=2)
    build_dataset(part, progress=False)
    kept = episode_path(part.out, 0)
    before = os.stat(kept).st_mtime_ns
    broken = episode_path(part.out, 1)
    broken.write_bytes(broken.read_bytes()[:100])  # an interrupted / corrupt file
    meta = build_dataset(tiny(tmp_path / "part", episodes=4), progress=False)
    assert meta["build"]["skipped"] == 1 and meta["build"]["built"] == 3
    assert os.stat(kept).st_mtime_ns == before
    for i in range(4):
        a = np.load(episode_path(full.out, i))
        b = np.load(episode_path(tmp_path / "part", i))
        for k in a.files:
            assert np.array_equal(a[k], b[k]), (i, k)


def test_resume_refuses_other_settings(tmp_path):
    build_dataset(tiny(tmp_path / "d", episodes=1), progress=False)
    with pytest.raises(ValueError, match="config.yaml.*image_size: 16 there vs 32 now"):
        build_dataset(tiny(tmp_path / "d", episodes=1, image_size=32), progress=False)
