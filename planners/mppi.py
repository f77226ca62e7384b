"""Model-predictive path integral (MPPI) over action sequences.

Each round: sample sequences from N(mean, std), cost them in one batch, and refit mean and
std as averages weighted by ``exp(-(c - c_min) / (temperature * spread))`` where ``spread``
is the cost range of the weighted set (so the temperature is scale-free). With
``num_elites < num_samples`` only the elites are weighted (TD-MPC2's variant); with
``num_elites == num_samples`` every sample is (classic MPPI)::

    from planners.mppi import MPPI
    from planners.base import PlannerConfig
    mppi = MPPI(PlannerConfig(num_samples=64, num_elites=64, temperature=0.5), low, high)
    a0 = mppi.plan(cost_fn)
"""

from __future__ import annotations

import torch

from planners.base import PlannerConfig, SamplingPlanner, weighted_moments

__all__ = ["MPPI", "PlannerConfig"]


class MPPI(SamplingPlanner):
    name = "mppi"

    def _refit(self, z: torch.Tensor, costs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.topk(-costs, self.cfg.num_elites).indices        # (E,)
        c = costs[idx]
        finite = torch.isfinite(c)
        if not bool(finite.any()):
            return z[idx].mean(0), z[idx].std(0)
        c = torch.where(finite, c, c[finite].max())
        spread = (c.max() - c.min()).clamp_min(1e-8)
        w = torch.exp(-(c - c.min()) / (self.cfg.temperature * spread))  # (E,) in (0, 1]
        return weighted_moments(z[idx], w)
