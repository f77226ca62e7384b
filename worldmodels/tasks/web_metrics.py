"""Web world-model metrics: precision / recall / F1 / exact match, per transition and aggregated.

    m = transition_metrics(response, gold)        # {"precision", "recall", "f1", "exact"}
    aggregate(rows, keys)                          # {"all": {...}, "site=shop": {...}, ...}

``precision``, ``recall``, ``f1`` are :func:`worldmodels.tasks.web_rewards.prf` (RLVR-World's
pooled set F1, reference ``language.md`` §1.3). ``exact`` is 1 when the predicted section sets
equal the gold ones for all three sections (a missing section counts as empty), else 0.
:func:`says_no_change` tells whether a prediction is the "no change" answer (a diagnostic, not
a score). Aggregates are means over transitions (macro average), overall and per value of each key
(e.g. ``site`` for our sites, ``domain`` / ``website`` for Mind2Web), plus ``n``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from worldmodels.tasks.web_diff import SECTIONS
from worldmodels.tasks.web_rewards import prepare_response, prf, section_sets

__all__ = ["METRICS", "transition_metrics", "says_no_change", "aggregate"]

METRICS = ("precision", "recall", "f1", "exact")


def transition_metrics(response, gold, after_reasoning: str | None = None,
                       strip_special: Iterable[str] = ()) -> dict[str, float]:
    """The four metrics of one prediction (module docstring); never raises."""
    p, r, f = prf(response, gold, after_reasoning, strip_special)
    pred = section_sets(prepare_response(response, after_reasoning, strip_special))
    ref = section_sets(gold)
    exact = bool(pred) and all(pred.get(h, set()) == ref.get(h, set()) for h in SECTIONS)
    return {"precision": p, "recall": r, "f1": f, "exact": float(exact)}


def says_no_change(response, after_reasoning: str | None = None, strip_special: Iterable[str] = ()) -> bool:
    """True when ``response`` parses to at least one section and every parsed section holds only
    ``None``: the "no change" answer, whatever its wording or spacing. A world model that gives it
    on every transition scores the "no change" baseline exactly (what an F1-trained tiny model
    can collapse to); `wm eval web` reports the share as ``no_change``. Never raises."""
    pred = section_sets(prepare_response(response, after_reasoning, strip_special))
    return bool(pred) and all(items <= {"None"} for items in pred.values())


def aggregate(rows: Iterable[Mapping], keys: Iterable[str] = ()) -> dict[str, dict[str, float]]:
    """Mean metrics of ``rows`` (each has the :data:`METRICS` and the ``keys`` fields).

    Returns ``{"all": {...}, f"{key}={value}": {...}}``, each with the four means and ``n``.
    KeyError naming the row index and field when a row lacks one."""
    keys = list(keys)
    groups: dict[str, list[Mapping]] = defaultdict(list)
    for i, row in enumerate(rows):
        for name in (*METRICS, *keys):
            if name not in row:
                raise KeyError(f"metrics row {i}: missing field {name!r} (has {sorted(row)})")
        groups["all"].append(row)
        for k in keys:
            groups[f"{k}={row[k]}"].append(row)
    return {g: {**{m: sum(float(r[m]) for r in rs) / len(rs) for m in METRICS}, "n": len(rs)}
            for g, rs in groups.items()}
