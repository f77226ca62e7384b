"""Cross-entropy method (CEM) over action sequences.

Each round: sample ``num_samples`` sequences from N(mean, std), cost them in one batch, keep
the ``num_elites`` cheapest, refit mean and std to them (equal weights). Samples with a
non-finite cost are infeasible and never elites (see `planners.base` for the loop, the warm
start, infeasible rounds and the knobs)::

    from planners.cem import CEM
    from planners.base import PlannerConfig
    cem = CEM(PlannerConfig(iterations=6, num_samples=64, num_elites=8, horizon=5), low, high)
    a0 = cem.plan(cost_fn)
"""

from __future__ import annotations

import torch

from planners.base import PlannerConfig, SamplingPlanner, weighted_moments

__all__ = ["CEM", "PlannerConfig"]


class CEM(SamplingPlanner):
    name = "cem"

    def _refit(self, z: torch.Tensor, costs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Equal-weight moments of the ``num_elites`` cheapest of the K feasible samples (all K
        when fewer are feasible; one elite gives std 0, clamped to ``min_std`` by the caller)."""
        k = min(self.cfg.num_elites, len(costs))
        elite_idx = torch.topk(-costs, k).indices                     # (E,) cheapest
        elites = z[elite_idx]                                         # (E, H, A)
        return weighted_moments(elites, torch.ones(len(elite_idx)))
