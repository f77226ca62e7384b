"""Statistics and failure analysis of MPC web agent runs (``wm webagent eval``).

Success rates get Wilson score intervals; two settings run on the *same* episodes are compared
with McNemar's exact test (two-sided, binomial on the discordant pairs) and a paired bootstrap
interval of the difference in success rate.

Failure analysis (:func:`classify_failure`), per failed episode of a log, at its *decisive
step*: the first step whose executed action differs from the reference action (the scripted
agent's action on that same real state, logged as ``reference_action``; its script finds
elements in the current tree, so it proposes a sensible action even off its own path). At that
step:

- ``no_good_candidate``: the reference action was not among the B kept candidates (the policy
  did not propose it often enough, or at all: ``not_proposed`` counts the latter);
- ``wrong_prediction``: it was kept, and the chosen action's predicted tree differed from what
  really happened (``prediction_matched`` False) *and* the real outcome was worse than
  predicted (the value of the real next state < the value of the predicted one), i.e. the
  world model made the chosen action look better than it was;
- ``wrong_value``: it was kept, and not a wrong prediction: the value function ranked the
  chosen candidate at least as high as the reference one although the chosen one's prediction
  was right (or not over-optimistic). With a learned world model this also holds failures where
  the *reference's* predicted outcome was wrong (under-estimated), which cannot be checked
  because the reference was not executed; only the oracle world model (exact predictions) makes
  this category purely the value's. With the oracle world model the log also tells whether a
  kept candidate truly satisfied the task (``oracle_better_candidate``).
- ``early_stop``: the reference was kept, but the stop rule fired on a kept candidate
  (``reason`` "stop"), which was executed at once, unscored (RLVR-World's short-circuit); with
  the default ``stop_rule=parsed`` that is a ``stop``, ending the episode before the task held;
- ``policy_choice``: policy-only modes (no value), the reference was kept but another was
  executed (the vote or the sample preferred it);
- ``no_deviation``: every executed action equals the reference (the episode ran out of steps or
  the reference itself failed); ``no_reference``: no reference action was logged.
"""

from __future__ import annotations

import math
import random
from collections import Counter

__all__ = ["wilson", "mcnemar_exact", "paired_bootstrap", "classify_failure", "failure_table",
           "value_agreement", "CATEGORIES", "RULES"]

#: Selection rules :func:`value_agreement` scores: ``vote`` (the most frequent kept candidate,
#: what mode ``policy_vote`` executes) and each ``AgentConfig.selection`` of mpc mode.
RULES = ("vote", "argmax", "weighted_vote")
CATEGORIES = ("no_good_candidate", "wrong_prediction", "wrong_value", "early_stop",
              "policy_choice", "no_deviation", "no_reference")


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k/n`` (two-sided, 95% for the default
    ``z``; Wilson 1927): ``(c - h, c + h)`` with ``c = (p + z²/2n) / (1 + z²/n)`` and
    ``h = z / (1 + z²/n) · sqrt(p(1-p)/n + z²/4n²)``. ``(0, 1)`` when ``n == 0``."""
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"wilson needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p, z2 = k / n, z * z
    c = (p + z2 / (2 * n)) / (1 + z2 / n)
    h = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, c - h), min(1.0, c + h)


def mcnemar_exact(a: list[bool], b: list[bool]) -> dict:
    """McNemar's exact test on paired outcomes ``a[i]``, ``b[i]`` (same episodes): with
    ``b10`` = #(a succeeds, b fails) and ``b01`` = #(a fails, b succeeds), the two-sided
    p-value ``min(1, 2 · P[X <= min(b10, b01)])``, X ~ Binomial(b10 + b01, 1/2) (1.0 with no
    discordant pair). Returns ``{"n", "a_only", "b_only", "p_value"}``."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need equal lengths, got {len(a)} and {len(b)}")
    b10 = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b01 = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    m = b10 + b01
    p = 1.0 if m == 0 else min(1.0, 2 * sum(math.comb(m, i) for i in range(min(b10, b01) + 1))
                               / 2 ** m)
    return {"n": len(a), "a_only": b10, "b_only": b01, "p_value": p}


def paired_bootstrap(a: list[bool], b: list[bool], resamples: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """Paired bootstrap of the difference in success rate ``mean(b) - mean(a)``: episodes
    resampled with replacement (the same indices for both), percentile interval at ``level``.
    Returns ``{"diff", "low", "high"}``."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired bootstrap needs equal non-empty lists, got {len(a)}, {len(b)}")
    rng, n = random.Random(seed), len(a)
    d = [float(y) - float(x) for x, y in zip(a, b, strict=True)]
    means = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    lo = means[int((1 - level) / 2 * resamples)]
    hi = means[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return {"diff": sum(d) / n, "low": lo, "high": hi}


def classify_failure(ep: dict) -> tuple[str, dict]:
    """The category of a failed episode (see the module doc) and details: ``step`` (the
    decisive step or None), ``not_proposed`` (the reference was not even among the K
    proposals), ``oracle_better_candidate`` (a kept candidate truly satisfied the task while
    the chosen one did not; None when the log has no oracle outcomes)."""
    steps = ep["steps"]
    if not steps or any(s.get("reference_action") is None for s in steps):
        return "no_reference", {"step": None}
    s = next((s for s in steps if s.get("choice") != s["reference_action"]), None)
    if s is None:
        return "no_deviation", {"step": None}
    ref = s["reference_action"]
    kept = {k["action"]: k for k in s["kept"]}
    detail = {"step": s["step"], "not_proposed": all(p["action"] != ref for p in s["proposals"]),
              "oracle_better_candidate": _oracle_better(s)}
    if ref not in kept:
        return "no_good_candidate", detail
    if s.get("reason") == "stop":
        return "early_stop", detail
    chosen = kept.get(s.get("choice"), {})
    if "value" not in chosen:
        return "policy_choice", detail
    real = s.get("value_real")
    if s.get("prediction_matched") is False and real is not None and real < chosen["value"]:
        return "wrong_prediction", detail
    return "wrong_value", detail


def _oracle_better(s: dict) -> bool | None:
    truth = ((s.get("info") or {}).get("world_model") or {}).get("true_success")
    if not truth:
        return None
    chosen = truth.get(s.get("choice"))
    return bool(not chosen and any(truth.values()))


def failure_table(episodes: list[dict]) -> dict:
    """Counts of :data:`CATEGORIES` over the failed episodes of ``episodes``
    (:func:`planners.web_logs.read_episodes` output), plus ``failures``, ``not_proposed`` and
    ``oracle_better_candidate`` (among the classified ones)."""
    counts: Counter = Counter({c: 0 for c in CATEGORIES})
    extra: Counter = Counter()
    for ep in episodes:
        if ep["end"]["success"]:
            continue
        cat, d = classify_failure(ep)
        counts[cat] += 1
        extra["not_proposed"] += bool(d.get("not_proposed"))
        extra["oracle_better_candidate"] += bool(d.get("oracle_better_candidate"))
    return {"failures": sum(counts.values()), **counts, **extra}


def value_agreement(episodes: list[dict], value, world_model=None) -> dict:
    """Screen a value function offline on logged MPC steps, without a browser: on every scored
    step (reason ``argmax`` or ``weighted_vote``) with >= 2 kept candidates among which is the
    reference action (the script's action on that real state), ``value`` scores the logged
    predicted next states again, and each rule of :data:`RULES` picks a candidate with the loop's
    own :func:`planners.web_agent.select`. A value that makes planning pay must pick the reference more often
    than ``vote``, the policy's own most frequent candidate.

    episodes: :func:`planners.web_logs.read_episodes` output of an mpc-mode log (the kept
    candidates carry ``predicted`` trees). value: a ``ValueFunction``. world_model: a
    ``WebWorldModel`` that predicts the kept candidates again (None: the logged predictions).
    Returns ``{"steps", "hits": {rule: count}, "by_task": {"site/family": {"steps", rule...}},
    "skipped": {"stop", "single_candidate", "reference_not_kept", "no_reference"}}``.
    """
    from .web_agent import select
    from .web_components import AgentState, next_state

    hits: Counter = Counter({r: 0 for r in RULES})
    by_task: dict[str, Counter] = {}
    skipped: Counter = Counter({k: 0 for k in ("stop", "single_candidate", "reference_not_kept",
                                               "no_reference")})
    for ep in episodes:
        start = ep["start"]
        for s in ep["steps"]:
            kept, ref = s["kept"], s.get("reference_action")
            if s.get("reason") == "stop":
                skipped["stop"] += 1
                continue
            if s.get("reason") not in RULES[1:]:
                continue  # policy-only modes and steps with no candidate
            if ref is None:
                skipped["no_reference"] += 1
            elif len(kept) < 2:
                skipped["single_candidate"] += 1
            elif all(k["action"] != ref for k in kept):
                skipped["reference_not_kept"] += 1
            else:
                st = AgentState(start["objective"], s.get("url") or "", s["observation"],
                                tuple(s.get("previous_actions") or ()), start["site"], start["family"])
                if world_model is not None:
                    trees = world_model.predict(st, [k["action"] for k in kept])
                elif all(isinstance(k.get("predicted"), str) for k in kept):
                    trees = [k["predicted"] for k in kept]
                else:
                    raise ValueError(f"episode {ep['episode']}, step {s['step']}: a kept "
                                     "candidate has no 'predicted' tree (an mpc-mode log is needed)")
                v = [float(x) for x in value.values(start["objective"], [
                    next_state(st, k["action"], t) for k, t in zip(kept, trees, strict=True)])]
                task = by_task.setdefault(f"{start['site']}/{start['family']}", Counter())
                task["steps"] += 1
                for rule in RULES:  # the loop keeps candidates ranked by count: the vote is the first
                    ok = kept[0 if rule == "vote" else select(kept, v, rule)]["action"] == ref
                    hits[rule] += ok
                    task[rule] += ok
    return {"steps": sum(t["steps"] for t in by_task.values()), "hits": dict(hits),
            "by_task": {k: {"steps": t["steps"], **{r: t[r] for r in RULES}}
                        for k, t in sorted(by_task.items())},
            "skipped": dict(skipped)}
