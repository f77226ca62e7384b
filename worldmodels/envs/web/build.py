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
``clean`` mode; the builder does not import the task layer), ``site, family, episode, step``,
and for a learned policy / value model (issue #22) ``agent`` (``"random"``/``"scripted"``),
``noise``, ``seed`` (the episode's), ``success`` (the task check right after this step),
``episode_success`` and ``episode_steps`` (:func:`.agents.run_episode`).

Resume: each finished episode is cached as ``out/.episodes/<site>__<family>/<i>.json``
(written atomically as it finishes, next to ``out/.episodes/config.json``), so re-running the
same config plays only the missing episodes. A different config in the same ``out`` is an
error naming the fields that differ, unless ``overwrite`` (``--overwrite``), which deletes the
cache first and plays everything again. ``workers`` may differ between runs (it does not change an episode).

Deduplication: within ``train.json`` a record whose (observation, current_action,
next_state_acctree) equals an earlier one is dropped (meta.json ``dedup.train_removed``);
``test.json`` and ``test_family.json`` are never deduplicated against train: their records that
also occur in train are counted instead (``dedup.test_overlap``, ``dedup.test_family_overlap``).

The sites' servers listen on random ports; every ``http://127.0.0.1:<port>`` origin in urls,
observations and actions is replaced by ``http://localhost:<site>`` (:func:`fixed_origin`) so
the same config gives identical record files (only meta.json's ``build`` timings differ).

Files written to ``out``: ``train.json`` (episodes ``i % test_every != 0`` of the families not
held out), ``test.json`` (the others), ``test_family.json`` (every episode of
``test_family``, in no other file), ``meta.json`` (config, counts, per family: episodes, steps,
records, success rates overall / scripted / per agent and noise level, share of unchanged
transitions; dedup counts; ``build``: seconds and steps/s over the runs that played episodes,
each run in ``runs``, this one in ``this_run``). Files are JSON arrays, written atomically.
"""

from __future__ import annotations

import json
import re
import shutil
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
            scripted agent (:data:`.scripts.SCRIPTS`: all ten). A family without a script would
            run only random agents.
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
        overwrite: delete the episodes cached in ``out`` and play every episode again (also
            allowed when ``out`` holds another config's build; module docstring, "Resume").
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
    overwrite: bool = False

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


#: Config fields that do not change an episode or the files: not compared on resume.
_RUN_ONLY = ("out", "workers", "overwrite")
#: Step fields copied into every record as they are.
_STEP_FIELDS = ("agent", "noise", "seed", "success", "episode_success", "episode_steps")


def _record(step: dict, site: str, family: str, episode: int, k: int, annotate) -> tuple[dict, bool]:
    fx = lambda t: fixed_origin(t, site)  # noqa: E731
    obs, nxt, action = fx(step["observation"]), fx(step["next_observation"]), fx(step["action"])
    gold, unchanged = annotate(obs, nxt, action)
    return {"objective": step["objective"], "url": fx(step["url"]),
            "previous_actions": [fx(a) for a in step["previous_actions"]], "observation": obs,
            "current_action": action, "next_state_acctree": nxt, **gold, "site": site,
            "family": family, "episode": episode, "step": k,
            **{f: step[f] for f in _STEP_FIELDS}}, unchanged


def _episode_cache(cfg: WebDataConfig) -> Path:
    """``out/.episodes`` checked against (or stamped with) ``cfg``; RuntimeError naming the
    differing fields when it holds another config's episodes; ``cfg.overwrite`` deletes it."""
    out = Path(cfg.out)
    cache, want = out / ".episodes", {k: v for k, v in asdict(cfg).items() if k not in _RUN_ONLY}
    stamp = cache / "config.json"
    old = None
    if stamp.exists():
        old = json.loads(stamp.read_text())
    elif (out / "meta.json").exists():  # a finished build without a cache
        old = {k: v for k, v in json.loads((out / "meta.json").read_text()).get("config", {}).items()
               if k not in _RUN_ONLY}
    if cfg.overwrite:
        shutil.rmtree(cache, ignore_errors=True)
    elif old is not None and old != want:
        diff = [f"{k}: {old.get(k)!r} -> {want.get(k)!r}" for k in sorted(set(old) | set(want))
                if old.get(k) != want.get(k)]
        raise RuntimeError(f"{out} holds a web dataset of a different config ({'; '.join(diff)}); "
                           "pass --overwrite (overwrite=true) to rebuild it, or another --out")
    atomic_write(stamp, lambda f: json.dump(want, f, indent=1), text=True)
    return cache


def _cache_path(cache: Path, name: str, index: int) -> Path:
    return cache / name.replace("/", "__") / f"{index}.json"


def _play(cfg: WebDataConfig, cache: Path, progress: bool, chromium: str | None) -> dict:
    """Play the episodes missing from ``cache`` (each cached as it finishes); build stats."""
    from tqdm import tqdm

    from .agents import run_parallel
    from .browser import find_chromium

    plan = [(name, i) for name in cfg.families for i in range(cfg.episodes_per_family)]
    todo = [(name, i) for name, i in plan if not _cache_path(cache, name, i).exists()]
    bar = tqdm(total=len(plan), initial=len(plan) - len(todo), desc="web episodes", unit="ep",
               disable=not progress)
    played = {"episodes_run": len(todo), "episodes_cached": len(plan) - len(todo), "steps_run": 0}

    def done(k: int, ep: dict) -> None:  # called under run_parallel's lock
        name, i = todo[k]
        atomic_write(_cache_path(cache, name, i), lambda f: json.dump(ep, f), text=True)
        played["steps_run"] += len(ep["steps"])
        bar.update(1)

    t0 = time.perf_counter()
    if todo:
        run_parallel([episode_plan(cfg, name, i) for name, i in todo], workers=cfg.workers,
                     chromium=chromium or find_chromium(), on_result=done)
    bar.close()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, **played,
            "steps_per_s": played["steps_run"] / seconds if todo and seconds else None}


def build_web_dataset(cfg: WebDataConfig, annotate, progress: bool = True,
                      chromium: str | None = None) -> dict:
    """Run the episodes (resuming from ``out/.episodes``) and write the split files and
    meta.json into ``cfg.out``; the meta dict. ``annotate(observation, next_observation,
    action) -> (gold record fields, unchanged)``, e.g. :func:`worldmodels.tasks.web_diff.gold_fields`.

    RuntimeError (:data:`.browser.INSTALL_HINT`) when no Chromium is found, or when ``out``
    holds another config's episodes (without ``overwrite``); ImportError when Playwright is
    missing."""
    cache = _episode_cache(cfg)
    this = _play(cfg, cache, progress, chromium)
    runs = _earlier_runs(Path(cfg.out)) if this["episodes_cached"] else []
    runs += [this] if this["episodes_run"] else []
    seconds, steps = sum(r["seconds"] for r in runs), sum(r["steps_run"] for r in runs)
    build = {"seconds": seconds, "steps_per_s": steps / seconds if seconds else None,
             "steps_run": steps, "this_run": this, "runs": runs}
    splits: dict[str, list] = {k: [] for k in SPLIT_FILES}
    per_family, n_steps, seen = {}, 0, set()
    dedup = {"key": "(observation, current_action, next_state_acctree)", "train_removed": 0,
             "test_overlap": 0, "test_family_overlap": 0}
    held: list = []  # (split, record) of test / test_family, compared with train at the end
    for name in cfg.families:
        results = [json.loads(_cache_path(cache, name, i).read_text())
                   for i in range(cfg.episodes_per_family)]
        steps_n = unchanged = written = removed = 0
        for i, ep in enumerate(results):
            split = ("test_family" if name == cfg.test_family else
                     "test" if i % cfg.test_every == 0 else "train")
            for k, step in enumerate(ep["steps"]):
                rec, same = _record(step, ep["site"], ep["family"], i, k, annotate)
                unchanged += same
                key = (rec["observation"], rec["current_action"], rec["next_state_acctree"])
                if split == "train":
                    if key in seen:
                        removed += 1
                        continue
                    seen.add(key)
                else:
                    held.append((split, key))
                splits[split].append(rec)
                written += 1
            steps_n += len(ep["steps"])
        n_steps += steps_n
        dedup["train_removed"] += removed
        per_family[name] = _family_stats(results, steps_n, written, removed, unchanged)
    for split, key in held:
        dedup[f"{split}_overlap"] += key in seen
    for split, recs in splits.items():
        atomic_write(Path(cfg.out) / SPLIT_FILES[split],
                     lambda f, r=recs: json.dump(r, f, indent=1), text=True)
    total_unchanged = sum((v["unchanged_share"] or 0) * v["steps"] for v in per_family.values())
    meta = {"config": asdict(cfg), "files": SPLIT_FILES,
            "counts": {k: len(v) for k, v in splits.items()},
            "transitions": sum(len(v) for v in splits.values()), "steps": n_steps,
            "families": per_family, "dedup": dedup,
            "unchanged_share": total_unchanged / n_steps if n_steps else None,
            "origin": "http://127.0.0.1:<port> replaced by http://localhost:<site>",
            "build": build}
    atomic_write(Path(cfg.out) / "meta.json", lambda f: json.dump(meta, f, indent=1), text=True)
    return meta


def _earlier_runs(out: Path) -> list[dict]:
    """The ``build.runs`` of the meta.json a resumed build leaves in ``out`` ([] when none)."""
    try:
        return list(json.loads((out / "meta.json").read_text())["build"]["runs"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _family_stats(results: list[dict], steps: int, written: int, removed: int,
                  unchanged: int) -> dict:
    """Per-family meta: episodes, steps played, records written (``transitions``), duplicates
    removed from train, success rates (all, scripted, per agent: ``"random"`` or the noise)."""
    by_agent: dict[str, list] = {}
    for r in results:
        by_agent.setdefault("random" if r["agent"] == "random" else f"noise {r['noise']}",
                            []).append(r["success"])
    return {"episodes": len(results), "steps": steps, "transitions": written,
            "train_duplicates_removed": removed,
            "success_rate": sum(r["success"] for r in results) / len(results),
            "scripted_success_rate": _rate([r["success"] for r in results
                                            if r["agent"] != "random"]),
            "success_by_agent": {k: {"episodes": len(v), "success_rate": _rate(v)}
                                 for k, v in sorted(by_agent.items())},
            "mean_steps": steps / len(results),
            "unchanged_share": unchanged / steps if steps else None}


def _rate(flags: list) -> float | None:
    return sum(flags) / len(flags) if flags else None
