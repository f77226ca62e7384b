"""Shared pieces of the sampling-based MPC planners (CEM, MPPI), TD-MPC2-style knobs.

A planner optimises an action *sequence* of length ``horizon`` against a batched cost::

    cost_fn(action_seqs: Tensor (S, horizon, A)) -> Tensor (S,)     # lower is better

It knows nothing about images, world models or robots: `planners.costs` builds ``cost_fn``
from any object with the world-model ``predict`` API. Standard deviations are expressed in
*normalised* units (fractions of half the action range), so ``min_std=0.05, max_std=2``
mean the same for every action space, exactly as in TD-MPC2 where actions live in [-1, 1].

    planner = CEM(PlannerConfig(horizon=5), action_low=low, action_high=high)
    action = planner.plan(cost_fn)        # (A,) numpy; the plan is kept for the warm start
    planner.reset()                       # at episode start

Infeasible samples: a cost that is not finite (``+inf``, ``-inf`` or NaN) marks its sequence
infeasible. Infeasible sequences never refit the distribution (no CEM elite, zero MPPI weight);
a round where every sample is infeasible keeps the previous mean and std, so the planned action
is always finite. ``plan(..., return_info=True)`` reports ``infeasible_counts`` (per round) and
``all_infeasible`` (no feasible sample in any round: the plan is the initial mean).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

CostFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class PlannerConfig:
    """Knobs of the sampling planners (names as in TD-MPC2).

    iterations:  optimisation rounds per call of ``plan``.
    num_samples: action sequences sampled (and costed, batched) per round.
    num_elites:  lowest-cost sequences that refit the sampling distribution (CEM; MPPI
                 weights all samples when ``num_elites >= num_samples``, else only the elites).
    horizon:     length of the planned action sequence (world-model steps looked ahead).
    min_std:     lower clamp of the per-dimension sampling std (normalised units).
    max_std:     initial std and its upper clamp (normalised units).
    temperature: MPPI softmax temperature over costs, ``w ∝ exp(-(c - c_min) / temperature)``,
                 after costs are divided by their spread (so it is scale-free); unused by CEM.
    warm_start:  start each call from the previous mean shifted one step (last step repeated).
    seed:        seed of the planner's own random generator (reproducible episodes).
    """

    iterations: int = 6
    num_samples: int = 64
    num_elites: int = 8
    horizon: int = 5
    min_std: float = 0.05
    max_std: float = 2.0
    temperature: float = 0.5
    warm_start: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "num_samples", "num_elites", "horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"planner.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_elites > self.num_samples:
            raise ValueError(f"planner.num_elites ({self.num_elites}) must be <= num_samples ({self.num_samples})")
        if not (0 < self.min_std <= self.max_std and math.isfinite(self.max_std)):
            raise ValueError(f"need 0 < planner.min_std <= planner.max_std < inf, got {self.min_std}, "
                             f"{self.max_std}")
        if not self.temperature > 0:  # also rejects NaN (its weights would all be NaN)
            raise ValueError(f"planner.temperature must be > 0, got {self.temperature}")


class SamplingPlanner:
    """Gaussian sampling planner over action sequences; subclasses define ``_refit``."""

    name = "base"

    def __init__(self, cfg: PlannerConfig, action_low, action_high) -> None:
        self.cfg = cfg
        self.low = torch.as_tensor(np.asarray(action_low, dtype=np.float32))    # (A,)
        self.high = torch.as_tensor(np.asarray(action_high, dtype=np.float32))  # (A,)
        if self.low.shape != self.high.shape or self.low.ndim != 1:
            raise ValueError(f"action_low/high must be 1-D of equal length, got {tuple(self.low.shape)}, {tuple(self.high.shape)}")
        if not bool((self.high > self.low).all()):
            raise ValueError("every action_high must exceed action_low")
        self.action_dim = int(self.low.numel())
        self.mid = (self.high + self.low) / 2
        self.half = (self.high - self.low) / 2
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.reset()

    def reset(self) -> None:
        """Forget the warm start (call at the start of each episode)."""
        self.prev_mean: torch.Tensor | None = None  # (horizon, A) normalised

    def initial_mean(self) -> torch.Tensor:
        """(horizon, A) normalised: previous plan shifted by one step, or zeros (mid-range)."""
        H, A = self.cfg.horizon, self.action_dim
        if self.cfg.warm_start and self.prev_mean is not None:
            return torch.cat([self.prev_mean[1:], self.prev_mean[-1:]], dim=0)
        return torch.zeros(H, A)

    def to_actions(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised [-1,1] -> action units (bounds enforced by the clamp before)."""
        return self.mid + z * self.half

    def plan(self, cost_fn: CostFn, return_info: bool = False):
        """Optimise the sequence; return its first action (A,) as numpy (and info if asked).

        info: ``best_cost`` (inf when nothing was feasible), ``best_plan`` (H,A), ``mean_plan``
        (H,A), ``cost_history`` (lowest cost per round, inf for an all-infeasible round),
        ``infeasible_counts`` (non-finite costs per round) and ``all_infeasible`` (bool).
        Raises ValueError when ``cost_fn`` returns other than ``num_samples`` costs."""
        cfg = self.cfg
        mean = self.initial_mean()                                  # (H, A)
        std = torch.full_like(mean, cfg.max_std)                    # (H, A)
        best_cost, best_z = float("inf"), mean.clone()
        history, infeasible = [], []
        for _ in range(cfg.iterations):
            eps = torch.randn((cfg.num_samples, *mean.shape), generator=self.gen)
            z = (mean + std * eps).clamp(-1, 1)                     # (S, H, A)
            z[0] = mean.clamp(-1, 1)                                # always re-evaluate the mean
            costs = torch.as_tensor(cost_fn(self.to_actions(z))).detach().double().reshape(-1)  # (S,)
            if costs.numel() != cfg.num_samples:
                raise ValueError(f"cost_fn returned {costs.numel()} costs for {cfg.num_samples} sequences")
            feasible = torch.isfinite(costs)                        # (S,) inf / NaN: infeasible
            infeasible.append(int((~feasible).sum()))
            if not bool(feasible.any()):                            # keep mean and std
                history.append(float("inf"))
                continue
            z, costs = z[feasible], costs[feasible]
            i = int(costs.argmin())
            if float(costs[i]) < best_cost:
                best_cost, best_z = float(costs[i]), z[i].clone()
            mean, std = self._refit(z, costs)
            std = std.clamp(cfg.min_std, cfg.max_std)
            history.append(float(costs.min()))
        self.prev_mean = mean
        first = self.to_actions(mean[0].clamp(-1, 1)).numpy()
        if return_info:
            return first, {"best_cost": best_cost, "best_plan": self.to_actions(best_z).numpy(),
                           "mean_plan": self.to_actions(mean.clamp(-1, 1)).numpy(), "cost_history": history,
                           "infeasible_counts": infeasible,
                           "all_infeasible": all(n == cfg.num_samples for n in infeasible)}
        return first

    def _refit(self, z: torch.Tensor, costs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """New (mean, std), each (H, A), from the K >= 1 feasible samples z (K, H, A) and their
        finite costs (K,) float64; K may be below ``num_elites``."""
        raise NotImplementedError


def weighted_moments(z: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (each (H,A)) of samples z (K,H,A) under weights w (K,), w >= 0 with a positive
    sum. The std is the weighted population std: 0 (not NaN) for a single sample."""
    w = (w / w.sum()).to(z.dtype)
    mean = (w[:, None, None] * z).sum(0)
    var = (w[:, None, None] * (z - mean) ** 2).sum(0)
    return mean, var.sqrt()
