"""Episode records of the web sites (``wm data build web``) for the web agent's learned models:
loading, the value label, the action grammar and the prompts with their reduction.

    steps = load_agent_steps("data/web_small/train.json", POLICY_FIELDS)   # [AgentStep]
    value_labels(steps, gamma=0.8)          # Monte-Carlo success-to-go of each step's next state
    action_verb("type [3] [mug] [1]")       # "type"; None when the string is not an action
    fit_tree_prompt(render, tree, count, limit, source, reduce=True)

Records are WMA WebArena-format transitions (``objective, url, previous_actions, observation,
current_action, next_state_acctree``) plus the episode fields written by the builder:
``agent`` ("random" | "scripted"), ``noise``, ``success`` (the task check after this step),
``episode_success``, ``episode_steps``, ``seed``, ``episode``, ``step``, ``site``, ``family``.
A needed field that is absent or of the wrong type is a :class:`RecordError` naming the file,
the record and the field.

The action grammar is WebArena's (``web_prompt.ACTIONS``), parsed here with a small regex:
the task layer may not import ``envs`` (ARCHITECTURE "Who may import whom"), whose
``envs/web/actions.py`` holds the environment's own parser (same grammar, plus the tab actions
here). Untrusted text is only matched, never evaluated.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from worldmodels.records import RecordError, iter_records

_BASE = {"objective": str, "url": str, "previous_actions": (list, str), "observation": str,
         "current_action": str, "next_state_acctree": str, "site": str, "family": str}
#: fields the policy task needs
POLICY_FIELDS = {**_BASE, "agent": str}
#: fields the value task needs
VALUE_FIELDS = {**_BASE, "agent": str, "success": bool, "episode_success": bool, "episode_steps": int,
                "episode": int, "step": int}

_ID, _ANY = r"\[\s*(\d+)\s*\]", r"\[(.*)\]"
GRAMMAR: dict[str, re.Pattern] = {v: re.compile(p, re.S) for v, p in {
    "click": rf"click\s*{_ID}", "hover": rf"hover\s*{_ID}",
    "type": rf"type\s*{_ID}\s*\[(.*)\]\s*(?:\[\s*[01]\s*\])?",
    "press": r"press\s*\[(.+)\]", "scroll": r"scroll\s*\[\s*(?i:down|up)\s*\]",
    "new_tab": "new_tab", "tab_focus": rf"tab_focus\s*{_ID}", "close_tab": "close_tab",
    "goto": r"goto\s*\[(.+)\]", "go_back": "go_back", "go_forward": "go_forward", "stop": rf"stop\s*{_ANY}",
}.items()}


def action_verb(text) -> str | None:
    """The verb of ``text`` when the whole stripped string is one WebArena action (``GRAMMAR``),
    else None (also for a non-string). Never raises."""
    if not isinstance(text, str):
        return None
    s = text.strip()
    head = re.match(r"[a-z_]+", s)
    if head is None or head.group(0) not in GRAMMAR:
        return None
    return head.group(0) if GRAMMAR[head.group(0)].fullmatch(s) else None


@dataclass
class AgentStep:
    """One step of an episode: ``observation`` --``action``--> ``next_observation``.

    ``success``: the task check after this step; ``episode_success`` / ``episode_steps``: the
    episode's outcome and length; ``key``: the episode it belongs to (site, family, episode,
    seed); ``source``: "file: record i"; ``value``: the value label of the next state, when
    computed (``value_labels``). Fields the loaded file lacks are None."""

    objective: str
    url: str
    previous_actions: list[str]
    observation: str
    action: str
    next_observation: str
    site: str
    family: str
    agent: str
    source: str
    success: bool | None = None
    episode_success: bool | None = None
    episode_steps: int | None = None
    step: int | None = None
    key: tuple | None = None
    noise: float | None = None
    value: float | None = None


def _actions(value) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(a) for a in items if str(a) not in ("", "None")]


def episode_key(rec: dict) -> tuple:
    """The episode a step record belongs to, as ``value_labels`` groups steps: (site, family,
    episode, seed); ``episode`` and ``seed`` may be absent (None)."""
    return rec["site"], rec["family"], rec.get("episode"), rec.get("seed")


def load_agent_steps(path, required: dict, agents: tuple[str, ...] | None = None,
                     limit: int | None = None) -> list[AgentStep]:
    """The records of ``path`` (``.json`` array or ``.jsonl``) that carry ``required`` (field ->
    type; ``POLICY_FIELDS`` / ``VALUE_FIELDS``), whose ``agent`` is in ``agents`` (None: all),
    the first ``limit`` of them (None: all). Raises RecordError naming file, record and field."""
    out = []
    for i, rec in iter_records(path, required):
        if agents is not None and rec["agent"] not in agents:
            continue
        where = f"{path}: record {i}"
        out.append(AgentStep(
            rec["objective"], rec["url"], _actions(rec["previous_actions"]), rec["observation"],
            rec["current_action"], rec["next_state_acctree"], rec["site"], rec["family"], rec["agent"], where,
            rec.get("success"), rec.get("episode_success"), rec.get("episode_steps"), rec.get("step"),
            episode_key(rec), rec.get("noise")))
        if limit is not None and len(out) >= limit:
            break
    return out


def success_to_go(k: int, success: bool, later_success_steps: list[int], episode_success: bool,
                  episode_steps: int, gamma: float) -> float:
    """The value label of the state after step ``k`` (a Monte-Carlo success-to-go):
    1 if the task check holds after step k (``success``); else ``gamma ** (s - k)`` if the
    episode succeeds, s = the first step after k whose check holds (``later_success_steps``;
    none recorded, e.g. the builder dropped those records as duplicates of train records: the
    episode's last step ``episode_steps - 1``, where the check holds); else 0.
    Raises ValueError when the episode succeeds but no step after k could be the success."""
    if success:
        return 1.0
    if not episode_success:
        return 0.0
    later = sorted(s for s in later_success_steps if s > k)
    s = later[0] if later else episode_steps - 1
    if s <= k:
        raise ValueError(f"episode_success is true but step {k} is the last step "
                         f"(episode_steps={episode_steps}) and its check does not hold")
    return float(gamma ** (s - k))


def value_labels(steps: list[AgentStep], gamma: float) -> list[float]:
    """``success_to_go`` of every step (steps grouped into episodes by ``key``). Raises
    RecordError naming the record when its fields contradict each other."""
    successes: dict[tuple, list[int]] = defaultdict(list)
    for s in steps:
        if s.success:
            successes[s.key].append(s.step)
    out = []
    for s in steps:
        try:
            out.append(success_to_go(s.step, s.success, successes[s.key], s.episode_success,
                                     s.episode_steps, gamma))
        except ValueError as e:
            raise RecordError(f"{s.source}: {e}") from e
    return out


def value_bucket(v: float) -> int:
    """The digit 0-9 of a value in [0, 1]: ``floor(9 v + 1/2)`` (round half up)."""
    return int(min(max(v, 0.0), 1.0) * 9 + 0.5)


class PromptTooLong(ValueError):
    """A prompt does not fit the limit even with no tree line."""


def cut_tree(tree: str, lines: int | None) -> str:
    """The first ``lines`` lines of ``tree`` and a note of how many were cut (None: all)."""
    rows = tree.split("\n")
    if lines is None or lines >= len(rows):
        return tree
    return "\n".join(rows[:lines] + [f"({len(rows) - lines} more lines cut)"])


def fit_tree_prompt(render, tree: str, count, limit: int | None, source: str,
                    reduce: bool = True) -> tuple[str, str, int]:
    """``(prompt, reduction, length)``: ``render(tree_text)`` with as many of the tree's first
    lines as fit ``count(prompt) <= limit`` (reduction ``none`` or ``tree_cut``). Everything
    ``render`` puts around the tree is never cut. The last ``count`` call is on the returned
    prompt. Raises PromptTooLong naming ``source`` when it does not fit."""
    text = render(tree)
    length = count(text)
    if limit is None or length <= limit:
        return text, "none", length
    if not reduce:
        raise PromptTooLong(f"{source}: the prompt has {length} tokens, more than task.max_prompt_tokens="
                            f"{limit} (task.on_overflow=reduce cuts the tree's last lines)")
    if count(render(cut_tree(tree, 0))) > limit:
        raise PromptTooLong(f"{source}: the prompt has more than task.max_prompt_tokens={limit} tokens "
                            f"with no tree line; the objective is never cut")
    lo, hi = 0, len(tree.split("\n")) - 1  # the most lines that fit lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(render(cut_tree(tree, mid))) <= limit:
            lo = mid
        else:
            hi = mid - 1
    text = render(cut_tree(tree, lo))
    return text, "tree_cut", count(text)
