"""The parts of the MPC web agent (:mod:`planners.web_agent`) behind three small interfaces.

    policy.propose(state, n, rng)        -> n raw action strings (may be invalid or unparseable)
    world_model.predict(state, actions)  -> the predicted next tree text, one per action
    value.values(objective, states)      -> a value in [0, 1] per (predicted) state

An :class:`AgentState` is what the agent knows at a step (reference ``language.md`` §1.6: the
objective, the url, the WebArena accessibility-tree text and the previous actions). A component
that must know the episode (the oracle replays it, the scripted policy reads the task's
parameters) also has ``begin_episode(episode: EpisodeInfo)``; the loop calls it at reset when
present. A component may set ``last_info`` (a JSON-able dict) after each call; the loop logs it.

Implemented here: :class:`RandomPolicy` (uniform random valid action, the baseline),
:class:`ScriptedPolicy` (the site's scripted agent as a deterministic policy, for tests and as
a "good policy" reference), :class:`OracleWorldModel` and :class:`OracleValue` (the true site,
see their docstrings for the exact method and its cost); a trained web world model directory is
:class:`planners.web_world_model.LearnedWebWorldModel`. The learned policy and value model are
``planners.web_learned`` (another module, same interfaces); :func:`load_component` resolves
command-line names to components.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from worldmodels.envs.web.actions import ActionError, format_action, parse_action
from worldmodels.envs.web.agents import RandomAgent, ScriptedAgent, page_url

__all__ = ["AgentState", "EpisodeInfo", "Policy", "WebWorldModel", "ValueFunction",
           "RandomPolicy", "ScriptedPolicy", "OracleWorldModel", "OracleValue", "next_state",
           "load_component"]


@dataclass(frozen=True)
class AgentState:
    """What the agent knows at a step.

    objective: the task's instruction. url: the page's URL. observation: the WebArena
    accessibility-tree text (real, or predicted by a world model). previous_actions: the action
    strings executed so far in this episode (invalid ones included: they were tried), oldest
    first. site, family: the local site and task family (``worldmodels.envs.web.tasks``).
    """

    objective: str
    url: str
    observation: str
    previous_actions: tuple[str, ...]
    site: str
    family: str


@dataclass(frozen=True)
class EpisodeInfo:
    """The episode a component is told about at reset (``begin_episode``): ``site``, ``family``,
    ``seed`` (the env's reset seed), ``origin`` (the real site's base URL, e.g.
    ``http://127.0.0.1:41234``; goto actions and tree URLs carry it) and ``task`` (the env's
    ``worldmodels.envs.web.tasks.WebTask``: its check is the oracle's; a learned component must
    not read it)."""

    site: str
    family: str
    seed: int
    origin: str
    task: Any = None


class Policy(Protocol):
    def propose(self, state: AgentState, n: int, rng: random.Random) -> list[str]: ...


class WebWorldModel(Protocol):
    def predict(self, state: AgentState, actions: list[str]) -> list[str]: ...


class ValueFunction(Protocol):
    def values(self, objective: str, states: list[AgentState]) -> list[float]: ...


@runtime_checkable
class EpisodeAware(Protocol):
    def begin_episode(self, episode: EpisodeInfo) -> None: ...


def next_state(state: AgentState, action: str, tree: str) -> AgentState:
    """The state after ``action`` when the page becomes ``tree`` (its url from the tree's
    RootWebArea line, else the current url)."""
    return replace(state, observation=tree, url=page_url(tree) or state.url,
                   previous_actions=(*state.previous_actions, action))


# ---- policies ---------------------------------------------------------------------------------

def _canonical(action: str) -> str:
    a = parse_action(action)
    return action if isinstance(a, ActionError) else format_action(a)


class RandomPolicy:
    """``n`` uniform random valid actions of the state's tree, drawn as
    :class:`worldmodels.envs.web.agents.RandomAgent` draws them (click a clickable, type into a
    text field, scroll up/down, go_back), from the caller's ``rng``."""

    def propose(self, state: AgentState, n: int, rng: random.Random) -> list[str]:
        agent = RandomAgent()
        agent.rng = rng
        return [agent.act(state.observation) for _ in range(n)]


class ScriptedPolicy:
    """The family's scripted agent (:class:`~worldmodels.envs.web.agents.ScriptedAgent`) as a
    policy: ``n`` draws, each the script's action, or with probability ``noise`` a random valid
    one (from ``rng``). Reads the task's parameters (``begin_episode``), so it is a reference
    policy, not a learned one.

    A script keeps per-episode notes (e.g. "voted"). Each draw starts from the notes as they
    stood after the actions really executed (``state.previous_actions``), so proposing an action
    that is then not executed never changes what the script believes happened.
    """

    def __init__(self, noise: float = 0.0):
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"ScriptedPolicy noise must be in [0, 1], got {noise}")
        self.noise, self.agent, self.task = noise, None, None
        self._notes: dict[tuple[str, ...], dict] = {}

    def begin_episode(self, episode: EpisodeInfo) -> None:
        if episode.task is None:
            raise ValueError("ScriptedPolicy needs the episode's task (EpisodeInfo.task)")
        self.agent = ScriptedAgent(episode.site, episode.family, self.noise)
        self.task, self._notes = episode.task, {(): {}}

    def _notes_at(self, prefix: tuple[str, ...]) -> dict:
        while prefix not in self._notes:  # an action the script did not propose: keep its notes
            prefix = prefix[:-1]
        return self._notes[prefix]

    def propose(self, state: AgentState, n: int, rng: random.Random) -> list[str]:
        import copy

        if self.agent is None:
            raise RuntimeError("ScriptedPolicy.propose before begin_episode")
        self.agent.random.rng = rng
        prefix, out = tuple(state.previous_actions), []
        base = self._notes_at(prefix)
        for _ in range(n):
            self.agent.memory = copy.deepcopy(base)
            a = self.agent.act(state.observation, self.task, list(prefix))
            self._notes.setdefault((*prefix, _canonical(a)), self.agent.memory)
            out.append(a)
        return out


# ---- the true site as world model and value ---------------------------------------------------

class OracleWorldModel:
    """The true site as the world model: each candidate is executed on a *second*
    :class:`~worldmodels.envs.web.browser.WebEnv` (its own Chromium, server and SQLite file)
    brought to the real episode's state by replaying it, and the tree it then shows is the
    prediction.

    Method: ``reset(site, seed, family)`` then the episode's executed actions
    (``state.previous_actions``), then the candidate; observe. Exact because a reset with the
    same seed reseeds the database and opens a fresh browser context, and the sites and tree
    ids are deterministic (tests/web_browser: same seed, same trees and ids). The two servers
    listen on different ports, so the real origin is rewritten to this env's origin in actions
    and back in trees (a plain string replacement of ``http://127.0.0.1:<port>``). Playwright's
    sync API allows one instance per thread, so this env lives in a worker thread of its own
    (every call is handed to it), next to the real env in the caller's thread.

    Cost per step with B candidates: B replays of ``1 + len(previous_actions)`` browser steps
    plus B candidate steps (one replay is saved when the env already stands at the prefix:
    candidates are executed last-to-first, so this happens whenever the first, most frequent,
    candidate is the one executed). ``last_info`` reports ``replays``,
    ``browser_steps``, ``browser_s`` and ``true_success`` (action -> the task check after it) of
    the last call. ``outcomes`` maps
    ``previous_actions + (action,)`` to ``{"success", "valid", "done", "tree"}`` (the task check
    after the candidate), which :class:`OracleValue` reads.
    """

    def __init__(self, chromium: str | None = None, settle_s: float = 0.1):
        self.chromium, self.settle_s = chromium, settle_s
        self.env = None
        self._thread = None  # Playwright's sync API: one per thread, so this env has its own
        self.episode: EpisodeInfo | None = None
        self._at: tuple[str, ...] | None = None
        self.outcomes: dict[tuple[str, ...], dict] = {}
        self.last_info: dict = {}

    def begin_episode(self, episode: EpisodeInfo) -> None:
        self.episode, self._at, self.outcomes = episode, None, {}

    def _env(self):
        if self.env is None:
            from worldmodels.envs.web.browser import WebEnv
            self.env = WebEnv(self.chromium, settle_s=self.settle_s)
        return self.env

    def _to_oracle(self, text: str) -> str:
        return text.replace(self.episode.origin, self.env.server.url)

    def _to_real(self, text: str) -> str:
        return text.replace(self.env.server.url, self.episode.origin)

    def _go_to(self, prefix: tuple[str, ...], info: dict) -> None:
        if self._at == prefix:
            return
        ep = self.episode
        self._env().reset(ep.site, ep.seed, ep.family)
        for a in prefix:
            self.env.step(self._to_oracle(a))
        info["replays"] += 1
        info["browser_steps"] += 1 + len(prefix)
        self._at = prefix

    def script_to_go(self, actions: tuple[str, ...], horizon: int) -> dict:
        """Steps the family's scripted agent (noise 0) needs from the state after ``actions``
        until the task check holds (``{"steps": k or None, "browser_steps"}``; None: not within
        ``horizon`` or it stopped first). Runs on this env (moving it off the episode)."""
        return self._run(self._script_to_go, tuple(actions), horizon)

    def _script_to_go(self, actions: tuple[str, ...], horizon: int) -> dict:
        info = {"replays": 0, "browser_steps": 0}
        self._go_to(actions, info)
        ep, env = self.episode, self.env
        agent = ScriptedAgent(ep.site, ep.family, 0.0, seed=ep.seed)
        history, obs = [self._to_oracle(a) for a in actions], env.observation
        self._at = None
        for k in range(1, horizon + 1):
            a = agent.act(obs, env.task, history)
            obs, step = env.step(a)
            history.append(a)
            info["browser_steps"] += 1
            if env.success():
                return {"steps": k, **info}
            if step["done"]:
                break
        return {"steps": None, **info}

    def outcome(self, state: AgentState, action: str) -> dict:
        """The true outcome of ``action`` in ``state`` (cached per action sequence)."""
        key = (*state.previous_actions, action)
        if key not in self.outcomes:
            self.predict(state, [action])
        return self.outcomes[key]

    def _run(self, fn, *args):
        if self._thread is None:
            from concurrent.futures import ThreadPoolExecutor
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="oracle-web-env")
        return self._thread.submit(fn, *args).result()

    def predict(self, state: AgentState, actions: list[str]) -> list[str]:
        if self.episode is None:
            raise RuntimeError("OracleWorldModel.predict before begin_episode")
        return self._run(self._predict, state, list(actions))

    def _predict(self, state: AgentState, actions: list[str]) -> list[str]:
        t0 = time.perf_counter()
        info = {"replays": 0, "browser_steps": 0}
        prefix = tuple(state.previous_actions)
        for a in reversed(actions):  # the first (most frequent) last: often the one executed,
            key = (*prefix, a)       # and then the next step needs no replay
            if key not in self.outcomes:
                self._go_to(prefix, info)
                obs, step = self.env.step(self._to_oracle(a))
                info["browser_steps"] += 1
                self._at = key
                self.outcomes[key] = {"success": self.env.success(), "valid": step["valid"],
                                      "done": step["done"], "tree": self._to_real(obs)}
        trees = [self.outcomes[(*prefix, a)]["tree"] for a in actions]
        self.last_info = {**info, "browser_s": round(time.perf_counter() - t0, 3),
                          "true_success": {a: self.outcomes[(*prefix, a)]["success"]
                                           for a in actions}}
        return trees

    def close(self) -> None:
        """Close this env's browser and servers, and its thread (idempotent)."""
        if self.env is not None:
            self._run(self.env.close)
            self.env = None
        if self._thread is not None:
            self._thread.shutdown()
            self._thread = None


class OracleValue:
    """The task check on the true site after the state's last action: 1.0 when it holds, else
    0.0, or with ``gamma`` set, ``gamma**k`` when the family's scripted agent (noise 0) reaches
    success ``k`` steps later within ``horizon`` (0.0 otherwise): a Monte-Carlo success-to-go,
    the label the learned value model is trained on (``worldmodels.tasks.web_value``).

    The value of a predicted state is that of the action's *true* outcome: the state's
    ``previous_actions`` are replayed on the true site by ``oracle`` (an
    :class:`OracleWorldModel`; share the one used as the world model so its executions are
    reused), so the predicted tree itself is not read. It bounds what a value function can do
    for the agent. Cost with ``gamma``: up to ``horizon`` extra browser steps and one replay per
    scored state (cached per action sequence; ``last_info["browser_steps"]``).
    """

    def __init__(self, oracle: OracleWorldModel, gamma: float | None = None, horizon: int = 10):
        if gamma is not None and not 0.0 < gamma < 1.0:
            raise ValueError(f"OracleValue gamma must be in (0, 1) or None, got {gamma}")
        if horizon < 1:
            raise ValueError(f"OracleValue horizon must be >= 1, got {horizon}")
        self.oracle, self.gamma, self.horizon = oracle, gamma, horizon
        self._cache: dict[tuple[str, ...], float] = {}
        self.last_info: dict = {}

    def begin_episode(self, episode: EpisodeInfo) -> None:
        if self.oracle.episode is not episode:
            self.oracle.begin_episode(episode)
        self._cache = {}

    def _value(self, s: AgentState, info: dict) -> float:
        key = tuple(s.previous_actions)
        if key not in self._cache:
            parent = replace(s, previous_actions=key[:-1])
            if self.oracle.outcome(parent, key[-1])["success"]:
                self._cache[key] = 1.0
            elif self.gamma is None:
                self._cache[key] = 0.0
            else:
                run = self.oracle.script_to_go(key, self.horizon)
                info["browser_steps"] += run["browser_steps"]
                self._cache[key] = 0.0 if run["steps"] is None else self.gamma ** run["steps"]
        return self._cache[key]

    def values(self, objective: str, states: list[AgentState]) -> list[float]:
        info = {"browser_steps": 0}
        out = []
        for s in states:
            if not s.previous_actions:
                raise ValueError("OracleValue scores states after an action (previous_actions "
                                 "is empty)")
            out.append(self._value(s, info))
        self.last_info = info
        return out


# ---- command-line names -> components ---------------------------------------------------------

def _learned(name: str):
    import importlib

    for mod in ("planners.web_learned", "worldmodels.planners.web_learned"):
        try:
            return getattr(importlib.import_module(mod), name)
        except ModuleNotFoundError:
            continue
    raise ValueError(f"a learned {name} needs planners/web_learned.py, which is not installed")


def load_component(kind: str, spec: str, oracle: OracleWorldModel | None = None,
                   device: str = "cpu", options: dict | None = None):
    """The component for a command-line ``spec``.

    kind ``policy``: ``random`` | ``scripted`` | ``scripted:<noise>`` | a trained policy
    directory (``web_learned.LMPolicy``). kind ``world_model``: ``oracle`` | ``none`` (None) | a
    web world model directory. kind ``value``: ``oracle`` | ``oracle:<gamma>`` (success-to-go
    under the script) | a trained value directory (``web_learned.LearnedValue``). Any kind: ``pkg.module:factory`` (called with no argument).
    ``oracle`` shares one :class:`OracleWorldModel` between world model and value. ``options``:
    keyword arguments for a world model directory's :class:`LearnedWebWorldModel` (e.g. ``seed``,
    ``max_new_tokens``). ValueError naming the kind and the accepted forms otherwise.
    """
    import importlib
    from pathlib import Path

    forms = {"policy": "random, scripted[:noise], a policy directory",
             "world_model": "oracle, none, a web world model directory",
             "value": "oracle, oracle:<gamma>, a value model directory"}
    if kind not in forms:
        raise ValueError(f"unknown component kind {kind!r}; expected one of {sorted(forms)}")
    if kind == "policy" and spec == "random":
        return RandomPolicy()
    if kind == "policy" and (spec == "scripted" or spec.startswith("scripted:")):
        try:
            return ScriptedPolicy(float(spec.partition(":")[2] or 0.0))
        except ValueError as e:
            raise ValueError(f"--policy {spec!r}: {e}") from e
    if kind == "world_model" and spec == "none":
        return None
    if kind in ("world_model", "value") and spec == "oracle":
        oracle = oracle or OracleWorldModel()
        return oracle if kind == "world_model" else OracleValue(oracle)
    if kind == "value" and spec.startswith("oracle:"):
        try:
            return OracleValue(oracle or OracleWorldModel(), float(spec.partition(":")[2]))
        except ValueError as e:
            raise ValueError(f"--value {spec!r}: expected oracle:<gamma in (0, 1)> ({e})") from e
    if ":" in spec and not Path(spec).exists():
        mod, _, attr = spec.partition(":")
        return getattr(importlib.import_module(mod), attr)()
    if Path(spec).is_dir():
        if kind == "world_model":
            from .web_world_model import LearnedWebWorldModel
            return LearnedWebWorldModel(spec, device=device, **(options or {}))
        return _learned("LMPolicy" if kind == "policy" else "LearnedValue")(spec, device=device)
    raise ValueError(f"--{kind.replace('_', '-')} {spec!r}: expected {forms[kind]} or "
                     f"pkg.module:factory (no such directory)")
