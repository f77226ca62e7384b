"""Text-game rewards ``binary`` and ``task_specific`` (RLVR-World), registered for ``--reward``.

    card = score_diff(diff, current, current_score, target, target_score)   # a ScoreCard
    card.binary, card.task_specific

Definitions (RLVR-World ``lang_wm/verl/verl/utils/reward_score/text_game.py``; reference
``language.md`` §1.2). The predicted diff is applied to the current state
(``text_game_parse.apply_diff``), then the **target** objects are walked: per object, one unit
per target property key (right when the prediction has the key with an equal value) and one
for ``contains`` (compared sorted); a missing object is one wrong unit. Each target score key
is one unit (a missing ``score`` key in the diff makes all of them wrong; ``{}`` keeps the
current score). ``item_acc = right / (right + wrong)`` over the object units, ``score_acc``
likewise over the score units (1 when the mode has no score)::

    binary        = 1[item_acc == 1 and score_acc == 1]
    task_specific = 0.09 item_acc + 0.01 score_acc + 0.2 binary + mean_{u in gold} right(u)

where ``gold`` are the properties / ``contains`` of objects present in both states that the
action changed (``text_game_data.changed_units``); the last term is left out when there are
none. Range [0, 1.3]: a perfect answer earns 1.3 on a changed transition and 0.3 on an
unchanged one. Unparseable or malformed output scores 0; no input makes these raise.

Default vs ``compat`` (``compat_rlvr_world``; the original's behaviour):
- created objects: the default adds them to the prediction; compat drops them
  (``apply_diff``), so a transition that creates an object can never be fully right;
- extra predictions: compat never penalises extra objects or extra property keys in the
  walk, but an extra property key on an existing object raises ``KeyError`` in the original's
  changed-property loop and makes ``task_specific`` 0 (read from the reference; the original's
  source is not in our index, so the quirk is applied to ``task_specific`` only). Our default
  counts each extra property key and each extra object as one wrong unit, so an answer is
  fully right only when its state equals the target, and partial credit stays partial;
- values: compat compares with Python ``==`` (``True == 1``); the default keeps booleans
  apart from numbers;
- an empty target (no units): compat divides by zero (reward 0), the default counts it right.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from worldmodels.rewards import register_reward
from worldmodels.tasks.text_game_data import by_uuid, changed_units, sorted_names, values_equal
from worldmodels.tasks.text_game_parse import apply_diff, parse_diff


@dataclass
class ScoreCard:
    """Unit counts of one prediction against its target (see the module docstring)."""

    item_right: int = 0
    item_wrong: int = 0
    score_right: int = 0
    score_wrong: int = 0
    gold_right: int = 0
    gold_total: int = 0
    extra_key: bool = False  # a predicted property key the target object does not have
    compat: bool = False

    def _acc(self, right: int, wrong: int) -> float:
        if right + wrong == 0:
            if self.compat:
                raise ZeroDivisionError("no units to score")  # the original's 0/0 -> reward 0
            return 1.0
        return right / (right + wrong)

    @property
    def item_acc(self) -> float:
        return self._acc(self.item_right, self.item_wrong)

    @property
    def score_acc(self) -> float:
        return self._acc(self.score_right, self.score_wrong) if self.score_right + self.score_wrong else 1.0

    @property
    def binary(self) -> float:
        return float(self.item_acc == 1.0 and self.score_acc == 1.0)

    @property
    def task_specific(self) -> float:
        if self.compat and self.extra_key:
            return 0.0
        gold = self.gold_right / self.gold_total if self.gold_total else 0.0
        return 0.09 * self.item_acc + 0.01 * self.score_acc + 0.2 * self.binary + gold


def _unit_right(pred: dict | None, target: dict, key: str, strict: bool) -> bool:
    if not isinstance(pred, dict):
        return False
    if key == "contains":
        s = sorted_names(pred.get("contains"))
        return s is not None and s == sorted_names(target.get("contains"))
    props = pred.get("properties")
    return isinstance(props, dict) and key in props and values_equal(props[key], target["properties"][key], strict)


def score_state(objects: list, score: dict | None, current: list, target: list,
                target_score: dict | None, compat: bool = False) -> ScoreCard:
    """Score a predicted state ``(objects, score)`` against the target (module docstring)."""
    strict = not compat
    card = ScoreCard(compat=compat)
    pred, cur = by_uuid(objects), by_uuid(current)
    for uuid, t in by_uuid(target).items():
        p = pred.get(uuid)
        if p is None:
            card.item_wrong += 1
            continue
        for key in [*t.get("properties", {}), "contains"]:
            if _unit_right(p, t, key, strict):
                card.item_right += 1
            else:
                card.item_wrong += 1
        props = p.get("properties")
        extra = [k for k in props if k not in t.get("properties", {})] if isinstance(props, dict) else []
        if compat:
            card.extra_key |= bool(extra) and uuid in cur
        else:
            card.item_wrong += len(extra)
    if not compat:
        card.item_wrong += sum(1 for u in pred if u not in by_uuid(target))
    if target_score is not None:
        if compat and score is not None and not isinstance(score, dict):
            raise TypeError("score is not a dict")  # the original fails here -> reward 0
        for key, value in target_score.items():
            ok = isinstance(score, dict) and key in score and values_equal(score[key], value, strict)
            card.score_right += ok
            card.score_wrong += not ok
    for uuid, key in changed_units(current, target):
        card.gold_total += 1
        card.gold_right += _unit_right(pred.get(uuid), by_uuid(target)[uuid], key, strict)
    return card


def score_diff(diff: dict | None, current: list, current_score: dict | None, target: list,
               target_score: dict | None, compat: bool = False) -> ScoreCard | None:
    """:func:`score_state` of ``diff`` applied to the current state; None when ``diff`` is None
    or (compat) applying or scoring it fails, i.e. reward 0."""
    if diff is None:
        return None
    try:
        objects, score = apply_diff(current, current_score, diff, compat)
        card = score_state(objects, score, current, target, target_score, compat)
        card.binary, card.task_specific  # noqa: B018  (compat: 0/0 raises here)
        return card
    except Exception:  # the original's `except: return 0`; the default never gets here
        return None


# ------------------------------------------------------------------------ batch interface
def prediction_diffs(predictions: dict, compat: bool) -> list:
    """The parsed diffs of a batch of predictions: ``predictions["diff"]`` when the task's
    ``decode`` parsed them already (same ``compat``), else ``parse_diff`` of ``["text"]``."""
    if predictions.get("diff") is not None and predictions.get("compat", compat) == compat:
        return list(predictions["diff"])
    return [parse_diff(t, compat) for t in predictions["text"]]


def score_cards(predictions: dict, items: dict) -> list[ScoreCard | None]:
    """One :class:`ScoreCard` (or None = unparseable / malformed) per row.

    predictions: ``{"text": [str] (B)[, "diff": [dict | None]]}``; items: lists of length B
    ``current``, ``current_score``, ``target``, ``target_score`` and a bool ``compat``."""
    compat = bool(items.get("compat", False))
    diffs = prediction_diffs(predictions, compat)
    return [score_diff(d, c, cs, t, ts, compat) for d, c, cs, t, ts in zip(
        diffs, items["current"], items["current_score"], items["target"], items["target_score"], strict=True)]


def _values(predictions: dict, items: dict, what: str) -> torch.Tensor:
    cards = score_cards(predictions, items)
    return torch.tensor([0.0 if c is None else getattr(c, what) for c in cards], dtype=torch.float32)


@register_reward("binary", aliases=("text_game_binary",))
def binary_reward(predictions: dict, items: dict, **ctx) -> torch.Tensor:
    """(B,) 1 where the predicted next state is fully right (objects and score), else 0."""
    return _values(predictions, items, "binary")


@register_reward("task_specific", aliases=("text_game_task_specific",))
def task_specific_reward(predictions: dict, items: dict, **ctx) -> torch.Tensor:
    """(B,) RLVR-World's task-specific reward in [0, 1.3] (module docstring)."""
    return _values(predictions, items, "task_specific")
