"""The MPC web agent (RLVR-World ``lang_wm/webagent/agent/world_model_agent.py``, reference
``language.md`` §1.6): the policy proposes, the world model predicts, the value chooses.

Per step (:func:`plan_step`):

1. sample ``candidates`` (K, default 20) raw action strings from the policy;
2. parse each with WebArena's grammar (``worldmodels.envs.web.actions``); unparseable ones are
   dropped (logged); the rest are counted by their canonical string (``format_action``);
3. keep the ``branching`` (B, default 3) most frequent; ties go to the first proposed;
4. a ``stop`` among the kept ends the episode at once (``stop_rule="parsed"``: the parsed verb is
   ``stop``; ``"substring"``: the original's rule, ``"stop" in action_string``, which also fires on
   e.g. ``type [3] [stop it] [0]``);
5. the world model predicts each kept candidate's next tree, the value function scores each
   predicted state, and the argmax (first on ties) is executed on the real env.

Modes: ``mpc`` (the above), ``policy_vote`` (the policy alone: execute the most frequent of the K
parsed proposals, no world model or value) and ``policy_sample`` (the policy alone, one sample per
step). RLVR-World's episode limit is ``max_steps=5``; our default is 15 (as
``worldmodels.envs.web.agents.run_episode``'s) because the scripted solutions of the local sites
take up to ~14 steps (the forum's log-in takes three, then it searches the sub-forums).

Failures: an executed action that the env refuses (``info["valid"]`` False), or a step with no
parseable proposal (nothing is executed), is a failed step; ``repeating_action_failure_th``
(default 5, the original's) consecutive failed steps, or that many identical executed actions in
a row (WebArena's ``early_stop`` "repeating action" rule), end the episode.

Every step is a JSONL record (:data:`STEP_FIELDS`); an episode starts with an ``episode_start``
record and ends with ``episode_end`` (``success`` from the env's task check); each step's
``success`` is the same check right after it (older logs lack it).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from worldmodels.envs.web.actions import ActionError, format_action, parse_action
from worldmodels.envs.web.agents import page_url
from worldmodels.web_tree import parse_tree

from .web_components import AgentState, EpisodeAware, EpisodeInfo, next_state

__all__ = ["AgentConfig", "MODES", "SELECTIONS", "STOP_RULES", "STEP_FIELDS", "plan_step", "select", "run_agent_episode",
           "JsonlLog", "same_tree", "tree_delta"]

MODES = ("mpc", "policy_vote", "policy_sample")
STOP_RULES = ("parsed", "substring")
SELECTIONS = ("argmax", "weighted_vote")
#: Keys of every ``step`` record.
STEP_FIELDS = ("type", "episode", "step", "url", "observation", "previous_actions", "proposals",
               "kept", "choice", "reason", "reference_action", "next_observation", "valid",
               "error", "prediction_matched", "prediction_exact", "value_real", "success", "info",
               "timing")


@dataclass
class AgentConfig:
    """Settings of the MPC web agent.

    candidates: K, policy samples per step (RLVR-World: ``max(2*branching, 20)`` = 20).
    branching: B, most frequent parsed candidates kept and scored (RLVR-World: 3).
    max_steps: actions per episode at most (RLVR-World: 5; ours 15, see the module doc).
    stop_rule: ``parsed`` (a kept candidate whose parsed verb is ``stop``) or ``substring``
        (RLVR-World's ``"stop" in action_string``, compat).
    repeating_action_failure_th: consecutive failed steps, or identical executed actions in a
        row, that end the episode (RLVR-World/WebArena: 5).
    mode: ``mpc``, ``policy_vote`` (most frequent proposal, the policy alone) or
        ``policy_sample`` (one proposal per step, the policy alone).
    selection: how mpc mode picks among the scored candidates: ``argmax`` of the value
        (RLVR-World) or ``weighted_vote``, the argmax of count x value (the voting verifier of
        Li et al. 2023, "Making Language Models Better Reasoners with Step-Aware Verifier"): the
        vote when the values are equal, the value's argmax when the counts are; ties go to the
        first kept either way.
    seed: seed of the agent's random generator (policy sampling), combined with the episode
        seed so each episode draws its own stream.
    """

    candidates: int = 20
    branching: int = 3
    max_steps: int = 15
    stop_rule: str = "parsed"
    repeating_action_failure_th: int = 5
    mode: str = "mpc"
    selection: str = "argmax"
    seed: int = 0

    def __post_init__(self):
        for name in ("candidates", "branching", "max_steps", "repeating_action_failure_th"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"AgentConfig.{name} must be an int >= 1, got {v!r}")
        if self.stop_rule not in STOP_RULES:
            raise ValueError(f"AgentConfig.stop_rule must be one of {STOP_RULES}, got "
                             f"{self.stop_rule!r}")
        if self.mode not in MODES:
            raise ValueError(f"AgentConfig.mode must be one of {MODES}, got {self.mode!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"AgentConfig.selection must be one of {SELECTIONS}, got "
                             f"{self.selection!r}")


@dataclass
class StepDecision:
    """What :func:`plan_step` decided: ``proposals`` (each distinct proposal: ``action``
    canonical string or the raw one, ``count``, ``parsed``, ``error``), ``kept`` (B dicts with
    ``action``, ``count`` and, in mpc mode, ``predicted``, ``value``), ``choice`` (the action to
    execute, None when no proposal parsed), ``reason`` (``argmax`` | ``stop`` | ``vote`` |
    ``sample`` | ``no_candidate``) and ``timing`` (seconds per component)."""

    proposals: list[dict]
    kept: list[dict]
    choice: str | None
    reason: str
    timing: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def select(kept: list[dict], values: list[float], selection: str) -> int:
    """Index of the kept candidate mpc mode executes (``AgentConfig.selection``): ``argmax`` of
    ``values``, or ``weighted_vote``, the argmax of ``count x value``; ties go to the first kept.
    ``kept``: dicts with ``count``, ranked by count as :func:`plan_step` keeps them."""
    weight = [k["count"] if selection == "weighted_vote" else 1 for k in kept]
    return max(range(len(kept)), key=lambda i: (weight[i] * values[i], -i))


def _is_stop(action: str, stop_rule: str) -> bool:
    if stop_rule == "substring":
        return "stop" in action
    return parse_action(action).verb == "stop"


def count_proposals(raw: list[str]) -> tuple[list[dict], list[dict]]:
    """``(proposals, ranked)``: every distinct proposal with its count (unparseable ones keyed by
    their raw text, ``parsed`` False) and the parsed ones ranked by count, ties by first
    appearance (Python's sort is stable)."""
    counts: Counter = Counter()
    meta: dict[str, dict] = {}
    for r in raw:
        a = parse_action(r)
        key = repr(r) if isinstance(a, ActionError) else format_action(a)
        if key not in meta:
            meta[key] = ({"action": key, "parsed": False, "error": a.message}
                         if isinstance(a, ActionError) else {"action": key, "parsed": True,
                                                             "error": None})
        counts[key] += 1
    proposals = [{**m, "count": counts[k]} for k, m in meta.items()]
    ranked = sorted((p for p in proposals if p["parsed"]), key=lambda p: -p["count"])
    return proposals, ranked


def plan_step(state: AgentState, policy, world_model, value, cfg: AgentConfig,
              rng: random.Random) -> StepDecision:
    """One decision (module doc, steps 1-5); never executes anything. Shapes: K proposals,
    B kept; ``value`` returns one float in [0, 1] per predicted state."""
    t0 = time.perf_counter()
    raw = policy.propose(state, 1 if cfg.mode == "policy_sample" else cfg.candidates, rng)
    timing = {"policy_s": time.perf_counter() - t0}
    proposals, ranked = count_proposals(raw)
    kept = [{"action": p["action"], "count": p["count"]} for p in ranked[:cfg.branching]]
    if not kept:
        return StepDecision(proposals, kept, None, "no_candidate", timing)
    if cfg.mode != "mpc":
        return StepDecision(proposals, kept, kept[0]["action"],
                            "vote" if cfg.mode == "policy_vote" else "sample", timing)
    stop = next((k for k in kept if _is_stop(k["action"], cfg.stop_rule)), None)
    if stop is not None:  # RLVR-World executes it at once with value 1.0
        return StepDecision(proposals, kept, stop["action"], "stop", timing)
    actions = [k["action"] for k in kept]
    t0 = time.perf_counter()
    trees = world_model.predict(state, actions)
    timing["world_model_s"] = time.perf_counter() - t0
    predicted = [next_state(state, a, t) for a, t in zip(actions, trees, strict=True)]
    t0 = time.perf_counter()
    scores = [float(v) for v in value.values(state.objective, predicted)]
    timing["value_s"] = time.perf_counter() - t0
    if len(scores) != len(kept):
        raise ValueError(f"value function returned {len(scores)} values for {len(kept)} states")
    for k, tree, v in zip(kept, trees, scores, strict=True):
        k["predicted"], k["value"] = tree, v
    best = select(kept, scores, cfg.selection)
    info = {"world_model": getattr(world_model, "last_info", None),
            "value": getattr(value, "last_info", None)}
    return StepDecision(proposals, kept, kept[best]["action"], cfg.selection, timing, info)


def same_tree(a: str, b: str) -> bool:
    """Whether two trees hold the same multiset of ``(role, content)`` nodes (ids, order and
    text lines not compared; the clean diff's notion of equality, ``tasks.web_diff.same_nodes``)."""
    def bag(t):
        return Counter((n.role, n.content) for n in parse_tree(t) if n.id is not None)
    return bag(a) == bag(b)


def tree_delta(before: str, after: str, limit: int = 20) -> dict:
    """Lines of ``after`` not in ``before`` (``added``) and the reverse (``removed``), tabs
    stripped, order kept, at most ``limit`` each (for logs and ``wm webagent show``)."""
    b = Counter(x.strip() for x in before.splitlines())
    a = Counter(x.strip() for x in after.splitlines())
    added = [x for x in (a - b).elements() if x][:limit]
    removed = [x for x in (b - a).elements() if x][:limit]
    return {"added": added, "removed": removed}


class JsonlLog:
    """Appends records to a JSONL file (one ``json.dumps`` line each, flushed per record)."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("a", encoding="utf-8")

    def __call__(self, record: dict) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _begin(components, episode: EpisodeInfo) -> None:
    seen = set()
    for c in components:
        if c is not None and id(c) not in seen and isinstance(c, EpisodeAware):
            seen.add(id(c))
            c.begin_episode(episode)


def _end_reason(history: list[str], failures: int, th: int) -> str | None:
    if failures >= th:
        return "repeated_failures"
    if len(history) >= th and len(set(history[-th:])) == 1:
        return "repeated_action"
    return None


def run_agent_episode(env, policy, world_model, value, site: str, family: str, seed: int,
                      cfg: AgentConfig, log: Callable[[dict], None] | None = None,
                      reference=None, episode: str | None = None,
                      meta: dict | None = None) -> dict:
    """One episode of the agent on ``env`` (a ``WebEnv`` or anything with its ``reset``,
    ``step``, ``success``, ``task.objective`` and ``server.url``).

    ``reference``: an optional policy (e.g. ``ScriptedPolicy()``) asked once per step, for the
    log only (``reference_action``, used by the failure analysis); it never acts. ``log``
    receives the records; ``meta`` (JSON-able) is added to the ``episode_start`` record. Returns the ``episode_end`` record: ``success``, ``steps``,
    ``reason`` (``stop`` | ``max_steps`` | ``repeated_failures`` | ``repeated_action``),
    ``answer``, ``failed_steps`` and the summed ``timing``.
    """
    if cfg.mode == "mpc" and (world_model is None or value is None):
        raise ValueError("mode 'mpc' needs a world model and a value function (use mode "
                         "'policy_vote' or 'policy_sample' for the policy alone)")
    episode = episode or f"{site}/{family}/{seed}"
    log = log or (lambda record: None)
    rng = random.Random(f"{cfg.seed}:{site}:{family}:{seed}")
    ref_rng = random.Random(f"ref:{seed}")
    obs = env.reset(site, seed, family)
    info = EpisodeInfo(site, family, seed, env.server.url, env.task)
    _begin([policy, world_model, value, reference], info)
    state = AgentState(env.task.objective, page_url(obs), obs, (), site, family)
    log({"type": "episode_start", "episode": episode, "site": site, "family": family,
         "seed": seed, "objective": state.objective, "config": asdict(cfg), **(meta or {})})
    totals: Counter = Counter()
    executed: list[str] = []
    failures = failed_steps = 0
    reason, answer = "max_steps", None
    n_steps, success = 0, False
    for t in range(cfg.max_steps):
        n_steps = t + 1
        d = plan_step(state, policy, world_model, value, cfg, rng)
        ref = reference.propose(state, 1, ref_rng)[0] if reference is not None else None
        ref_parsed = parse_action(ref) if ref is not None else None
        record = {"type": "step", "episode": episode, "step": t, "url": state.url,
                  "observation": state.observation, "previous_actions": list(state.previous_actions),
                  "proposals": d.proposals, "kept": d.kept, "choice": d.choice, "reason": d.reason,
                  "reference_action": (format_action(ref_parsed) if ref_parsed is not None and
                                       not isinstance(ref_parsed, ActionError) else ref),
                  "info": d.info}
        if d.choice is None:
            nxt, step = state.observation, {"valid": False, "error": "no parseable candidate",
                                            "done": False, "answer": None}
        else:
            t0 = time.perf_counter()
            nxt, step = env.step(d.choice)
            d.timing["env_s"] = time.perf_counter() - t0
            executed.append(d.choice)
        chosen = next((k for k in d.kept if k["action"] == d.choice), {})
        record.update(next_observation=nxt, valid=step["valid"], error=step["error"],
                      prediction_matched=(same_tree(chosen["predicted"], nxt)
                                          if "predicted" in chosen else None),
                      prediction_exact=(chosen["predicted"] == nxt if "predicted" in chosen
                                        else None), value_real=None,
                      success=bool(env.success()))  # the task check after this step: value labels
        success = record["success"]
        if "predicted" in chosen and not step["done"]:
            t0 = time.perf_counter()  # the value of what really happened (failure analysis)
            real = next_state(state, d.choice, nxt)
            record["value_real"] = float(value.values(state.objective, [real])[0])
            d.timing["value_real_s"] = time.perf_counter() - t0
        record["timing"] = {k: round(v, 4) for k, v in d.timing.items()}
        totals.update(d.timing)
        log(record)
        failures = 0 if step["valid"] else failures + 1
        failed_steps += not step["valid"]
        if step["done"]:
            reason, answer = "stop", step["answer"]
            break
        if d.choice is not None:
            state = next_state(state, d.choice, nxt)
        reason = _end_reason(executed, failures, cfg.repeating_action_failure_th) or "max_steps"
        if reason != "max_steps":
            break
    end = {"type": "episode_end", "episode": episode, "site": site, "family": family,
           "seed": seed, "success": success, "steps": n_steps,
           "reason": reason, "answer": answer, "failed_steps": failed_steps,
           "timing": {k: round(v, 3) for k, v in totals.items()}}
    log(end)
    return end
