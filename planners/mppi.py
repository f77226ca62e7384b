"""Model-predictive path integral (MPPI) over action sequences.

Each round: sample sequences from N(mean, std), cost them in one batch, and refit mean and
std as averages weighted by ``exp(-(c - c_min) / (temperature * spread))`` where ``spread``
is the cost range of the weighted set (so the temperature is scale-free). With
``num_elites < num_samples`` only the elites are weighted (TD-MPC2's variant); with
``num_elites == num_samples`` every sample is (classic MPPI). Samples with a non-finite
cost are infeasible and get weight 0 (see `planners.base`)::

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
        """Weighted moments of the ``num_elites`` cheapest of the K feasible samples (all K when
        fewer are feasible). Weights in float64 with the temperature applied last, so a tiny
        temperature or a huge cost range underflows to 0 instead of giving NaN; the cheapest
        sample always has weight 1."""
        k = min(self.cfg.num_elites, len(costs))
        idx = torch.topk(-costs, k).indices                           # (E,)
        c = costs[idx].double()
        if not bool(torch.isfinite(c.max() - c.min())):               # float64 range overflowed
            c = c / c.abs().max()
        spread = (c.max() - c.min()).clamp_min(1e-8)
        w = torch.exp(-((c - c.min()) / spread) / self.cfg.temperature)  # (E,) in [0, 1]
        return weighted_moments(z[idx], w)
