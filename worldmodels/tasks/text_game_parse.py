"""Text-game answers: the gold diff, answer extraction and JSON repair, applying a diff.

    diff = make_diff(t.current, t.next, t.current_score, t.next_score)   # the target
    pred = parse_diff(model_text)              # {"modified", "removed"[, "score"]} or None
    objects, score = apply_diff(t.current, t.current_score, pred)

A diff is ``{"modified": [object, ...], "removed": [uuid, ...], "score": {...}}``
(GPT-simulator ``--partial``; ``score`` only in mode ``full``): ``modified`` holds every object
that changed **or was created**, ``removed`` the uuids of objects that disappeared, ``score``
the new score dict, or ``{}`` when it did not change.

Parsing follows RLVR-World's reward (``lang_wm/verl/verl/utils/reward_score/text_game.py``,
reference ``language.md`` §1.2): the text after the last "The final answer is:" (fallbacks in
order: the lower-case form, "The final state is:", "The final game state is:", the last
```` ```json ```` fence of at least 10 characters, the whole text); ``True/False/None`` rewritten
to ``true/false/null``; then ``json_repair`` (which also drops code fences and trailing text).
Text is parsed, never evaluated. Our default (``compat=False``) rewrites the Python literals only
outside quoted strings, tries plain JSON first and, when the repair yields several JSON values,
takes the last object with a ``modified`` key; ``compat=True`` does what the original does
(a blind text replace; ``dirtyjson.loads`` there, ``json.loads`` of the repaired text here).

Known deviations of the originals, kept as switches:
- ``make_diff(..., gpt_simulator_creation=True)`` reproduces GPT-simulator's
  ``get_state_diff`` bug (reference §3 quirk 1): a created object enters ``modified`` as the
  whole ``{uuid: object}`` dict of the next state instead of the object.
- ``apply_diff(..., compat=True)`` reproduces RLVR-World's ``recover_game_state_from_partial``:
  objects with new uuids are **dropped**, so a created object is never in the prediction. Our
  default appends them after the existing objects.
"""

from __future__ import annotations

import json
import re

MARKERS = ("The final answer is:", "the final answer is:", "The final state is:",
           "The final game state is:")
_FENCE = re.compile(r"```json(.*?)```", re.S)
_ANY_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)(?:```|$)", re.S)
_LITERALS = {"True": "true", "False": "false", "None": "null"}
_STRING_OR_WORD = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|\b(?:True|False|None)\b', re.S)
EMPTY_DIFF = {"modified": [], "removed": [], "score": {}}


# ------------------------------------------------------------------------------ gold diff
def make_diff(current: list[dict], nxt: list[dict], current_score: dict | None = None,
              next_score: dict | None = None, gpt_simulator_creation: bool = False) -> dict:
    """The diff that turns ``current`` into ``nxt`` (module docstring). Changed objects come in
    the current state's order, then created ones in the next state's order. ``score`` is only
    present when a score is given; it is ``{}`` when the score did not change."""
    from worldmodels.tasks.text_game_data import by_uuid, objects_equal, values_equal

    cur, new = by_uuid(current), by_uuid(nxt)
    modified = [new[u] for u in cur if u in new and not objects_equal(cur[u], new[u])]
    created = [new[u] for u in new if u not in cur]
    if gpt_simulator_creation:
        created = [dict(new) for _ in created]  # GPT-simulator stores (None, state_2): every object
    diff = {"modified": modified + created, "removed": [u for u in cur if u not in new]}
    if current_score is not None or next_score is not None:
        diff["score"] = {} if values_equal(current_score, next_score) else dict(next_score or {})
    return diff


# -------------------------------------------------------------------------------- parsing
def extract_answer(text: str) -> str:
    """The answer part of a response: after the last marker, else the last ```json fence of
    >= 10 characters, else the whole text (RLVR-World's order of fallbacks)."""
    for marker in MARKERS:
        if marker in text:
            return text.rsplit(marker, 1)[1]
    fences = _FENCE.findall(text)
    if fences and len(fences[-1]) >= 10:
        return fences[-1]
    return text


def rewrite_literals(text: str, compat: bool = False) -> str:
    """``True/False/None`` -> ``true/false/null``: everywhere (``compat``, as the original's
    ``str.replace``) or only outside quoted strings (default, so a name keeps its words)."""
    if compat:
        return text.replace("True", "true").replace("False", "false").replace("None", "null")
    return _STRING_OR_WORD.sub(lambda m: _LITERALS.get(m.group(0), m.group(0)), text)


def _strip_fence(text: str) -> str:
    m = _ANY_FENCE.search(text)
    return m.group(1) if m and len(m.group(1).strip()) >= 2 else text


def _repair(text: str):
    import json_repair

    return json.loads(json_repair.repair_json(text))


def parse_json_answer(text, compat: bool = False):
    """The JSON value of a response (after extraction, literal rewriting and repair), or None
    when nothing parses. Never raises."""
    try:
        if not isinstance(text, str):
            return None
        answer = rewrite_literals(extract_answer(text), compat)
        if compat:
            return _repair(answer)
        answer = _strip_fence(answer).strip()
        try:
            value = json.loads(answer)
        except ValueError:
            value = _repair(answer)
        if isinstance(value, list):  # several values: the last diff-like object
            value = next((v for v in reversed(value) if isinstance(v, dict) and "modified" in v), value)
        return value
    except Exception:  # json_repair on adversarial text (deep nesting, ...): unparseable
        return None


def parse_diff(text, compat: bool = False) -> dict | None:
    """A diff dict parsed from ``text``, or None when it is not one: not a JSON object, or
    ``modified`` / ``removed`` missing (RLVR-World: reward 0). With ``compat=False`` also None
    when ``modified`` / ``removed`` are not lists, an entry of ``modified`` is not an object
    with a hashable, non-boolean ``uuid`` (same for ``removed``), or ``score`` (if present) is
    not an object. Never raises."""
    value = parse_json_answer(text, compat)
    if not isinstance(value, dict) or "modified" not in value or "removed" not in value:
        return None
    if compat:
        return value
    modified, removed, score = value["modified"], value["removed"], value.get("score", {})
    if not isinstance(modified, list) or not isinstance(removed, list) or not isinstance(score, dict):
        return None
    for obj in modified:
        if not isinstance(obj, dict) or "uuid" not in obj or not _uuid_like(obj["uuid"]):
            return None
    if not all(_uuid_like(u) for u in removed):
        return None
    return value


def _uuid_like(x) -> bool:
    """Hashable and not a bool (``True`` would otherwise match uuid 1)."""
    if isinstance(x, bool):
        return False
    try:
        hash(x)
    except TypeError:
        return False
    return True


# ---------------------------------------------------------------------------- apply-diff
def apply_diff(current: list[dict], current_score: dict | None, diff: dict,
               compat: bool = False) -> tuple[list[dict], dict | None]:
    """The predicted next state ``(objects, score)`` of ``diff`` applied to the current state.

    Current objects whose uuid is in ``removed`` are dropped, those in ``modified`` replaced;
    objects of ``modified`` with a new uuid are appended (default) or ignored (``compat``:
    RLVR-World's ``recover_game_state_from_partial``). Score: ``diff["score"]`` when non-empty,
    the current score when it is ``{}``, None (every score key then counts as wrong) when the
    key is missing or ``current_score`` is None (modes ``action`` / ``tick``).
    ``compat`` raises on malformed diffs as the original does (its caller turns any exception
    into reward 0); the default expects a diff from :func:`parse_diff`.
    """
    modified = {obj["uuid"]: obj for obj in diff["modified"]}
    removed = diff["removed"]
    objects = []
    for obj in current:
        if obj["uuid"] in removed:
            continue
        objects.append(modified.get(obj["uuid"], obj))
    if not compat:
        known = {obj["uuid"] for obj in current}
        objects += [obj for u, obj in modified.items() if u not in known and u not in removed]
    score = None
    if current_score is not None and "score" in diff:
        score = diff["score"] if len(diff["score"]) > 0 else current_score
    return objects, score
