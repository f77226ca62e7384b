"""web_tree: parse / render of WebArena accessibility trees."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from worldmodels.web_tree import Node, decode_literal, parse_tree, render_node, render_tree


def test_round_trip_every_shared_observation(wma_trees):
    assert len(wma_trees) == 30  # 5 records x 2 trees x 3 files
    for name, i, field, text in wma_trees:
        nodes = parse_tree(text)
        assert render_tree(nodes) == text, (name, i, field)
        # every bracketed line is a node: only the tab line and the blank line after it are text
        texts = [n.text for n in nodes if n.id is None]
        assert all(t == "" or t.startswith("Tab 0 (current): ") for t in texts), (name, i, field, texts)
        assert sum(n.id is not None for n in nodes) == sum(line.lstrip("\t").startswith("[") for line in text.split("\n"))


def test_fields_hand_parsed():
    text = "Tab 0 (current): Shop\n\n[1] RootWebArea 'Shop' focused: True\n\t[7] link \"Bob's\"\n\t\t[0] button ''"
    nodes = parse_tree(text)
    assert nodes[0] == Node(None, text="Tab 0 (current): Shop") and nodes[1] == Node(None, text="")
    assert nodes[2] == Node(1, "RootWebArea", "Shop", "focused: True", 0)
    assert nodes[3] == Node(7, "link", "Bob's", "", 1)  # repr uses double quotes here
    assert nodes[4] == Node(0, "button", "", "", 2)      # id 0 is a node
    assert nodes[2].content == "'Shop' focused: True" and nodes[3].content == '"Bob\'s"'
    assert render_tree(nodes) == text


def test_malformed_lines_are_text_items():
    for line in ["[12] link", "[x] link 'a'", "[3] link 'unterminated", "[4] link \"a\"", "[5]  link 'a'",
                 "[6] link 'a' ", "  [7] link 'a'"]:
        (node,) = parse_tree(line)
        assert node.id is None and render_node(node) == line, line
    (node,) = parse_tree("[8] StaticText " + repr("a\nb\x00é\\"))  # escapes as repr writes them
    assert node.id == 8 and node.name == "a\nb\x00é\\"
    # a literal repr would not write (\x41 for 'A') is not WebArena's rendering: kept as text
    assert parse_tree("[9] StaticText '\\x41'")[0].id is None


def test_decode_literal_matches_repr():
    for s in ["", "plain", "it's", 'say "hi"', "tab\tnl\n", "\ue60b icon", "back\\slash", "\x00\x7f", "é€😀"]:
        assert decode_literal(repr(s)) == s
    assert decode_literal("'bad \\x4 and \\q'") == "bad \\x4 and \\q"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("[]0123 '\"\\\tnx\nab:")) | st.characters(), max_size=80))
def test_parse_never_raises_and_round_trips(text):
    assert render_tree(parse_tree(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.from_regex(r"[A-Za-z]{1,10}", fullmatch=True), st.text(max_size=20),
       st.sampled_from(["", "focused: True", "expanded: False required: True"]), st.integers(0, 5))
def test_rendered_nodes_parse_back(node_id, role, name, props, depth):
    node = Node(node_id, role, name, props, depth)
    assert parse_tree(render_node(node)) == [node]
