"""Pool `wm plan robot` runs and test whether a model's success rate beats a baseline's.

Small success counts (a few of 80 pushes) need a test, not a glance: each model's episodes
are pooled over the given runs, and its successes are compared with the baseline's (random
actions by default) by a one-sided Fisher exact test (H1: the model succeeds more often)::

    rows = pool_runs(["runs/plan_s7_random", "runs/plan_s7_seed30", "runs/plan_long"])
    # [{"model": "random", "successes": 0, "episodes": 80, ...},
    #  {"model": "runs/wm_skip6_motion", "successes": 5, "episodes": 80,
    #   "p_vs_baseline": 0.0293, "matched_episodes": True, ...}]

An *episode* is identified by its seed and the settings that change what happens in it
(max_steps, action_repeat, image_size). The same episode found twice for one model (a re-run)
counts once (the first run given). When the baseline (or the oracle) ran every episode the
model ran, it is scored on exactly those episodes, so both rates come from the same scenes
(``matched_episodes``); otherwise on all of its own.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

# settings that make "seed s" a different episode; planner knobs are the model's business
_EPISODE_FIELDS = ("max_steps", "action_repeat", "image_size")


def fisher_greater(k1: int, n1: int, k2: int, n2: int) -> float:
    """One-sided Fisher exact p: chance, under equal success rates, that the first group gets
    ``k1`` or more of the ``k1 + k2`` successes (scipy's ``fisher_exact(..., "greater")``)."""
    from scipy.stats import fisher_exact

    for name, k, n in (("first", k1, n1), ("second", k2, n2)):
        if not 0 <= k <= n or n < 1:
            raise ValueError(f"{name} group: need 0 <= successes <= episodes and episodes >= 1, "
                             f"got {k} of {n}")
    return float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="greater")[1])


def find_summaries(paths: list[str | Path]) -> list[Path]:
    """summary.json files: a path may be the file, a run directory or an output root."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file() and p.name == "summary.json":
            found.append(p)
        elif (p / "summary.json").is_file():
            found.append(p / "summary.json")
        elif p.is_dir():
            found.extend(sorted(p.glob("*/summary.json")))
        else:
            raise FileNotFoundError(f"{p}: not a summary.json, a `wm plan robot` run directory or "
                                    f"an output root holding them")
    if not found:
        raise FileNotFoundError(f"no summary.json under {', '.join(map(str, paths))}")
    return found


@functools.cache
def _episode_defaults() -> dict:
    """PlanRunConfig's defaults of the episode settings: summaries written before a setting
    existed ran with its default."""
    from dataclasses import fields

    from planners.mpc import PlanRunConfig

    return {f.name: f.default for f in fields(PlanRunConfig) if f.name in _EPISODE_FIELDS}


def _episode_key(summary: dict, episode: dict, path: Path) -> tuple:
    cfg = summary.get("config")
    if not isinstance(cfg, dict) or "seed" not in episode or "success" not in episode:
        raise ValueError(f"{path}: missing config or per-episode seed/success (expected a summary "
                         f"written by `wm plan robot`)")
    defaults = _episode_defaults()
    return (int(episode["seed"]),) + tuple(cfg.get(f, defaults[f]) for f in _EPISODE_FIELDS)


def pool_runs(paths: list[str | Path], baseline: str = "random", oracle: str = "oracle",
              task: str | None = None) -> list[dict]:
    """One row per (model, planner): pooled successes, rate, fraction of the oracle's rate, and
    the one-sided Fisher p against ``baseline`` (None for the baseline itself or when absent).
    ``task`` keeps only that task's runs; without it all runs must share one task."""
    only = task
    pooled: dict[tuple[str, str], dict[tuple, bool]] = {}
    duplicates: dict[tuple[str, str], int] = {}
    for path in find_summaries(paths):
        s = json.loads(path.read_text())
        if "per_episode" not in s or "task" not in s:
            raise ValueError(f"{path}: no per_episode/task fields (expected a `wm plan robot` summary)")
        if only is not None and s["task"] != only:
            continue
        if task is None:
            task = s["task"]
        elif s["task"] != task:
            raise ValueError(f"{path}: task {s['task']!r}, but earlier runs are {task!r}; pool one task "
                             f"at a time (--task)")
        group = (s["model"], s.get("planner", "?"))
        episodes = pooled.setdefault(group, {})
        for ep in s["per_episode"]:
            key = _episode_key(s, ep, path)
            if key in episodes:   # a re-run: the first run given counts (taking either would bias)
                duplicates[group] = duplicates.get(group, 0) + 1
            else:
                episodes[key] = bool(ep["success"])

    if not pooled:
        raise FileNotFoundError(f"no {only!r} runs under {', '.join(map(str, paths))}")
    base_eps = next((eps for (m, _), eps in pooled.items() if m == baseline), None)
    oracle_eps = next((eps for (m, _), eps in pooled.items() if m == oracle), None)
    rows = []
    for (model, planner), eps in pooled.items():
        k, n = sum(eps.values()), len(eps)
        row = {"task": task, "model": model, "planner": planner, "successes": k, "episodes": n,
               "success_rate": k / n, "duplicates_ignored": duplicates.get((model, planner), 0),
               "fraction_of_oracle": None, "p_vs_baseline": None, "matched_episodes": None}
        if oracle_eps:
            ko, no, _ = _on_same_episodes(oracle_eps, eps)
            row["fraction_of_oracle"] = (k / n) / (ko / no) if ko else None
        if base_eps and model != baseline:
            kb, nb, row["matched_episodes"] = _on_same_episodes(base_eps, eps)
            row["p_vs_baseline"] = fisher_greater(k, n, kb, nb)
        rows.append(row)
    return rows


def _on_same_episodes(reference: dict[tuple, bool], episodes: dict[tuple, bool]) -> tuple[int, int, bool]:
    """(successes, episodes, matched) of ``reference``: on the episodes the model ran when it
    ran them all (the same scenes, matched), otherwise over all of its own episodes."""
    if set(episodes) <= set(reference):
        return sum(reference[e] for e in episodes), len(episodes), True
    return sum(reference.values()), len(reference), False
