"""WebArena's accessibility-tree observation as pure functions of the CDP node list.

Source: WebArena ``browser_env/processors.py`` (``fetch_page_accessibility_tree``,
``parse_accessibility_tree``, ``clean_accesibility_tree``); reference ``language.md`` §4.
The browser part (:mod:`worldmodels.envs.web.browser`) only fetches
``Accessibility.getFullAXTree`` and each node's ``getBoundingClientRect``; everything here is
deterministic text processing, unit-tested on hand-made node lists.

    nodes = dedup_nodes(cdp_nodes)                         # first of each nodeId kept
    kept = viewport_filter(nodes, bounds, 1280, 2048)      # < 0.6 in view: removed, children spliced
    tree, info = render_accessibility_tree(kept)           # "[id] role 'name' props", tab-indented
    text = tab_line([title]) + clean_tree(tree)

Ids: WebArena shows Chromium's AX ``nodeId``; Chromium's order for them varies between loads of
the same page, so by default :func:`observation_text` renumbers nodes by tree pre-order
(:func:`renumber`); ``ax_ids=True`` keeps the raw ids.
"""

from __future__ import annotations

import copy
import re

__all__ = ["IGNORED_PROPERTIES", "SKIPPED_ROLES", "IN_VIEWPORT_RATIO_THRESHOLD", "dedup_nodes",
           "viewport_ratio", "viewport_filter", "render_accessibility_tree", "clean_tree",
           "tab_line", "renumber", "observation_text"]

#: WebArena ``IGNORED_ACTREE_PROPERTIES``: properties never rendered.
IGNORED_PROPERTIES = ("focusable", "editable", "readonly", "level", "settable", "multiline",
                      "invalid")
#: Roles whose node is skipped (children one level up) when its name is empty and it has no
#: rendered property; a ``listitem`` with an empty name is skipped even with properties.
SKIPPED_ROLES = ("generic", "img", "list", "strong", "paragraph", "banner", "navigation",
                 "Section", "LabelText", "Legend", "listitem")
#: A node with less of its area than this inside the viewport is removed.
IN_VIEWPORT_RATIO_THRESHOLD = 0.6
_STATIC_RE = re.compile(r"\[\d+\] StaticText '([^']+)'")


def dedup_nodes(nodes: list[dict]) -> list[dict]:
    """The CDP node list with repeated ``nodeId`` s dropped (first kept), deep-copied."""
    seen, out = set(), []
    for n in nodes:
        if n.get("nodeId") not in seen:
            seen.add(n.get("nodeId"))
            out.append(copy.deepcopy(n))
    return out


def viewport_ratio(x: float, y: float, width: float, height: float, win_width: float,
                   win_height: float, webarena_bug: bool = False) -> float:
    """Fraction of the box (client coordinates, CSS px) inside ``[0, win_width] x [0,
    win_height]``: overlap area / (width * height).

    ``webarena_bug=True`` reproduces WebArena's expression ``ow * oh / width * height`` (Python
    precedence makes it ``ow * oh * height / width``), which keeps almost every partially
    visible node taller than ~1 px; the default is the intended ratio. Width/height must be > 0.
    """
    ow = max(0.0, min(x + width, win_width) - max(x, 0.0))
    oh = max(0.0, min(y + height, win_height) - max(y, 0.0))
    if webarena_bug:
        return ow * oh / width * height
    return ow * oh / (width * height)


def viewport_filter(nodes: list[dict], bounds: dict, win_width: float, win_height: float,
                    threshold: float = IN_VIEWPORT_RATIO_THRESHOLD,
                    webarena_bug: bool = False) -> list[dict]:
    """Remove nodes outside the viewport, splicing each removed node's children into its
    parent's ``childIds`` at its place (WebArena ``current_viewport_only``).

    ``nodes``: deduplicated CDP nodes (``nodeId``, ``parentId``, ``childIds``, ...), root first.
    ``bounds``: nodeId -> ``(x, y, width, height)`` or None (no backend node / error). A
    ``RootWebArea`` is always in view. Removed: no bounds, zero width or height, or
    :func:`viewport_ratio` < ``threshold``. Returns new dicts; the input is not modified.
    """
    nodes = [copy.deepcopy(n) for n in nodes]
    cursor = {n["nodeId"]: i for i, n in enumerate(nodes)}
    removed = set()

    def remove(node):
        parent = cursor.get(node.get("parentId"))
        if parent is not None:
            siblings = nodes[parent].setdefault("childIds", [])
            if node["nodeId"] in siblings:
                at = siblings.index(node["nodeId"])
                siblings[at:at + 1] = list(node.get("childIds", []))
            for child in node.get("childIds", []):
                if child in cursor:
                    nodes[cursor[child]]["parentId"] = node.get("parentId")
        removed.add(node["nodeId"])

    for node in nodes:
        if (node.get("role") or {}).get("value") == "RootWebArea":
            continue
        box = bounds.get(node["nodeId"])
        if not box or box[2] == 0 or box[3] == 0:
            remove(node)
        elif viewport_ratio(*box, win_width, win_height, webarena_bug) < threshold:
            remove(node)
    return [n for n in nodes if n["nodeId"] not in removed]


def render_accessibility_tree(nodes: list[dict]) -> tuple[str, dict]:
    """WebArena ``parse_accessibility_tree``: depth-first from ``nodes[0]``.

    Returns ``(tree_text, info)``; ``info`` maps the rendered AX nodeId (str, as CDP gives it)
    to ``{"backend_id", "text"}`` (``text`` = the line without indentation). A node lacking a
    role or name value is skipped like WebArena's ``except`` branch does.
    """
    if not nodes:
        return "", {}
    index = {n["nodeId"]: i for i, n in enumerate(nodes)}
    info: dict = {}

    def dfs(i: int, depth: int) -> str:
        node, out, valid = nodes[i], "", True
        try:
            role, name = node["role"]["value"], node["name"]["value"]
            line = f"[{node['nodeId']}] {role} {name!r}"
            props = []
            for p in node.get("properties", []):
                try:
                    if p["name"] not in IGNORED_PROPERTIES:
                        props.append(f"{p['name']}: {p['value']['value']}")
                except (KeyError, TypeError):
                    pass
            if props:
                line += " " + " ".join(props)
            if not str(name).strip():
                if (not props and role in SKIPPED_ROLES) or (props and role == "listitem"):
                    valid = False
            if valid:
                out += "\t" * depth + line
                info[node["nodeId"]] = {"backend_id": node.get("backendDOMNodeId"), "text": line}
        except (KeyError, TypeError):
            valid = False
        for child in node.get("childIds", []):
            if child not in index:
                continue
            s = dfs(index[child], depth + 1 if valid else depth)
            if s.strip():
                if out.strip():
                    out += "\n"
                out += s
        return out

    return dfs(0, 0), info


def clean_tree(tree: str) -> str:
    """WebArena ``clean_accesibility_tree``: a line containing ``statictext`` (any case) is kept
    only when it matches ``[id] StaticText '<text>'`` and ``<text>`` is in none of the three
    kept lines before it (so a StaticText whose repr uses double quotes is dropped, as there)."""
    kept: list[str] = []
    for line in tree.split("\n"):
        if "statictext" in line.lower():
            m = _STATIC_RE.search(line)
            if m and all(m.group(1) not in prev for prev in kept[-3:]):
                kept.append(line)
        else:
            kept.append(line)
    return "\n".join(kept)


def tab_line(titles: list[str], current: int = 0) -> str:
    """``Tab 0 (current): <title> | Tab 1: <title>`` followed by a blank line (``\\n\\n``)."""
    parts = [f"Tab {i} (current): {t}" if i == current else f"Tab {i}: {t}"
             for i, t in enumerate(titles)]
    return " | ".join(parts) + "\n\n"


def renumber(nodes: list[dict], bounds: dict) -> tuple[list[dict], dict]:
    """Replace AX ``nodeId`` s by their 1-based pre-order rank in the tree from ``nodes[0]``
    (unreached nodes after, in list order); returns ``(nodes, bounds)`` with the new ids.

    Why: Chromium hands out AX ids from a counter whose order for the first nodes of a page
    varies between runs (measured: the same page loaded twice gave ``[2] RootWebArea`` and
    ``[4] RootWebArea``), so raw ids break same-seed determinism. Ranks depend only on the tree.
    """
    index = {n["nodeId"]: i for i, n in enumerate(nodes)}
    order: list = []
    stack = [nodes[0]["nodeId"]] if nodes else []
    seen = set()
    while stack:
        nid = stack.pop()
        if nid in seen or nid not in index:
            continue
        seen.add(nid)
        order.append(nid)
        stack.extend(reversed(nodes[index[nid]].get("childIds", [])))
    order += [n["nodeId"] for n in nodes if n["nodeId"] not in seen]
    new = {old: str(i + 1) for i, old in enumerate(order)}
    out = []
    for n in nodes:
        n = copy.deepcopy(n)
        n["nodeId"] = new[n["nodeId"]]
        if "parentId" in n:
            n["parentId"] = new.get(n["parentId"], n["parentId"])
        n["childIds"] = [new.get(c, c) for c in n.get("childIds", [])]
        out.append(n)
    return out, {new[k]: v for k, v in bounds.items() if k in new}


def observation_text(cdp_nodes: list[dict], bounds: dict, titles: list[str],
                     win_width: float = 1280, win_height: float = 2048,
                     webarena_bug: bool = False, ax_ids: bool = False) -> tuple[str, dict]:
    """The whole pipeline: (observation text, info) — module docstring. ``info`` maps each
    rendered id to ``{"backend_id", "text", "bounds"}`` (``bounds`` = ``(x, y, w, h)``, CSS px).

    Ids: by default the pre-order ranks of :func:`renumber` (deterministic); ``ax_ids=True``
    keeps Chromium's raw AX ``nodeId`` s as WebArena shows them (compat switch)."""
    nodes = dedup_nodes(cdp_nodes)
    if not ax_ids:
        nodes, bounds = renumber(nodes, bounds)
    kept = viewport_filter(nodes, bounds, win_width, win_height,
                           webarena_bug=webarena_bug)
    tree, info = render_accessibility_tree(kept)
    for nid, entry in info.items():
        entry["bounds"] = bounds.get(nid)
    return tab_line(titles) + clean_tree(tree), info
