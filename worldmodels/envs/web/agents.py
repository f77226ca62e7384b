"""Agents acting through the browser's observation text, and trajectory recording.

- :class:`ScriptedAgent`: one script per task family (:data:`.scripts.SCRIPTS`), finding
  elements by role and name in the current tree (:mod:`worldmodels.web_tree`) and emitting
  grammar strings; with probability ``noise`` a step is a random valid action instead.
- :class:`RandomAgent`: a uniformly random valid action (click a link/button, type into a text
  field, scroll, go back) each step; never stops early.
- :func:`run_episode`: records per step (objective, url, previous actions, observation, action,
  next observation, valid, error, the task check after the step, the agent and its noise, the
  episode's seed, success and length).
- :func:`run_parallel`: ``workers`` threads, each owning its own :class:`~.browser.WebEnv`
  (Playwright's sync API is bound to the thread that started it, so threads rather than a
  shared browser; each has its own Chromium process, so the work runs in parallel outside
  the GIL).
"""

from __future__ import annotations

import random
import threading

from ...web_tree import element_nodes, parse_tree
from .browser import TEXT_INPUT_ROLES, WebEnv
from .scripts import SCRIPTS, find, page_url

__all__ = ["find", "page_url", "RandomAgent", "ScriptedAgent", "SCRIPTS", "make_agent",
           "run_episode", "run_parallel"]

_CLICKABLE = frozenset({"link", "button", "checkbox", "radio", "tab", "menuitem"})
_WORDS = ("hello", "red", "42", "test", "shirt", "garden")


class RandomAgent:
    """A random valid action from the current observation (``seed`` fixes the draws).
    ``kind`` ``"random"`` and ``noise`` 0.0 go into the records (:func:`run_episode`)."""

    kind = "random"
    noise = 0.0

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)

    def act(self, obs: str, task=None, history: list[str] | None = None) -> str:
        nodes = element_nodes(parse_tree(obs))
        options = [f"click [{n.id}]" for n in nodes if n.role in _CLICKABLE]
        options += [f"type [{n.id}] [{self.rng.choice(_WORDS)}] [{self.rng.randint(0, 1)}]"
                    for n in nodes if n.role in TEXT_INPUT_ROLES]
        options += ["scroll [down]", "scroll [up]", "go_back"]
        return self.rng.choice(options)


class ScriptedAgent:
    """The family's script; with probability ``noise`` (and whenever the script finds nothing
    to do) a :class:`RandomAgent` action instead. KeyError naming the scripted families."""

    kind = "scripted"

    def __init__(self, site: str, family: str, noise: float = 0.0, seed: int = 0):
        if (site, family) not in SCRIPTS:
            raise KeyError(f"no script for {site}/{family}; scripted: {sorted(SCRIPTS)}")
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        self.script, self.noise = SCRIPTS[(site, family)], noise
        self.random = RandomAgent(seed)
        self.memory: dict = {}  # the script's own notes within an episode

    def act(self, obs: str, task, history: list[str]) -> str:
        if not history:
            self.memory = {}
        if self.random.rng.random() < self.noise:
            return self.random.act(obs)
        action = self.script(obs, task, history, self.memory)
        return action if action is not None else self.random.act(obs)


def run_episode(env: WebEnv, agent, site: str, seed: int, family: str,
                max_steps: int = 15) -> dict:
    """One episode: ``{"site", "family", "seed", "objective", "agent", "noise", "steps": [...],
    "success", "stopped"}``. Each step: ``{"objective", "url", "previous_actions",
    "observation", "action", "next_observation", "valid", "error", "success", "agent", "noise",
    "seed", "episode_success", "episode_steps"}`` where ``success`` is the task check right
    after the step (``env.success()``), ``episode_success`` the check at the end (so the last
    step's ``success`` equals it), ``episode_steps`` the episode's length, ``agent``
    ``"random"``/``"scripted"`` and ``noise`` the scripted agent's noise (0.0 for random).
    Ends at ``stop`` or after ``max_steps`` steps."""
    obs = env.reset(site, seed, family)
    kind, noise = getattr(agent, "kind", type(agent).__name__), float(getattr(agent, "noise", 0.0))
    history: list[str] = []
    steps, stopped = [], False
    for _ in range(max_steps):
        action = agent.act(obs, env.task, history)
        url = env.page.url
        nxt, info = env.step(action)
        steps.append({"objective": env.task.objective, "url": url,
                      "previous_actions": list(history), "observation": obs, "action": action,
                      "next_observation": nxt, "valid": info["valid"], "error": info["error"],
                      "success": env.success(), "agent": kind, "noise": noise, "seed": seed})
        history.append(action)
        obs = nxt
        if info["done"]:
            stopped = True
            break
    success = env.success()
    for step in steps:
        step.update(episode_success=success, episode_steps=len(steps))
    return {"site": site, "family": family, "seed": seed, "objective": env.task.objective,
            "agent": kind, "noise": noise, "steps": steps, "success": success,
            "stopped": stopped}


def make_agent(job: dict):
    """The agent of a :func:`run_parallel` job: ``job["agent"]`` ``"random"`` or a noise level
    for the family's :class:`ScriptedAgent`, seeded with ``job["seed"]``."""
    kind = job.get("agent", 0.0)
    if kind == "random":
        return RandomAgent(job["seed"])
    return ScriptedAgent(job["site"], job["family"], float(kind), job["seed"])


def run_parallel(jobs: list[dict], workers: int = 2, chromium: str | None = None,
                 on_result=None) -> list[dict]:
    """Run ``jobs`` (keyword dicts for :func:`run_episode` plus ``agent``: ``"random"`` or a
    noise level for the scripted agent) on ``workers`` threads, each with its own
    :class:`WebEnv` taking the next unstarted job; results in job order (an episode's result
    does not depend on which worker ran it). ``on_result(index, result)`` is called as each
    episode finishes (one call at a time). Errors in a worker are re-raised here."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    results: list = [None] * len(jobs)
    errors: list = []
    lock = threading.Lock()
    todo = iter(range(len(jobs)))

    def work() -> None:
        try:
            with WebEnv(chromium) as env:
                while not errors:
                    with lock:
                        i = next(todo, None)
                    if i is None:
                        return
                    job = dict(jobs[i])
                    agent = make_agent(job)
                    job.pop("agent", None)
                    results[i] = run_episode(env, agent, **job)
                    if on_result is not None:
                        with lock:
                            on_result(i, results[i])
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(min(workers, len(jobs)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
