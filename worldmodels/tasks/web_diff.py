"""Accessibility-tree diffs in WMA's format, their text parser, and apply-diff.

    d = tree_diff(current_text, next_text, mode="wma")     # a WebDiff
    d.to_text()   # "New items:\\n...\\n\\nDeleted items:\\n...\\n\\nUpdated items:\\n..."
    parse_diff_text(model_output)                           # a WebDiff; never raises
    apply_diff(tree_diff(a, b, mode="clean"), a)            # same_nodes(..., b) is True

Modes (reference ``language.md`` §2.2, WMA ``annotation_for_tao_torch.py``; §2.7):

``wma`` - WMA's algorithm. Each line has its tabs deleted and is matched with
``\\[(\\d+)\\]\\s*(\\S+)\\s*(.*)`` into ``(id, role, content)``; lines without an id and lines with
id 0 (WMA tests the id for truthiness) are skipped; records are keyed by id, so a duplicate id
keeps the last line at the first one's place. Cost (rows = current, columns = next)
``-100*[content_i == content_j] - 0.5*[role_i == role_j]``, solved by scipy's
``linear_sum_assignment`` on the rectangular matrix. *updated*: matched pairs whose records
differ, id included (= their lines differ), as the next line, in current-row order; *new*: next
nodes left unmatched, in next order; *deleted*: current nodes whose id is not among the matched
next nodes' ids, in current order (so a node that moved to another id is both updated and
deleted). WMA used pygmtools' Hungarian solver; among equal-cost assignments it can pick other
pairs than scipy, which changes *updated* (see tests/web/test_web_diff_gold.py). WMA's crash
when a tree is empty is fixed: everything is deleted / new.

``clean`` - a diff that :func:`apply_diff` inverts. Every node :func:`web_tree.parse_tree`
reads counts (id 0 included; lines that do not re-render exactly are text items and ignored).
Ids are assumed unique within a tree, as WebArena's AX node ids are; with duplicate ids an
update may be applied to the wrong one of them. Cost
``-100*content_eq - 0.5*role_eq - 0.01*id_eq`` (the id term only breaks ties, preferring the
same node). A matched pair is *unchanged* when role and content are equal (the id is not
compared, so a renumbered node is not an update), *updated* when the ids are equal and role or
content differ, and otherwise (different ids and different content) the current node is
*deleted* and the next node is *new*. Unmatched current nodes are deleted, unmatched next nodes
new. Tree equality for apply is :func:`same_nodes`: the multiset of ``(role, content)``, since
the diff format carries neither ids of unchanged nodes nor positions.

A section's text is its lines joined by ``\\n`` and stripped, or ``None`` when empty.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from worldmodels.web_tree import Node, _parse_line, parse_tree

__all__ = ["MODES", "SECTIONS", "NO_CHANGE", "WebDiff", "gold_fields", "tree_diff", "wma_records", "split_sections",
           "parse_diff_text", "apply_diff", "same_nodes"]

MODES = ("wma", "clean")
SECTIONS = ("New items:", "Deleted items:", "Updated items:")
NO_CHANGE = "Previous Action did not make any changes."
_WMA_LINE = re.compile(r"\[(\d+)\]\s*(\S+)\s*(.*)")


@dataclass
class WebDiff:
    """Item lines (``[id] role 'name' properties``, no tabs) of the three sections."""

    new: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.new or self.deleted or self.updated)

    def sections(self) -> dict[str, str]:
        """``{"new_items", "deleted_items", "updated_items"}`` -> WMA's section string."""
        return {f"{k}_items": "\n".join(getattr(self, k)).strip() or "None" for k in ("new", "deleted", "updated")}

    def to_text(self) -> str:
        """``New items:\\n…\\n\\nDeleted items:\\n…\\n\\nUpdated items:\\n…`` (``None`` if empty)."""
        s = self.sections()
        return (f"New items:\n{s['new_items']}\n\nDeleted items:\n{s['deleted_items']}\n\n"
                f"Updated items:\n{s['updated_items']}")

    def tao(self, action: str | None = None) -> str:
        """WMA's ``next_state_tao``: :data:`NO_CHANGE` when nothing changed or action is "None"."""
        return NO_CHANGE if self.empty or action == "None" else self.to_text()


def wma_records(text: str) -> list[tuple[int, str, str, str]]:
    """WMA's parse: ``(id, role, content, line)`` per kept line, dict semantics by id."""
    recs: dict[int, tuple[int, str, str, str]] = {}
    for raw in text.split("\n"):
        line = raw.replace("\t", "")
        m = _WMA_LINE.match(line)
        if m and int(m.group(1)):
            recs[int(m.group(1))] = (int(m.group(1)), m.group(2), m.group(3), line)
    return list(recs.values())


def _nodes(tree: str | list[Node]) -> list[Node]:
    nodes = parse_tree(tree) if isinstance(tree, str) else tree
    return [n for n in nodes if n.id is not None]


def _match(cur: list, nxt: list, id_weight: float) -> list[tuple[int, int]]:
    """Optimal pairs (i, j) for cost -100 content_eq - 0.5 role_eq - id_weight id_eq."""
    if not cur or not nxt:
        return []
    def col(values):
        index: dict = {}
        return np.array([index.setdefault(v, len(index)) for v in values])
    _, role_c, content_c = (col([r[k] for r in cur] + [r[k] for r in nxt]) for k in range(3))
    n = len(cur)
    cost = (-100.0 * (content_c[:n, None] == content_c[None, n:])
            - 0.5 * (role_c[:n, None] == role_c[None, n:]))
    if id_weight:
        ids = np.array([r[0] for r in cur]), np.array([r[0] for r in nxt])
        cost = cost - id_weight * (ids[0][:, None] == ids[1][None, :])
    rows, cols = linear_sum_assignment(cost)
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


def tree_diff(current: str | list[Node], next_: str | list[Node], mode: str = "clean") -> WebDiff:
    """The diff from ``current`` to ``next_`` (rendered tree text, or nodes in clean mode).

    ValueError for an unknown mode; any text is accepted."""
    if mode not in MODES:
        raise ValueError(f"unknown diff mode {mode!r}; expected one of {MODES}")
    if mode == "wma":
        if not (isinstance(current, str) and isinstance(next_, str)):
            raise TypeError("wma mode takes the rendered tree texts")
        cur, nxt = wma_records(current), wma_records(next_)
        pairs = _match(cur, nxt, 0.0)
        matched_next = {j for _, j in pairs}
        matched_ids = {nxt[j][0] for j in matched_next}
        return WebDiff(new=[r[3] for j, r in enumerate(nxt) if j not in matched_next],
                       deleted=[r[3] for r in cur if r[0] not in matched_ids],
                       updated=[nxt[j][3] for i, j in pairs if cur[i][3] != nxt[j][3]])
    cn, nn = _nodes(current), _nodes(next_)
    cur = [(n.id, n.role, n.content) for n in cn]
    nxt = [(n.id, n.role, n.content) for n in nn]
    kept_c, kept_n, updated = set(), set(), []
    for i, j in _match(cur, nxt, 0.01):
        if cur[i][1:] == nxt[j][1:]:
            kept_c.add(i), kept_n.add(j)
        elif cur[i][0] == nxt[j][0]:
            kept_c.add(i), kept_n.add(j)
            updated.append(_line(nn[j]))
    return WebDiff(new=[_line(n) for j, n in enumerate(nn) if j not in kept_n],
                   deleted=[_line(n) for i, n in enumerate(cn) if i not in kept_c], updated=updated)


def gold_fields(current: str, next_: str, action: str) -> tuple[dict, bool]:
    """A transition's gold-diff record fields in WMA's WebArena format (``new_items``,
    ``deleted_items``, ``updated_items`` of :func:`tree_diff` in ``clean`` mode, and
    ``next_state_tao``) and whether the action changed nothing. ``wm data build web`` passes
    this to :func:`worldmodels.envs.web.build.build_web_dataset`, which does not import tasks."""
    diff = tree_diff(current, next_, mode="clean")
    tao = diff.tao(action)
    return {**diff.sections(), "next_state_tao": tao}, tao == NO_CHANGE


def _line(node: Node) -> str:
    return f"[{node.id}] {node.role} {node.content}"


def split_sections(text: str) -> dict[str, list[str]]:
    """RLVR-World's ``parse_magento_log`` walk: a line whose stripped text starts with a
    section header switches to that section (the rest of that line is ignored); every later
    non-empty stripped line is an item of it, ``None`` included. Text before the first header
    is ignored. Returns header -> items in order (duplicates kept); never raises on a str."""
    out: dict[str, list[str]] = {}
    current = None
    for raw in str(text).split("\n"):
        line = raw.strip()
        header = next((h for h in SECTIONS if line.startswith(h)), None)
        if header is not None:
            current = header
            out.setdefault(header, [])
        elif current is not None and line:
            out[current].append(line)
    return out


def parse_diff_text(text: str) -> WebDiff:
    """A :class:`WebDiff` from diff text (e.g. model output): :func:`split_sections`, ``None``
    items dropped, duplicates dropped (first kept). Never raises on a str."""
    sec = split_sections(text)
    def items(h):
        return list(dict.fromkeys(x for x in sec.get(h, []) if x != "None"))
    return WebDiff(new=items(SECTIONS[0]), deleted=items(SECTIONS[1]), updated=items(SECTIONS[2]))


def apply_diff(diff: WebDiff | str, tree: str | list[Node]) -> list[Node]:
    """``tree``'s id-carrying nodes with ``diff`` (clean mode) applied; text items dropped.

    Deleted items remove the first remaining node with the same id, role and content; updated
    items replace the role/name/properties of the remaining node with their id (kept at its
    place and depth), or are appended when there is none; new items are appended at depth 0.
    Items that are not node lines, and deletions that match nothing, are ignored. Never raises
    on text. ``same_nodes(apply_diff(tree_diff(a, b, "clean"), a), b)`` holds for all trees."""
    if isinstance(diff, str):
        diff = parse_diff_text(diff)
    nodes: list[Node | None] = list(_nodes(tree))
    for item in diff.deleted:
        d = _parse_line(item)
        for k, n in enumerate(nodes):
            if n is not None and d.id is not None and (n.id, n.role, n.content) == (d.id, d.role, d.content):
                nodes[k] = None
                break
    appended = []
    for item in diff.updated:
        u = _parse_line(item)
        if u.id is None:
            continue
        k = next((k for k, n in enumerate(nodes) if n is not None and n.id == u.id), None)
        if k is None:
            appended.append(u)
        else:
            nodes[k] = Node(u.id, u.role, u.name, u.properties, nodes[k].depth)
    appended += [n for n in map(_parse_line, diff.new) if n.id is not None]
    return [n for n in nodes if n is not None] + appended


def same_nodes(a: str | list[Node], b: str | list[Node]) -> bool:
    """Whether ``a`` and ``b`` hold the same multiset of ``(role, content)`` nodes (ids,
    order, depth and text items not compared; see the module docstring)."""
    return Counter((n.role, n.content) for n in _nodes(a)) == Counter((n.role, n.content) for n in _nodes(b))
