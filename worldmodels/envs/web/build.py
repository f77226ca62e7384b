"""Build a web dataset: browser trajectories as WMA WebArena-format transitions
(``wm data build web``).

    wm data build web --config data/recipes/web_tiny.yaml

Every (site, family) in ``families`` plays ``episodes_per_family`` episodes (at most
``max_steps`` steps, ending at ``stop``) through :func:`.agents.run_parallel`; episode ``i``
draws its agent (random with probability ``random_fraction``, else the scripted agent with a
noise level from ``expert_noise``) and its seed from ``SeedSequence([seed, crc32("site/family"),
i])`` only. Each step is one record in WMA's WebArena format (``../shared/reference/language.md``
§2.5), read by :func:`worldmodels.tasks.web_data.load_webarena`: ``objective, url,
previous_actions, observation, current_action, next_state_acctree`` and the gold diff
``new_items, deleted_items, updated_items`` plus ``next_state_tao`` from the ``annotate``
function the caller passes (``wm data build web``: :func:`worldmodels.tasks.web_diff.gold_fields`,
``clean`` mode; the builder does not import the task layer), and ``site, family, episode, step``.

The sites' servers listen on random ports; every ``http://127.0.0.1:<port>`` origin in urls,
observations and actions is replaced by ``http://localhost:<site>`` (:func:`fixed_origin`) so
the same config gives identical record files (only meta.json's ``build`` timings differ).

Files written to ``out``: ``train.json`` (episodes ``i % test_every != 0`` of the families not
held out), ``test.json`` (the others), ``test_family.json`` (every episode of
``test_family``, in no other file), ``meta.json`` (config, counts, success rate per family,
share of unchanged transitions, steps/s). Files are JSON arrays, written atomically.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from worldmodels.atomic import atomic_write

from .agents import SCRIPTS
from .tasks import TASK_FAMILIES

__all__ = ["WebDataConfig", "build_web_dataset", "episode_plan", "fixed_origin", "SPLIT_FILES"]

SPLIT_FILES = {"train": "train.json", "test": "test.json", "test_family": "test_family.json"}
_ORIGIN = re.compile(r"http://127\.0\.0\.1:\d+")


def _scripted() -> list[str]:
    return [f"{s}/{f}" for s, f in sorted(SCRIPTS)]


@dataclass
class WebDataConfig:
    """Config of ``wm data build web``.

    Attributes:
        out: output folder (created).
        families: ``"site/family"`` names (:data:`.tasks.TASK_FAMILIES`); default those with a
            scripted agent (:data:`.agents.SCRIPTS`). Others run only random agents.
        test_family: a family of ``families`` held out entirely (``test_family.json`` only), or
            ``""`` for none.
        episodes_per_family: episodes each family plays.
        max_steps: steps per episode at most (an episode also ends at ``stop``).
        seed: base seed (non-negative).
        expert_noise: per-episode noise levels of the scripted agent, drawn uniformly: the
            probability that a step is a random valid action instead of the script's.
        random_fraction: probability that an episode uses the random agent.
        workers: browser threads (each its own Chromium), >= 1.
        test_every: episode ``i`` of the other families is test iff ``i % test_every == 0``.
    """

    out: str = "data/web"
    families: list[str] = field(default_factory=_scripted)
    test_family: str = ""
    episodes_per_family: int = 20
    max_steps: int = 15
    seed: int = 0
    expert_noise: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.5])
    random_fraction: float = 0.2
    workers: int = 2
    test_every: int = 5

    def __post_init__(self) -> None:
        if not self.families:
            raise ValueError("families must name at least one site/family")
        for name in self.families:
            site, _, fam = name.partition("/")
            if fam not in TASK_FAMILIES.get(site, {}):
                raise ValueError(f"families: unknown {name!r}; expected 'site/family' with one of "
                                 f"{[f'{s}/{f}' for s in TASK_FAMILIES for f in TASK_FAMILIES[s]]}")
        if len(set(self.families)) != len(self.families):
            raise ValueError(f"families lists a family twice: {self.families}")
        if self.test_family and self.test_family not in self.families:
            raise ValueError(f"test_family {self.test_family!r} is not in families {self.families}")
        if self.test_family and len(self.families) == 1:
            raise ValueError("test_family holds out every family: none is left for train")
        if self.episodes_per_family < 1:
            raise ValueError(f"episodes_per_family must be >= 1, got {self.episodes_per_family}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not self.expert_noise or not all(0.0 <= n <= 1.0 for n in self.expert_noise):
            raise ValueError(f"expert_noise must be a non-empty list of probabilities in [0,1], "
                             f"got {self.expert_noise}")
        if not 0.0 <= self.random_fraction <= 1.0:
            raise ValueError(f"random_fraction must be in [0,1], got {self.random_fraction}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.test_every < 1:
            raise ValueError(f"test_every must be >= 1, got {self.test_every}")


def episode_plan(cfg: WebDataConfig, name: str, index: int) -> dict:
    """The :func:`.agents.run_parallel` job of episode ``index`` of ``name`` ("site/family")."""
    site, family = name.split("/", 1)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, zlib.crc32(name.encode()), index]))
    scripted = (site, family) in SCRIPTS and rng.random() >= cfg.random_fraction
    agent = float(cfg.expert_noise[rng.integers(len(cfg.expert_noise))]) if scripted else "random"
    return {"site": site, "family": family, "seed": int(rng.integers(2**31)), "agent": agent,
            "max_steps": cfg.max_steps}


def fixed_origin(text: str, site: str) -> str:
    """``text`` with every ``http://127.0.0.1:<port>`` replaced by ``http://localhost:<site>``."""
    return _ORIGIN.sub(f"http://localhost:{site}", text)


def _record(step: dict, site: str, family: str, episode: int, k: int, annotate) -> tuple[dict, bool]:
    fx = lambda t: fixed_origin(t, site)  # noqa: E731
    obs, nxt, action = fx(step["observation"]), fx(step["next_observation"]), fx(step["action"])
    gold, unchanged = annotate(obs, nxt, action)
    return {"objective": step["objective"], "url": fx(step["url"]),
            "previous_actions": [fx(a) for a in step["previous_actions"]], "observation": obs,
            "current_action": action, "next_state_acctree": nxt, **gold, "site": site,
            "family": family, "episode": episode, "step": k}, unchanged


def build_web_dataset(cfg: WebDataConfig, annotate, progress: bool = True,
                      chromium: str | None = None) -> dict:
    """Run the episodes and write the split files and meta.json into ``cfg.out``; the meta dict.
    ``annotate(observation, next_observation, action) -> (gold record fields, unchanged)``, e.g.
    :func:`worldmodels.tasks.web_diff.gold_fields`.

    RuntimeError (:data:`.browser.INSTALL_HINT`) when no Chromium is found, ImportError when
    Playwright is missing."""
    from tqdm import tqdm

    from .agents import run_parallel
    from .browser import find_chromium

    chromium = chromium or find_chromium()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    splits: dict[str, list] = {k: [] for k in SPLIT_FILES}
    per_family, t0, n_steps = {}, time.perf_counter(), 0
    bar = tqdm(total=len(cfg.families) * cfg.episodes_per_family, desc="web episodes",
               unit="ep", disable=not progress)
    for name in cfg.families:  # one run_parallel per family: the bar advances per family
        jobs = [episode_plan(cfg, name, i) for i in range(cfg.episodes_per_family)]
        results = run_parallel(jobs, workers=cfg.workers, chromium=chromium)
        bar.update(len(jobs))
        recs_n = unchanged = 0
        for i, ep in enumerate(results):
            split = ("test_family" if name == cfg.test_family else
                     "test" if i % cfg.test_every == 0 else "train")
            for k, step in enumerate(ep["steps"]):
                rec, same = _record(step, ep["site"], ep["family"], i, k, annotate)
                unchanged += same
                splits[split].append(rec)
            recs_n += len(ep["steps"])
        n_steps += recs_n
        per_family[name] = {
            "episodes": len(results), "transitions": recs_n,
            "success_rate": sum(r["success"] for r in results) / len(results),
            "scripted_success_rate": _rate([r["success"] for r, j in zip(results, jobs, strict=True)
                                            if j["agent"] != "random"]),
            "unchanged_share": unchanged / recs_n if recs_n else None}
    bar.close()
    seconds = time.perf_counter() - t0
    for split, recs in splits.items():
        atomic_write(out / SPLIT_FILES[split], lambda f, r=recs: json.dump(r, f, indent=1), text=True)
    total_unchanged = sum((v["unchanged_share"] or 0) * v["transitions"] for v in per_family.values())
    meta = {"config": asdict(cfg), "files": SPLIT_FILES,
            "counts": {k: len(v) for k, v in splits.items()}, "transitions": n_steps,
            "families": per_family,
            "unchanged_share": total_unchanged / n_steps if n_steps else None,
            "origin": "http://127.0.0.1:<port> replaced by http://localhost:<site>",
            "build": {"seconds": seconds, "steps_per_s": n_steps / seconds if seconds else None}}
    atomic_write(out / "meta.json", lambda f: json.dump(meta, f, indent=1), text=True)
    return meta


def _rate(flags: list) -> float | None:
    return sum(flags) / len(flags) if flags else None
