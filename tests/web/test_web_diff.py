"""web_diff: WMA's diff (wma mode), the clean mode, apply-diff and the diff-text parser."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from worldmodels.tasks.web_diff import (
    NO_CHANGE,
    WebDiff,
    apply_diff,
    parse_diff_text,
    same_nodes,
    tree_diff,
    wma_records,
)
from worldmodels.web_tree import Node, render_tree

A = "Tab 0 (current): S\n\n[1] RootWebArea 'S'\n\t[2] button 'Menu' expanded: False\n\t[3] link 'Home'"
B = "Tab 0 (current): S\n\n[1] RootWebArea 'S'\n\t[2] button 'Menu' expanded: True\n\t[3] link 'Home'\n\t[4] link 'Cart'"


def test_wma_hand_worked():
    # costs: 1-1 and 3-3 are -100.5; row 2 pairs with the button [2] (-0.5) rather than link [4] (0)
    d = tree_diff(A, B, "wma")
    assert d == WebDiff(new=["[4] link 'Cart'"], deleted=[], updated=["[2] button 'Menu' expanded: True"])
    assert d.to_text() == ("New items:\n[4] link 'Cart'\n\nDeleted items:\nNone\n\n"
                           "Updated items:\n[2] button 'Menu' expanded: True")
    assert d.tao("click [2]") == d.to_text() and d.tao("None") == NO_CHANGE
    assert tree_diff(A, A, "wma").tao("click [2]") == NO_CHANGE
    assert tree_diff(A, B, "clean") == d  # ids stable: both modes agree


def test_moved_node_wma_vs_clean():
    # WMA: a pair across ids differs as a record (the id is in it) -> updated, and the old id is
    # not among the matched next ids -> deleted as well. clean: a renumbered node is unchanged.
    assert tree_diff("[5] link 'A'", "[6] link 'A'", "wma") == WebDiff([], ["[5] link 'A'"], ["[6] link 'A'"])
    assert tree_diff("[5] link 'A'", "[6] link 'A'", "clean") == WebDiff()
    # clean: different id and different content is a deletion plus an addition, never an update
    assert tree_diff("[1] link 'A'", "[2] button 'B'", "clean") == WebDiff(["[2] button 'B'"], ["[1] link 'A'"], [])
    assert tree_diff("[1] link 'A'", "[1] link 'B'", "clean") == WebDiff([], [], ["[1] link 'B'"])


def test_id_zero_duplicates_and_empty_trees():
    # WMA skips id 0 (truthiness test); clean keeps it
    assert tree_diff("[0] link 'A'\n[1] link 'B'", "[1] link 'B'", "wma") == WebDiff()
    assert tree_diff("[0] link 'A'\n[1] link 'B'", "[1] link 'B'", "clean") == WebDiff([], ["[0] link 'A'"], [])
    # WMA keys records by id: the last line of a duplicate id wins, at the first one's place
    assert [r[3] for r in wma_records("[1] link 'A'\n[2] link 'X'\n[1] link 'B'")] == ["[1] link 'B'", "[2] link 'X'"]
    # empty trees (WMA crashes here): everything is new / deleted
    for mode in ("wma", "clean"):
        assert tree_diff("", "[1] link 'A'", mode) == WebDiff(new=["[1] link 'A'"])
        assert tree_diff("Tab 0 (current): x\n\n[1] link 'A'", "Tab 0 (current): x", mode) == WebDiff(deleted=["[1] link 'A'"])
        assert tree_diff("", "", mode).tao("click [1]") == NO_CHANGE


def test_tie_breaking_is_deterministic():
    a, b = "[1] link 'X'\n[2] link 'X'", "[3] link 'X'"
    first = tree_diff(a, b, "wma")
    assert all(tree_diff(a, b, "wma") == first for _ in range(5))
    assert len(first.updated) == 1 and len(first.deleted) == 2  # either pair: id 3 is new to both
    # clean mode prefers the same id among equal costs
    assert tree_diff(a, "[2] link 'X'", "clean") == WebDiff(deleted=["[1] link 'X'"])


def test_parse_diff_text():
    text = ("reasoning first\nNew items:\n[4] link 'Cart'\n  [4] link 'Cart'  \n\nDeleted items:\nNone\n"
            "Updated items: (trailing ignored)\n[2] button 'Menu' expanded: True")
    assert parse_diff_text(text) == WebDiff(["[4] link 'Cart'"], [], ["[2] button 'Menu' expanded: True"])
    assert parse_diff_text("no headers at all") == WebDiff()
    d = tree_diff(A, B, "clean")
    assert parse_diff_text(d.to_text()) == d


def test_apply_hand_worked():
    out = apply_diff(tree_diff(A, B, "clean"), A)
    assert out == [Node(1, "RootWebArea", "S"), Node(2, "button", "Menu", "expanded: True", 1),
                   Node(3, "link", "Home", "", 1), Node(4, "link", "Cart")]
    assert same_nodes(out, B) and not same_nodes(A, B)
    assert apply_diff("New items:\ngarbage\n[x] y\nDeleted items:\n[9] link 'none here'", A) == apply_diff(WebDiff(), A)


def test_clean_apply_on_shared_pairs(wma_dir):
    import json
    n = 0
    for name, (cur, nxt) in [("sample_webarena_acctree_dev.json", ("observation", "next_state_acctree")),
                             ("sample_mind2web_acctree_dev.json", ("cleaned_accessibility_tree", "cleaned_next_accessibility_tree"))]:
        for rec in json.loads((wma_dir / name).read_text()):
            d = tree_diff(rec[cur], rec[nxt], "clean")
            assert same_nodes(apply_diff(d, rec[cur]), rec[nxt])
            assert same_nodes(apply_diff(d.to_text(), rec[cur]), rec[nxt])  # through the text format
            n += 1
    assert n == 10


ROLES, NAMES, PROPS = ["link", "button", "StaticText"], ["a", "b", "it's", ""], ["", "focused: True"]


@st.composite
def trees(draw):
    ids = draw(st.lists(st.integers(0, 12), unique=True, max_size=9))
    return render_tree([Node(i, draw(st.sampled_from(ROLES)), draw(st.sampled_from(NAMES)),
                             draw(st.sampled_from(PROPS)), draw(st.integers(0, 3))) for i in ids])


@settings(max_examples=300, deadline=None)
@given(trees(), trees())
def test_clean_apply_inverts_diff(a, b):
    d = tree_diff(a, b, "clean")
    assert same_nodes(apply_diff(d, a), b)
    assert same_nodes(apply_diff(d.to_text(), a), b)
    tree_diff(a, b, "wma")  # never raises


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200))
def test_never_raises_on_text(x, y):
    parse_diff_text(x)
    apply_diff(x, y)
    tree_diff(x, y, "wma")
    tree_diff(x, y, "clean")
