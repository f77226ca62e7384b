"""The contact-gated push judge of Real2Sim (planners.real2sim.judge_gated_push) on read-out
state tracks built by hand: hallucinated block motion does not count, a push does."""

import numpy as np
import pytest

pytest.importorskip("mujoco")

import planners  # noqa: E402,F401  (triton before EGL)
from planners.real2sim import judge_gated_push  # noqa: E402
from worldmodels.envs.robot import success_from_task_state  # noqa: E402


def state(pusher, block, goal):
    s = np.zeros(8, np.float32)
    s[0:2], s[2:4], s[4:6] = pusher, block, goal
    return s


@pytest.fixture(scope="module")
def frames():
    from worldmodels.envs.robot import RobotEnv

    env = RobotEnv("push", image_size=32, seed=0)
    f = env.reset(seed=0)
    env.close()
    return np.stack([f, f])                                     # block and goal on screen


def test_block_reaching_the_goal_without_contact_is_not_a_success(frames):
    goal = (-0.1, 0.0)
    start = np.stack([state((0.2, 0.2), (0.0, 0.0), goal)] * 2)
    # row 0: block jumps onto the goal while the pusher stays far; row 1: a push from behind
    latest = np.stack([state((0.2, 0.2), goal, goal), state((-0.03, 0.0), (-0.09, 0.0), goal)])
    mid = np.stack([state((0.2, 0.2), (0.0, 0.0), goal), state((0.08, 0.0), (0.0, 0.0), goal)])
    assert all(success_from_task_state("push", s) for s in latest)      # what an ungated judge sees
    ok = judge_gated_push([start, mid, latest], frames)
    assert ok.tolist() == [False, True]


def test_a_goal_disc_that_moves_onto_the_block_does_not_count(frames):
    start = np.stack([state((0.2, 0.2), (0.0, 0.0), (0.0, -0.2))] * 2)
    latest = np.stack([state((0.2, 0.2), (0.0, 0.0), (0.0, 0.0))] * 2)  # the goal came to the block
    assert not judge_gated_push([start, latest], frames).any()
