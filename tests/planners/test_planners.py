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


# --- infeasible (non-finite) costs: issue 17, kind 2 ------------------------------------------
BOX_LOW, BOX_HIGH = np.array([-1.0, -1.0], np.float32), np.array([1.0, 1.0], np.float32)


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_all_nan_costs_keep_previous_mean(name):
    """The issue's input: every cost NaN -> a finite action equal to the previous mean, flagged."""
    cfg = PlannerConfig(iterations=2, num_samples=16, num_elites=1, horizon=3)
    planner = make_planner(name, cfg, BOX_LOW, BOX_HIGH)
    a0, info = planner.plan(lambda s: torch.full((s.shape[0],), float("nan")), return_info=True)
    assert np.array_equal(a0, np.zeros(2, np.float32))          # the cold-start mean: mid-range
    assert info["all_infeasible"] and info["infeasible_counts"] == [16, 16]
    assert info["best_cost"] == float("inf") and info["cost_history"] == [float("inf")] * 2
    # warm start: a plan towards (0.5, -0.5), then an all-infeasible call keeps its shifted mean
    planner.plan(lambda s: ((s - torch.tensor([0.5, -0.5])) ** 2).sum(dim=(1, 2)))
    prev = planner.prev_mean.clone()
    a1, info = planner.plan(lambda s: torch.full((s.shape[0],), float("inf")), return_info=True)
    assert info["all_infeasible"] and np.isfinite(a1).all()
    assert np.allclose(a1, prev[1].numpy(), atol=1e-6)          # previous plan shifted by one step
    assert torch.equal(planner.prev_mean, torch.cat([prev[1:], prev[-1:]]))


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_only_feasible_sample_gets_all_weight(name):
    """Only sample 0 (the re-evaluated mean, here mid-range) is feasible: the refit mean is
    exactly that sample and the std collapses to min_std. With +inf turned into the largest
    float, MPPI gave the 15 infeasible samples weight exp(-1/T) each and moved the mean."""
    cfg = PlannerConfig(iterations=1, num_samples=16, num_elites=16, horizon=2, min_std=0.05)
    planner = make_planner(name, cfg, BOX_LOW, BOX_HIGH)

    def cost(seqs):
        c = torch.full((seqs.shape[0],), float("inf"))
        c[0] = 1.0
        return c

    a0, info = planner.plan(cost, return_info=True)
    assert np.array_equal(a0, np.zeros(2, np.float32))
    assert info["infeasible_counts"] == [15] and not info["all_infeasible"] and info["best_cost"] == 1.0


@pytest.mark.parametrize("name", ["cem", "mppi"])
@pytest.mark.parametrize("seed", [0, 1])
def test_infeasible_half_space_plans_near_feasible_optimum(name, seed):
    """Cost +inf where a first action coordinate is > 0, else |a - (0.3, 0.3)|^2 summed over
    steps: the feasible optimum is on the boundary, (0, 0.3) at every step, so every round has
    infeasible samples. The plan lands there. (With +inf turned into the largest float, MPPI
    weighted all feasible samples alike and its plan was 0.3-0.6 away.)"""
    target = torch.tensor([0.3, 0.3])

    def cost(seqs):  # (S,H,2)
        c = ((seqs - target) ** 2).sum(dim=(1, 2))
        return torch.where((seqs[..., 0] > 0).any(dim=1), torch.tensor(float("inf")), c)

    cfg = PlannerConfig(iterations=8, num_samples=128, num_elites=128 if name == "mppi" else 16,
                        horizon=2, min_std=0.02, temperature=0.1, seed=seed)
    a0, info = make_planner(name, cfg, BOX_LOW, BOX_HIGH).plan(cost, return_info=True)
    assert min(info["infeasible_counts"]) > 0 and np.isfinite(info["best_cost"])
    plan = info["mean_plan"]                                    # (2, 2)
    assert np.abs(plan - np.array([0.0, 0.3])).max() < 0.08, plan
    assert (plan[:, 0] <= 0).all()                              # the plan itself is feasible


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_one_elite_gives_min_std_not_nan(name):
    """num_elites=1: the refit std is that of a single sample (0, not NaN), clamped to min_std,
    so round 2 samples spread by about min_std around the elite."""
    seen = []

    def cost(seqs):
        seen.append(seqs.clone())
        return ((seqs - 0.2) ** 2).sum(dim=(1, 2))

    cfg = PlannerConfig(iterations=2, num_samples=512, num_elites=1, horizon=1, min_std=0.1)
    a0 = make_planner(name, cfg, BOX_LOW, BOX_HIGH).plan(cost)
    assert np.isfinite(a0).all()
    second = seen[1][1:, 0]                                     # (511, 2); row 0 is the mean itself
    spread = second.std(dim=0)
    assert torch.isfinite(second).all() and bool(((spread > 0.085) & (spread < 0.115)).all()), spread


def test_planner_config_rejects_non_finite_knobs():
    with pytest.raises(ValueError, match="temperature"):
        PlannerConfig(temperature=float("nan"))
    with pytest.raises(ValueError, match="max_std"):
        PlannerConfig(max_std=float("inf"))
    with pytest.raises(ValueError, match="min_std"):
        PlannerConfig(min_std=float("nan"))
