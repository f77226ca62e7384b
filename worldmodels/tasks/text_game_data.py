"""Text-game transitions: GPT-simulator JSONL records, state comparison and RL data sampling.

    from worldmodels.tasks.text_game_data import load_transitions, rl_sample
    data = load_transitions("data/bytesized32/test_dev.jsonl.gz", mode="full")   # list[Transition]
    data[0].current, data[0].next, data[0].action, data[0].changed
    train = rl_sample(data, unchanged_ratio=0.4, seed=0)   # every changed one + 40 per 100 unchanged

Record format (cognitiveailab/GPT-simulator ``data/get_game_states.py``; reference
``language.md`` §3): one JSON object a line with ``game``, ``state_id``, ``current_state``,
``action_state``, ``tick_state``, ``current_score_state``, ``next_score_state``. Each state is
``{observation, look, inventory, taskDesc, lastAction, objects, max_UUID}``; each object is
``{name, uuid, type, properties, contains}`` (``contains`` lists object *names*). The action
is the *next* state's ``lastAction`` and the UUID base the *current* state's ``max_UUID``.

Modes (GPT-simulator ``data_type``): ``full`` = ``current_state -> tick_state`` plus the score
(RLVR-World's setting), ``action`` = ``current_state -> action_state``, ``tick`` =
``action_state -> tick_state``; the last two carry no score.

Two notions of "changed" (reference §"Corrections"): ``changed`` (reporting accuracy) = the next
state differs from the current one under exact equality (objects by uuid, ``contains`` sorted,
score included; GPT-simulator's flags agree on 100 % of the shared sample); ``gold_changed``
(RLVR-World's RL split ``gold`` / ``no_gold``) = some object present in both states has a
property or its ``contains`` changed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from worldmodels.records import RecordError, check_record, iter_records

MODES = ("full", "action", "tick")
#: mode -> (current-state key, next-state key) of a record
MODE_KEYS = {"full": ("current_state", "tick_state"), "action": ("current_state", "action_state"),
             "tick": ("action_state", "tick_state")}
RECORD_FIELDS = {"game": str, "state_id": (int, str), "current_state": dict, "action_state": dict,
                 "tick_state": dict, "current_score_state": dict, "next_score_state": dict}
STATE_FIELDS = {"objects": list, "max_UUID": int, "lastAction": str, "taskDesc": str}
OBJECT_FIELDS = {"name": str, "uuid": int, "properties": dict, "contains": list}
SCORE_KEYS = ("score", "gameOver", "gameWon")


@dataclass
class Transition:
    """One state transition of a text game (see the module docstring).

    current / next: lists of object dicts (``name, uuid, type, properties, contains``).
    current_score / next_score: ``{score, gameOver, gameWon}`` in mode ``full``, else None.
    action: the action string ("" in mode ``tick``, which has none). uuid_base: ``max_UUID``
    of the current state (new objects take uuids from it). task_desc: the game's task text.
    changed: exact-equality change; gold_changed: RLVR-World's RL split (module docstring).
    source: "file:line" the record came from.
    """

    game: str
    state_id: int | str
    action: str
    task_desc: str
    uuid_base: int
    current: list[dict]
    next: list[dict]
    current_score: dict | None = None
    next_score: dict | None = None
    source: str = ""
    changed: bool = field(init=False)
    gold_changed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.changed = not states_equal(self.current, self.current_score, self.next, self.next_score)
        self.gold_changed = bool(changed_units(self.current, self.next))

    @property
    def verb(self) -> str:
        """The action's first word (GPT-simulator's per-verb breakdown key), or "tick"."""
        return self.action.split()[0] if self.action.split() else "tick"

    @property
    def creates(self) -> bool:
        """Whether an object appears that was not in the current state."""
        return bool(set(by_uuid(self.next)) - set(by_uuid(self.current)))


# ------------------------------------------------------------------------------ comparison
def values_equal(a, b, strict: bool = True) -> bool:
    """JSON values equal, a list equal to a tuple (GPT-simulator ``compare_dict``). ``strict``
    (our default) keeps booleans apart from numbers (``True != 1``); ``strict=False`` is
    Python's ``==`` as the original uses it."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(values_equal(x, y, strict) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k], strict) for k in a)
    if strict and (isinstance(a, bool) or isinstance(b, bool)) and type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # exotic values from a parser: unequal, never a crash
        return False


def sorted_names(contains) -> list | None:
    """``contains`` sorted for comparison (None when it is not a list of sortable values)."""
    if not isinstance(contains, (list, tuple)):
        return None
    try:
        return sorted(contains)
    except TypeError:
        return None


def by_uuid(objects: list) -> dict:
    """{uuid: object} of the dict objects that have a hashable uuid (the last one wins)."""
    out = {}
    for o in objects:
        if isinstance(o, dict):
            try:
                out[o.get("uuid")] = o
            except TypeError:  # unhashable uuid
                continue
    out.pop(None, None)
    return out


def objects_equal(a: dict, b: dict) -> bool:
    """Same name, type and properties, and the same ``contains`` once sorted."""
    return (a.get("name") == b.get("name") and a.get("type") == b.get("type")
            and values_equal(a.get("properties"), b.get("properties"))
            and sorted_names(a.get("contains")) == sorted_names(b.get("contains")))


def states_equal(objs_a: list, score_a: dict | None, objs_b: list, score_b: dict | None) -> bool:
    """Exact equality of two states: the same uuids, equal objects, equal scores."""
    a, b = by_uuid(objs_a), by_uuid(objs_b)
    if a.keys() != b.keys() or not all(objects_equal(a[u], b[u]) for u in a):
        return False
    return values_equal(score_a, score_b)


def changed_units(current: list, target: list) -> list[tuple]:
    """RLVR-World's ``gold_record``: ``(uuid, key)`` for every property of a target object that
    exists in ``current`` whose value differs (or is new), plus ``(uuid, "contains")`` when its
    sorted ``contains`` differs. Created and removed objects add no unit."""
    cur, units = by_uuid(current), []
    for uuid, t in by_uuid(target).items():
        if uuid not in cur:
            continue
        cp, tp = cur[uuid].get("properties") or {}, t.get("properties") or {}
        units += [(uuid, k) for k in tp if k not in cp or not values_equal(cp[k], tp[k])]
        if sorted_names(cur[uuid].get("contains")) != sorted_names(t.get("contains")):
            units.append((uuid, "contains"))
    return units


# ---------------------------------------------------------------------------------- loading
def _check_state(state: dict, where: str) -> None:
    check_record(state, STATE_FIELDS, where)
    for i, obj in enumerate(state["objects"]):
        check_record(obj, OBJECT_FIELDS, f"{where}.objects[{i}]")


def transition_from_record(rec: dict, mode: str = "full", source: str = "") -> Transition:
    """A :class:`Transition` of ``rec`` (a checked GPT-simulator record) in ``mode``.
    Raises RecordError naming ``source`` and the field when a state is malformed."""
    if mode not in MODES:
        raise ValueError(f"text-game mode must be one of {MODES}, got {mode!r}")
    check_record(rec, RECORD_FIELDS, source)
    cur_key, next_key = MODE_KEYS[mode]
    for key in {cur_key, next_key, "current_state"}:
        _check_state(rec[key], f"{source}: {key}")
    scores = (None, None)
    if mode == "full":
        for key in ("current_score_state", "next_score_state"):
            check_record(rec[key], {k: (int, float, bool) for k in SCORE_KEYS}, f"{source}: {key}")
        scores = (rec["current_score_state"], rec["next_score_state"])
    return Transition(
        game=rec["game"], state_id=rec["state_id"],
        action="" if mode == "tick" else rec[next_key]["lastAction"],
        task_desc=rec["current_state"]["taskDesc"], uuid_base=rec[cur_key]["max_UUID"],
        current=rec[cur_key]["objects"], next=rec[next_key]["objects"],
        current_score=scores[0], next_score=scores[1], source=source)


def load_transitions(path: str | Path, mode: str = "full", limit: int | None = None) -> list[Transition]:
    """Every record of a ``.jsonl`` / ``.jsonl.gz`` / ``.json`` file as a :class:`Transition`
    (the first ``limit`` when given). Raises RecordError naming the file and line of a corrupt
    line, a missing field or a malformed state."""
    out = []
    for line_no, rec in iter_records(path, RECORD_FIELDS):
        if limit is not None and len(out) >= limit:
            break
        out.append(transition_from_record(rec, mode, f"{path}:{line_no}"))
    if not out:
        raise RecordError(f"{path}: no records")
    return out


# ---------------------------------------------------------------------------- RL sampling
def rl_sample(data: list[Transition], unchanged_ratio: float | None, seed: int = 0,
              split: str = "gold") -> list[Transition]:
    """RLVR-World's RL training set (``rl_dataset_text_game.py``): every changed transition,
    then ``round(unchanged_ratio * n_changed)`` unchanged ones drawn uniformly **with
    replacement** (their 100:40 = 0.4 for the binary reward, 100:5 = 0.05 for the task-specific
    one). ``split``: "gold" (RLVR-World's ``gold_changed``) or "exact" (``changed``).
    ``unchanged_ratio=None`` returns ``data`` as it is."""
    if unchanged_ratio is None:
        return list(data)
    if split not in ("gold", "exact") or unchanged_ratio < 0:
        raise ValueError(f"rl_sample: split must be gold|exact and unchanged_ratio >= 0, got "
                         f"{split!r}, {unchanged_ratio}")
    is_changed = (lambda t: t.gold_changed) if split == "gold" else (lambda t: t.changed)
    changed = [t for t in data if is_changed(t)]
    unchanged = [t for t in data if not is_changed(t)]
    n = round(unchanged_ratio * len(changed))
    rng = random.Random(seed)
    return changed + ([rng.choice(unchanged) for _ in range(n)] if unchanged else [])
