"""WebArena accessibility-tree text: parse into nodes and render back.

    tree = parse_tree(observation)          # never raises on any str
    render_tree(tree) == observation        # exact, for every str

Format (WebArena ``browser_env/processors.py``; reference ``language.md`` §4): one line per kept
AX node, ``"\\t" * depth + f"[{id}] {role} {name!r}"`` followed by `` key: value`` for each
property; the observation starts with the tab line(s) (``Tab 0 (current): <title>``) and a
blank line. ``id`` is the AX ``nodeId`` (an int; 0 is allowed here).

Parsing rule, chosen so that it can never raise and render is the exact inverse: a line is a
:class:`Node` when, after its leading tabs, it is ``[<digits>] <role> <python str literal>``
optionally followed by `` <properties>``, *and* rendering those fields gives the line back
character for character (e.g. a name written with ``"..."`` where ``repr`` would use
``'...'`` fails that check). Every other line (tab line, blank line, truncated or malformed
line) is kept as a text item: a :class:`Node` with ``id=None`` whose ``text`` is the line
after its leading tabs. String literals are decoded by a small escape decoder, never evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Node", "parse_tree", "render_node", "render_tree", "decode_literal", "element_nodes"]

_NODE_RE = re.compile(r"\[(\d+)\] (\S+) ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")(?: (.*))?\Z", re.S)
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "0": "\0"}
_HEX = {"x": 2, "u": 4, "U": 8}
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Node:
    """One rendered line. ``id`` None marks a text item (``text`` holds the line, tabs removed).

    Fields: ``id`` AX node id (int >= 0) or None; ``role`` e.g. ``"link"``; ``name`` the
    accessible name (decoded); ``properties`` the text after the name (``"focused: True"``),
    ``""`` when none; ``depth`` the number of leading tabs; ``text`` for text items.
    """

    id: int | None
    role: str = ""
    name: str = ""
    properties: str = ""
    depth: int = 0
    text: str = ""

    @property
    def content(self) -> str:
        """WMA's ``content``: the line after ``[id] role`` (the name literal and properties)."""
        if self.id is None:
            return self.text
        return render_node(self, tabs=False).split(" ", 2)[2]


def decode_literal(literal: str) -> str:
    """The value of a Python str literal written by ``repr`` (quotes included). Unknown or
    truncated escapes are kept as written; never raises."""
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\" or i + 1 >= len(body):
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in _HEX:
            digits = body[i + 2:i + 2 + _HEX[e]]
            try:
                if len(digits) != _HEX[e] or not all(d in _HEXDIGITS for d in digits):
                    raise ValueError(digits)
                out.append(chr(int(digits, 16)))
                i += 2 + _HEX[e]
            except ValueError:  # not hex, truncated, or beyond U+10FFFF: keep as written
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _parse_line(line: str) -> Node:
    body = line.lstrip("\t")
    depth = len(line) - len(body)
    m = _NODE_RE.match(body)
    if m:
        node = Node(int(m.group(1)), m.group(2), decode_literal(m.group(3)), m.group(4) or "", depth)
        if render_node(node) == line and m.group(4) != "":
            return node
    return Node(None, depth=depth, text=body)


def parse_tree(text: str) -> list[Node]:
    """Nodes and text items of ``text``, one per ``\\n``-separated line (module docstring).

    Never raises for a ``str``; TypeError for other types."""
    if not isinstance(text, str):
        raise TypeError(f"parse_tree expects str, got {type(text).__name__}")
    return [_parse_line(line) for line in text.split("\n")]


def render_node(node: Node, tabs: bool = True) -> str:
    """The line of one node: ``[id] role 'name' properties``, tab-indented when ``tabs``."""
    indent = "\t" * node.depth if tabs else ""
    if node.id is None:
        return indent + node.text
    line = f"[{node.id}] {node.role} {node.name!r}"
    return indent + (f"{line} {node.properties}" if node.properties else line)


def render_tree(nodes: list[Node]) -> str:
    """Inverse of :func:`parse_tree`: the lines of ``nodes`` joined by ``\\n``."""
    return "\n".join(render_node(n) for n in nodes)


def element_nodes(nodes: list[Node]) -> list[Node]:
    """The nodes that carry an id (text items dropped)."""
    return [n for n in nodes if n.id is not None]
