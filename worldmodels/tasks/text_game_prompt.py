"""Text-game prompts and answers: the ``rlvr_world`` and ``compact`` styles, and the reduction
that fits a prompt into a model's context.

    rules, shots = load_rules("data/bytesized32/rules"), load_shots("data/bytesized32/examples.json")
    text = render_prompt(t, "rlvr_world", rules, shots)              # one user message
    text, reduction = fit_prompt(t, "rlvr_world", rules, shots, count, limit=4096)
    answer = render_answer(diff, "rlvr_world")                         # the SFT target

``rlvr_world`` (RLVR-World ``process_jsonl.py`` on GPT-simulator ``quest_gpt.py --partial
--data_type full``; reference ``language.md`` §1.1), in this order: the role (a text-game
simulator predicting the state after an action, score included), the UUID rule, the output
format (``modified`` / ``removed`` / ``score``), the note that states also change over time,
the two shots from the held-out game ``dishwasher`` (an action-driven and a tick-driven
transition; the example game's task, object, action and score rules printed once; each shot's
state, "The current game UUID base is N", the action and the expected diff), then "Here is the
game that you need to simulate:" with the task description, the game's object / action / score
rules, the state, the UUID base and the action, and a last line asking for an answer that
starts with "The final answer is:". States are printed as Python dicts (``str``: single quotes,
``True``/``False``) of ``{"game_state": [objects..., score]}`` (score last, mode ``full``).
Object rules are split on ``==========`` and the last piece dropped (``preprocess_obj_desc``).
The instruction sentences are ours (same content and order, not the original's wording); the
labels quoted above are the original's. Modes ``action`` / ``tick`` use one shot
(``examples["action"]`` / ``["tick"]``), no score, and no action in ``tick``.

``compact``: no rules and no shots; the task, the state as JSON, the UUID base and the action;
the answer is the diff as compact JSON (for small models and short contexts).

Reduction (``fit_prompt``): when a prompt is longer than the limit, drop the second shot, then
both, then the rules; the state and the action are never cut. If even that is too long, an
error names the record and the lengths.
"""

from __future__ import annotations

import json
from pathlib import Path

from worldmodels.records import RecordError, read_records

STYLES = ("rlvr_world", "compact")
STATE_FORMATS = ("python", "json")
ANSWER_MARKER = "The final answer is:"
#: reductions in the order they are tried (shots kept, rules kept)
REDUCTIONS = {"none": (2, True), "one_shot": (1, True), "no_shots": (0, True), "no_rules": (0, False)}
RULE_FILES = ("object", "action", "score")


class PromptTooLong(ValueError):
    """A prompt does not fit the limit even without shots and rules."""


# ------------------------------------------------------------------------------ resources
def load_rules(directory: str | Path) -> dict[str, dict[str, str]]:
    """``{kind: {game: text}}`` from ``{object,action,score}_rules.json`` in ``directory``
    (GPT-simulator ``rules/human_written_rules``). Raises RecordError naming a missing or
    malformed file."""
    out = {}
    for kind in RULE_FILES:
        p = Path(directory) / f"{kind}_rules.json"
        if not p.is_file():
            raise RecordError(f"{p}: no such rules file (task.rules must hold "
                              f"{', '.join(k + '_rules.json' for k in RULE_FILES)})")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except ValueError as e:
            raise RecordError(f"{p}: not valid JSON ({e})") from e
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise RecordError(f"{p}: expected a JSON object {{game: rules text}}")
        out[kind] = data
    return out


def load_shots(path: str | Path, mode: str = "full") -> list:
    """The in-context examples of ``mode`` from GPT-simulator's ``examples.json``: full ->
    [action-driven, tick-driven] (``examples["full"]["action"|"tick"]``), action / tick -> one.
    Raises RecordError naming the file and the missing key."""
    from worldmodels.tasks.text_game_data import transition_from_record

    p = Path(path)
    data = read_records(p) if p.suffix == ".jsonl" else None
    if data is None:
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RecordError(f"{p}: cannot read the shots file ({e})") from e
    keys = [("full", "action"), ("full", "tick")] if mode == "full" else [(mode,)]
    shots = []
    for key in keys:
        rec = data
        for k in key:
            if not isinstance(rec, dict) or k not in rec:
                raise RecordError(f"{p}: missing {'.'.join(key)} (GPT-simulator examples.json layout)")
            rec = rec[k]
        shots.append(transition_from_record(rec, mode, f"{p}: {'.'.join(key)}"))
    return shots


def object_rules(text: str) -> str:
    """GPT-simulator ``preprocess_obj_desc``: split on ``==========``, drop the last piece."""
    return "".join(text.split("==========")[:-1])


def game_rules(rules: dict | None, game: str, mode: str = "full") -> list[tuple[str, str]]:
    """[(kind, text)] of ``game``'s rules for ``mode`` (action rules not in ``tick``, score
    rules only in ``full``). Raises KeyError naming the game when the rules lack it."""
    if not rules:
        return []
    kinds = ["object"] + (["action"] if mode != "tick" else []) + (["score"] if mode == "full" else [])
    out = []
    for kind in kinds:
        if game not in rules[kind]:
            raise KeyError(f"no {kind} rules for game {game!r} (rules have {sorted(rules[kind])[:5]}...)")
        text = rules[kind][game]
        out.append((kind, (object_rules(text) if kind == "object" else text).strip()))
    return out


# -------------------------------------------------------------------------------- pieces
def render_state(objects: list, score: dict | None, fmt: str = "python") -> str:
    """``{"game_state": [objects..., score]}`` as Python ``str`` or JSON."""
    state = {"game_state": list(objects) + ([score] if score is not None else [])}
    if fmt == "python":
        return str(state)
    if fmt == "json":
        return json.dumps(state)
    raise ValueError(f"state format must be one of {STATE_FORMATS}, got {fmt!r}")


def render_answer(diff: dict, style: str) -> str:
    """The target text: ``"The final answer is: " + JSON`` (rlvr_world) or compact JSON."""
    if style == "rlvr_world":
        return f"{ANSWER_MARKER} {json.dumps(diff)}"
    if style == "compact":
        return json.dumps(diff, separators=(",", ":"))
    raise ValueError(f"prompt style must be one of {STYLES}, got {style!r}")


_RULE_TITLES = {"object": "Here are the descriptions of all game objects properties{}:",
                "action": "Here are the descriptions of all game actions{}:",
                "score": "Here is a description of the game score function{}:"}


def _rules_block(pairs: list[tuple[str, str]], suffix: str) -> str:
    return "".join(f"{_RULE_TITLES[kind].format(suffix)}\n{text}\n" for kind, text in pairs)


def _case(t, fmt: str, answer: str | None) -> str:
    from worldmodels.tasks.text_game_parse import make_diff

    out = f"Here is the game state:\n{render_state(t.current, t.current_score, fmt)}\n\n"
    out += f"The current game UUID base is {t.uuid_base}\n"
    if t.action:
        out += f"The action to take is:\n{t.action}\n"
    if answer is not None:
        diff = make_diff(t.current, t.next, t.current_score, t.next_score)
        out += f"The expected response is:\n{str(diff) if fmt == 'python' else json.dumps(diff)}\n\n"
    return out


def _intro(mode: str) -> str:
    score = " including the game score" if mode == "full" else ""
    keys = "three keys, 'modified', 'removed' and 'score'" if mode == "full" else \
        "two keys, 'modified' and 'removed'"
    text = (f"You simulate a text game. Read the task description and the rules of the game; given "
            f"the current game state and an action, predict the game state after the action{score}.\n"
            "An action may create objects: number new objects' uuids upwards from the UUID base "
            "given below.\n"
            f"Answer with a JSON object with {keys}. 'modified' lists, in full, every object that is "
            "new or whose state changed ([] if none); 'removed' lists the uuids of the objects that "
            "no longer exist ([] if none)")
    if mode == "full":
        text += ("; 'score' holds the score as an object with 'score', 'gameOver' and 'gameWon' "
                 "({} if it did not change)")
    return text + (".\nBesides actions, the state can also change as time passes, as each "
                   "object's tick function describes.\n")


def prompt_parts(t, style: str, rules: dict | None = None, shots: list | None = None,
                 n_shots: int = 2, with_rules: bool = True, state_format: str | None = None) -> list[str]:
    """The prompt of transition ``t`` as a list of text pieces (joined: the user message).
    ``state_format`` None: python for rlvr_world, json for compact."""
    if style == "compact":
        fmt = state_format or "json"
        state = render_state(t.current, t.current_score, fmt)
        if fmt == "json":
            state = json.dumps(json.loads(state), separators=(",", ":"))
        return [f"Task: {t.task_desc}\n", f"State: {state}\n", f"UUID base: {t.uuid_base}\n",
                f"Action: {t.action or '(time passes)'}\n",
                "Reply with the state change as JSON {\"modified\": [...], \"removed\": [...]"
                + (", \"score\": {...}" if t.current_score is not None else "") + "}."]
    if style != "rlvr_world":
        raise ValueError(f"prompt style must be one of {STYLES}, got {style!r}")
    fmt = state_format or "python"
    mode = "full" if t.current_score is not None else ("action" if t.action else "tick")
    parts = [_intro(mode)]
    used = list(shots or [])[:n_shots]
    if used:
        ex = used[0]
        parts.append(("Here are two examples, both from the same example game.\n" if len(used) > 1 else
                      "Here is an example.\n") + f"Example game task description:\n{ex.task_desc}\n")
        if with_rules:
            parts.append(_rules_block(game_rules(rules, ex.game, mode), " in the example game"))
        for i, shot in enumerate(used):
            if len(used) > 1:
                parts.append("In the first example, the action changes the game state:\n" if i == 0 else
                             "In the second example, the game state changes as time passes (a state "
                             "can change by both an action and time).\n")
            parts.append(_case(shot, fmt, answer="yes"))
    parts.append(f"Here is the game that you need to simulate:\nTask Description:\n{t.task_desc}\n")
    if with_rules:
        parts.append(_rules_block(game_rules(rules, t.game, mode), ""))
    parts.append(_case(t, fmt, answer=None))
    parts.append(f'Think it through if you need to, then give your answer starting with "{ANSWER_MARKER}"')
    return parts


def render_prompt(t, style: str, rules=None, shots=None, n_shots: int = 2, with_rules: bool = True,
                  state_format: str | None = None) -> str:
    """The user message of transition ``t`` (see :func:`prompt_parts`)."""
    return "".join(prompt_parts(t, style, rules, shots, n_shots, with_rules, state_format))


def fit_prompt(t, style: str, rules, shots, count, limit: int | None,
               state_format: str | None = None, reduce: bool = True) -> tuple[str, str, int]:
    """``(prompt, reduction, length)``: the fullest prompt with ``count(prompt) <= limit``,
    trying ``REDUCTIONS`` in order (only "none" when ``reduce`` is off or ``limit`` is None).
    Raises PromptTooLong naming the record, the length and the limit."""
    length = 0
    for name, (n_shots, with_rules) in REDUCTIONS.items():
        if style == "compact" and name != "none":
            break
        text = render_prompt(t, style, rules, shots, n_shots, with_rules, state_format)
        length = count(text)
        if limit is None or length <= limit:
            return text, name, length
        if not reduce:
            break
    hint = ("" if reduce else " (task.on_overflow=reduce drops shots, then rules)")
    raise PromptTooLong(f"{t.source}: the {style} prompt has {length} tokens, more than "
                        f"task.max_prompt_tokens={limit}{hint}; the state and the action are never cut")
