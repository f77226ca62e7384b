"""WebArena's action grammar (``browser_env/actions.py``, ``create_id_based_action``): parsing
is pure and never raises; it returns an :class:`Action` or an :class:`ActionError`.

    click [id]            hover [id]           type [id] [text] [0|1]   (flag omitted = 1: Enter)
    press [keys]          scroll [down|up]     goto [url]               go_back   go_forward
    stop [answer]

``id`` is the AX node id shown in the observation. Whether the id exists, the element accepts
text, or a ``goto`` URL is allowed is decided by the environment, not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Action", "ActionError", "VERBS", "parse_action", "format_action"]

VERBS = ("click", "type", "hover", "press", "scroll", "goto", "go_back", "go_forward", "stop")
_ARGS = re.compile(r"\[(.*?)\]", re.S)
_TYPE = re.compile(r"\[(\d+)\]\s*\[(.*)\]\s*\[([01])\]\s*\Z", re.S)
_TYPE_NOFLAG = re.compile(r"\[(\d+)\]\s*\[(.*)\]\s*\Z", re.S)


@dataclass(frozen=True)
class Action:
    """A parsed action: ``verb`` (one of :data:`VERBS`), ``element_id`` (AX node id string for
    click/type/hover, else None), ``text`` (typed text, keys, direction, url or answer) and
    ``enter`` (``type`` only: press Enter after typing)."""

    verb: str
    element_id: str | None = None
    text: str = ""
    enter: bool = False


@dataclass(frozen=True)
class ActionError:
    """Why a string is not an action (``message``) and the string (``raw``)."""

    message: str
    raw: str


def parse_action(raw) -> Action | ActionError:
    """Parse one action string (surrounding whitespace ignored). Never raises."""
    if not isinstance(raw, str):
        return ActionError(f"action must be a str, got {type(raw).__name__}", repr(raw))
    s = raw.strip()
    verb, _, rest = s.partition(" ")
    if "[" in verb:  # "click[12]"
        verb, rest = verb[:verb.index("[")], verb[verb.index("["):] + " " + rest
    rest = rest.strip()
    if verb not in VERBS:
        return ActionError(f"unknown action {verb[:40]!r}; expected one of {list(VERBS)}", raw)
    if verb in ("go_back", "go_forward"):
        return Action(verb) if not rest else ActionError(f"{verb} takes no argument", raw)
    if verb == "type":
        m = _TYPE.match(rest) or _TYPE_NOFLAG.match(rest)
        if not m:
            return ActionError("expected 'type [id] [text] [0|1]' with a numeric id", raw)
        flag = m.group(3) if m.re is _TYPE else "1"
        return Action("type", m.group(1), m.group(2), flag == "1")
    args = _ARGS.findall(rest)
    if len(args) != 1 or _ARGS.sub("", rest).strip():
        return ActionError(f"expected '{verb} [argument]' (one bracketed argument)", raw)
    arg = args[0]
    if verb in ("click", "hover"):
        if not arg.isdigit() or not arg.isascii():
            return ActionError(f"{verb} needs a numeric element id, got [{arg[:40]}]", raw)
        return Action(verb, arg)
    if verb == "scroll":
        if arg.lower() not in ("down", "up"):
            return ActionError(f"scroll direction must be down or up, got [{arg[:40]}]", raw)
        return Action("scroll", text=arg.lower())
    if verb in ("press", "goto") and not arg.strip():
        return ActionError(f"{verb} needs a non-empty argument", raw)
    return Action(verb, text=arg)  # press, goto, stop (stop's answer may be empty)


def format_action(a: Action) -> str:
    """The grammar string of ``a`` (inverse of :func:`parse_action` for parsed actions)."""
    if a.verb in ("go_back", "go_forward"):
        return a.verb
    if a.verb == "type":
        return f"type [{a.element_id}] [{a.text}] [{int(a.enter)}]"
    if a.verb in ("click", "hover"):
        return f"{a.verb} [{a.element_id}]"
    return f"{a.verb} [{a.text}]"
