"""Planning state costs against their closed forms (planners/costs.py)."""

import math

import pytest
import torch

from planners.costs import BEHIND, GOAL_WEIGHT, drawer_cost, push_cost, state_cost
from worldmodels.envs import robot_scene as S


def push_state(pusher, block, goal):
    s = torch.zeros(8)
    s[0:2], s[2:4], s[4:6] = torch.tensor(pusher), torch.tensor(block), torch.tensor(goal)
    return s


def test_push_cost_is_weighted_distance_plus_shaping():
    block, goal = (0.0, 0.0), (0.3, 0.4)                    # 0.5 m apart, direction (0.6, 0.8)
    behind = (-BEHIND * 0.6, -BEHIND * 0.8)
    at_behind = push_state(behind, block, goal)
    assert push_cost(at_behind).item() == pytest.approx(GOAL_WEIGHT * 0.5, abs=1e-6)
    off = push_state((behind[0] + 0.03, behind[1] - 0.04), block, goal)  # 5 cm from the push point
    assert push_cost(off).item() == pytest.approx(GOAL_WEIGHT * 0.5 + 0.05, abs=1e-6)
    # the weight scales only the distance term
    assert (push_cost(off, 10.0) - push_cost(off, 1.0)).item() == pytest.approx(9 * 0.5, abs=1e-5)


def test_drawer_cost_at_the_hook_is_the_weighted_opening_error():
    opening, goal = 0.05, 0.15                                # opening: pusher must sit in the hook gap
    bar_y = S.DRAWER_FRONT_Y - opening - S.HANDLE_OFFSET
    s = torch.zeros(8)
    s[0:2] = torch.tensor([S.CABINET_X - 0.01, bar_y + S.HANDLE_OFFSET / 2])
    s[6], s[7] = opening, goal
    for w in (1.0, GOAL_WEIGHT):
        assert drawer_cost(s, w).item() == pytest.approx(w * 0.10, abs=1e-5)


def test_state_cost_is_mean_over_horizon_plus_last():
    states = torch.stack([push_state((0.0, 0.0), (0.0, 0.0), (0.0, d)) for d in (0.1, 0.2, 0.4)])
    per_step = push_cost(states)                                                   # (3,)
    got = state_cost("push", states[None], goal_weight=GOAL_WEIGHT)                # (1,)
    assert got.item() == pytest.approx(per_step.mean().item() + per_step[-1].item(), abs=1e-6)
    assert not math.isclose(state_cost("push", states[None], 1.0).item(), got.item())


def test_plan_config_rejects_a_non_positive_goal_weight():
    from planners.mpc import PlanRunConfig

    with pytest.raises(ValueError, match="goal_weight"):
        PlanRunConfig(goal_weight=0.0)
