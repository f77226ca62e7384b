"""Web world-model prompts: the ``rlvr_world`` and ``compact`` styles, and the reduction that
fits a prompt into a model's context.

    text = render_prompt(t, "rlvr_world")                        # one user message
    text, reduction, n = fit_prompt(t, "compact", count, limit=512)

``rlvr_world`` (RLVR-World ``lang_wm/webagent/agent/prompts/jsons/state_prediction/
rlvr_world_model_prompt.json``; reference ``language.md`` §1.3), one user message in this order:
the role (predict the web page's change after an action), the action grammar (click, type,
hover, press, scroll, new_tab, tab_focus, close_tab, goto, go_back, go_forward, stop), the rules
(reason, then predict), the output format (sections ``New items:`` / ``Deleted items:`` /
``Updated items:``, a blank line between them, ``None`` for an empty one, one
``[ID] role 'content' properties`` item a line), a worked example, then the fields ``URL``,
``OBJECTIVE``, ``PREVIOUS ACTION``, ``CURRENT OBSERVATION`` and ``CURRENT ACTION``. There is no
answer marker: the whole response is parsed. The section headers and field labels are the
original's; the instruction sentences and the worked example are ours (same content and
order, not the original's wording, which is not in our reference).

``compact``: the tree and the action only (``Tree:`` ... ``Action:`` ...), for tiny models.

Reduction (``fit_prompt``): when a prompt is longer than the limit, ``rlvr_world`` first drops
the worked example (``no_example``); then the tree's last lines are cut, as few as possible
(``tree_cut``, the prompt says ``(N more lines cut)``). The action and every other field are
never cut; if the prompt without any tree line is still too long, an error names the record.
"""

from __future__ import annotations

STYLES = ("rlvr_world", "compact")

ACTIONS = """`click [id]`: click on an element with the given id on the page.
`type [id] [content] [press_enter_after=0|1]`: type the content into the field with the given id; Enter is pressed after typing unless press_enter_after is 0.
`hover [id]`: hover over an element with the given id.
`press [key_comb]`: press a key combination (e.g. Ctrl+v).
`scroll [down|up]`: scroll the page down or up.
`new_tab`: open a new, empty browser tab.
`tab_focus [tab_index]`: switch the focus to the browser tab with the given index.
`close_tab`: close the current tab.
`goto [url]`: navigate to a URL.
`go_back`: go to the previously viewed page.
`go_forward`: go to the next page (after a go_back).
`stop [answer]`: end the task, with an answer if one is asked for."""

EXAMPLE = """Example.
URL: http://shop.example/cart
OBJECTIVE: Remove the mug from the cart
PREVIOUS ACTION:
None
CURRENT OBSERVATION:
[1] RootWebArea 'Cart'
\t[5] link 'Mug'
\t[6] button 'Remove mug'
\t[7] StaticText 'Total: $12.00'
CURRENT ACTION:
click [6]
Expected prediction:
Removing the mug deletes its link and button and sets the total to zero.
New items:
[8] StaticText 'Your cart is empty'

Deleted items:
[5] link 'Mug'
[6] button 'Remove mug'

Updated items:
[7] StaticText 'Total: $0.00'
"""


def _intro(with_example: bool) -> str:
    return ("You are a world model of web pages: given the accessibility tree of the current web page, "
            "the user's objective, the previous actions and the current action, you predict how the "
            "page changes after the current action.\n\n"
            f"These are the actions that can be taken on a page:\n{ACTIONS}\n\n"
            "Rules:\n1. First reason briefly about what the action does to the page.\n"
            "2. Then predict the change directly, in the format below.\n\n"
            "Output format: three sections, 'New items:', 'Deleted items:' and 'Updated items:', in "
            "this order with a blank line between them. Under each header list one item per line as "
            "[ID] type 'content' properties, as in the tree; write None when a section is empty. "
            "Updated items are shown as they are after the action.\n\n"
            + (EXAMPLE + "\n" if with_example else ""))


def _fields(t, tree: str) -> str:
    prev = "\n".join(str(a) for a in t.previous_actions) or "None"
    return (f"URL: {t.url}\nOBJECTIVE: {t.objective}\nPREVIOUS ACTION:\n{prev}\n"
            f"CURRENT OBSERVATION:\n{tree}\nCURRENT ACTION:\n{t.action}\n")


def render_prompt(t, style: str, with_example: bool = True, tree_lines: int | None = None) -> str:
    """The user message of transition ``t`` (a ``WebTransition``); ``tree_lines`` keeps only the
    observation's first N lines (None: all) and notes how many were cut."""
    lines = t.observation.split("\n")
    tree = t.observation
    if tree_lines is not None and tree_lines < len(lines):
        tree = "\n".join(lines[:tree_lines] + [f"({len(lines) - tree_lines} more lines cut)"])
    if style == "compact":
        return f"Tree:\n{tree}\nAction: {t.action}\n"
    if style == "rlvr_world":
        return _intro(with_example) + _fields(t, tree)
    raise ValueError(f"prompt style must be one of {STYLES}, got {style!r}")


class PromptTooLong(ValueError):
    """A prompt does not fit the limit even with no tree line."""


def fit_prompt(t, style: str, count, limit: int | None, reduce: bool = True) -> tuple[str, str, int]:
    """``(prompt, reduction, length)``: the fullest prompt with ``count(prompt) <= limit``
    (module docstring). ``reduction`` is ``none``, ``no_example`` or ``tree_cut``.
    Raises PromptTooLong naming the record, the length and the limit."""
    text = render_prompt(t, style)
    length = count(text)
    if limit is None or length <= limit:
        return text, "none", length
    if not reduce:
        raise PromptTooLong(f"{t.source}: the {style} prompt has {length} tokens, more than "
                            f"task.max_prompt_tokens={limit} (task.on_overflow=reduce cuts the tree; "
                            f"never the action)")
    with_example = style != "rlvr_world"
    if style == "rlvr_world":
        text = render_prompt(t, style, with_example=False)
        length = count(text)
        if length <= limit:
            return text, "no_example", length
    lo, hi = 0, len(t.observation.split("\n")) - 1  # the most lines that fit lies in [lo, hi]
    text = render_prompt(t, style, with_example, tree_lines=0)
    length = count(text)
    if length > limit:
        raise PromptTooLong(f"{t.source}: the {style} prompt has {length} tokens with no tree line, "
                            f"more than task.max_prompt_tokens={limit}; the action is never cut")
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(render_prompt(t, style, with_example, tree_lines=mid)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    text = render_prompt(t, style, with_example, tree_lines=lo)
    return text, "tree_cut", count(text)
