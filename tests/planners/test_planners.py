"""CEM and MPPI on known costs: minimum of a quadratic, bounds, warm start shift."""

import numpy as np
import pytest
import torch

from planners.base import PlannerConfig
from planners.registry import make_planner

LOW = np.array([-1.0, -2.0, 0.0], dtype=np.float32)
HIGH = np.array([1.0, 2.0, 4.0], dtype=np.float32)
TARGET = torch.tensor([[0.3, -1.2, 3.1], [-0.5, 0.7, 1.0], [0.9, 1.5, 0.2], [0.0, 0.0, 2.0]])  # (H=4, A=3)
SCALE = torch.tensor([1.0, 3.0, 0.5])  # anisotropic quadratic


def quadratic(seqs: torch.Tensor) -> torch.Tensor:
    """(S,H,A) -> (S,); minimum 0 at TARGET (inside the bounds)."""
    return (((seqs - TARGET) ** 2) * SCALE).sum(dim=(1, 2))


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_finds_quadratic_minimum(name):
    cfg = PlannerConfig(iterations=8, num_samples=256, num_elites=32, horizon=4, min_std=0.01, seed=1)
    planner = make_planner(name, cfg, LOW, HIGH)
    a0, info = planner.plan(quadratic, return_info=True)
    plan = torch.as_tensor(info["mean_plan"])
    assert plan.shape == (4, 3)
    err = (plan - TARGET).abs().max().item()
    assert err < 0.1, f"{name}: plan off by {err}"
    assert np.allclose(a0, info["mean_plan"][0])
    assert info["cost_history"][-1] < info["cost_history"][0] / 20  # it improves, quickly


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_respects_bounds(name):
    cfg = PlannerConfig(iterations=4, num_samples=64, num_elites=8, horizon=2)
    planner = make_planner(name, cfg, LOW, HIGH)
    seen = []

    def cost(seqs):  # pushes every action towards +infinity
        seen.append(seqs.clone())
        return -seqs.sum(dim=(1, 2))

    a0 = planner.plan(cost)
    allseen = torch.cat(seen)
    assert bool((allseen >= torch.as_tensor(LOW) - 1e-6).all() and (allseen <= torch.as_tensor(HIGH) + 1e-6).all())
    assert np.all(a0 > LOW + 0.9 * (HIGH - LOW)), a0  # driven to the upper bound


def test_warm_start_shifts_plan():
    cfg = PlannerConfig(iterations=3, num_samples=64, num_elites=8, horizon=4)
    planner = make_planner("cem", cfg, LOW, HIGH)
    planner.plan(quadratic)
    prev = planner.prev_mean.clone()
    init = planner.initial_mean()
    assert torch.equal(init[:-1], prev[1:]) and torch.equal(init[-1], prev[-1])
    planner.reset()
    assert torch.equal(planner.initial_mean(), torch.zeros(4, 3))
    cold = PlannerConfig(iterations=3, num_samples=64, num_elites=8, horizon=4, warm_start=False)
    p2 = make_planner("mppi", cold, LOW, HIGH)
    p2.plan(quadratic)
    assert torch.equal(p2.initial_mean(), torch.zeros(4, 3))


def test_bad_config_and_cost():
    with pytest.raises(ValueError, match="num_elites"):
        PlannerConfig(num_samples=4, num_elites=8)
    with pytest.raises(ValueError, match="unknown planner"):
        make_planner("rrt", PlannerConfig(), LOW, HIGH)
    p = make_planner("cem", PlannerConfig(num_samples=8, num_elites=2), LOW, HIGH)
    with pytest.raises(ValueError, match="costs for 8"):
        p.plan(lambda s: torch.zeros(3))
