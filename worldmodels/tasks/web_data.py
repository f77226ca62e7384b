"""Loaders for WMA's two JSON formats (reference ``language.md`` §2.5; samples in
``../shared/data/wma``), as :class:`WebTransition` records.

    load_webarena("sample_webarena_tao_dev.json")       # WebArena: observation, next_state_acctree
    load_mind2web("sample_mind2web_acctree_dev.json")   # Mind2Web: cleaned_*accessibility_tree

Both take ``.json`` (an array) or ``.jsonl`` files (:mod:`worldmodels.records`). Gold diff fields
(``new_items``, ``deleted_items``, ``updated_items``) are optional; when one is present all three
must be strings. Errors are :class:`worldmodels.records.RecordError` naming the file, the record
and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from worldmodels.records import RecordError, iter_records

__all__ = ["WebTransition", "load_webarena", "load_mind2web", "GOLD_FIELDS"]

GOLD_FIELDS = ("new_items", "deleted_items", "updated_items")
WEBARENA_FIELDS = {"objective": str, "current_action": str, "observation": str,
                   "next_state_acctree": str, "url": str, "previous_actions": (list, str)}
MIND2WEB_FIELDS = {"confirmed_task": str, "action": str, "cleaned_accessibility_tree": str,
                   "cleaned_next_accessibility_tree": str, "previous_actions": (list, str)}


@dataclass
class WebTransition:
    """One transition: ``observation`` --``action``--> ``next_observation`` (tree texts).

    ``gold`` is the gold diff text (``New items:…``) or None; ``site`` the grouping key for
    metrics (WebArena: the URL's host:port; Mind2Web: ``domain``); ``source`` "file:record i"."""

    objective: str
    url: str
    previous_actions: list
    observation: str
    action: str
    next_observation: str
    gold: str | None
    site: str
    source: str
    raw: dict


def _gold(rec: dict, where: str) -> str | None:
    present = [k for k in GOLD_FIELDS if k in rec]
    if not present:
        return None
    for k in GOLD_FIELDS:
        if not isinstance(rec.get(k), str):
            raise RecordError(f"{where}: gold diff field '{k}' is {type(rec.get(k)).__name__}, expected str "
                              f"(all of {GOLD_FIELDS} when one is present)")
    return (f"New items:\n{rec['new_items']}\n\nDeleted items:\n{rec['deleted_items']}\n\n"
            f"Updated items:\n{rec['updated_items']}")


def _actions(value) -> list:
    return value if isinstance(value, list) else [value]


def _host(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0]


def load_webarena(path: str | Path) -> list[WebTransition]:
    """WebArena-format transitions (fields ``objective, current_action, observation,
    previous_actions, next_state_acctree, url`` and optional gold)."""
    out = []
    for i, rec in iter_records(path, WEBARENA_FIELDS):
        where = f"{path}: record {i}"
        out.append(WebTransition(rec["objective"], rec["url"], _actions(rec["previous_actions"]),
                                 rec["observation"], rec["current_action"], rec["next_state_acctree"],
                                 _gold(rec, where), _host(rec["url"]), where, rec))
    return out


def load_mind2web(path: str | Path) -> list[WebTransition]:
    """Mind2Web-format transitions (``confirmed_task, action, cleaned_accessibility_tree,
    cleaned_next_accessibility_tree, previous_actions``, optional ``domain``/``website`` and gold)."""
    out = []
    for i, rec in iter_records(path, MIND2WEB_FIELDS):
        where = f"{path}: record {i}"
        site = str(rec.get("domain", rec.get("website", "")))
        out.append(WebTransition(rec["confirmed_task"], str(rec.get("website", "")), _actions(rec["previous_actions"]),
                                 rec["cleaned_accessibility_tree"], rec["action"],
                                 rec["cleaned_next_accessibility_tree"], _gold(rec, where), site, where, rec))
    return out
