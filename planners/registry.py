"""Planners by name (lazy imports): ``make_planner("cem", cfg, low, high)``."""

from __future__ import annotations

import importlib

PLANNERS = {"cem": "planners.cem:CEM", "mppi": "planners.mppi:MPPI"}


def make_planner(name: str, cfg, action_low, action_high):
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; choose one of {sorted(PLANNERS)}")
    mod, cls = PLANNERS[name].split(":")
    return getattr(importlib.import_module(mod), cls)(cfg, action_low, action_high)
