"""WebArena's tree rendering (reference language.md §4) on a hand-made CDP node list."""

from worldmodels.envs.web.axtree import (
    clean_tree,
    observation_text,
    tab_line,
    viewport_filter,
    viewport_ratio,
)


def _n(nid, role, name=None, children=(), parent=None, props=(), backend=True):
    node = {"nodeId": nid, "role": {"type": "role", "value": role}, "childIds": list(children),
            "properties": [{"name": k, "value": {"type": "x", "value": v}} for k, v in props]}
    if name is not None:
        node["name"] = {"type": "computedString", "value": name}
    if parent is not None:
        node["parentId"] = parent
    if backend:
        node["backendDOMNodeId"] = int(nid) + 100
    return node


NODES = [
    _n("1", "RootWebArea", "Page", ["4", "2", "3", "5", "8", "10"], props=[("focused", True)]),
    _n("4", "heading", "Title", [], "1", [("level", 1), ("focusable", True)]),
    _n("2", "generic", "", ["6"], "1"),
    _n("6", "StaticText", "Title", [], "2"),
    _n("3", "link", "Far away", ["7"], "1", [("url", "http://127.0.0.1:1/x")]),
    _n("7", "StaticText", "Home", [], "3"),
    _n("5", "button", "Zero", [], "1"),
    _n("8", "listitem", "", ["9"], "1", [("selected", False)]),
    _n("9", "StaticText", "Item", [], "8"),
    _n("10", "none", None, ["11"], "1"),
    _n("11", "checkbox", "Agree", [], "10", [("checked", "true"), ("invalid", "false")]),
    _n("4", "heading", "Duplicate id (dropped)", [], "1"),
]
BOUNDS = {"1": None, "4": (0, 0, 100, 20), "2": (0, 20, 100, 20), "6": (0, 20, 50, 20),
          "3": (0, 3000, 100, 20), "7": (0, 40, 50, 20), "5": (0, 60, 0, 20),
          "8": (0, 80, 100, 20), "9": (0, 80, 50, 20), "10": (0, 100, 100, 20),
          "11": (0, 100, 20, 20)}


def test_full_rendering_hand_computed():
    text, info = observation_text(NODES, BOUNDS, ["Page"], 1280, 2048, ax_ids=True)
    assert text == ("Tab 0 (current): Page\n\n"
                    "[1] RootWebArea 'Page' focused: True\n"
                    "\t[4] heading 'Title'\n"          # level/focusable ignored; StaticText 6 deduped
                    "\t[7] StaticText 'Home'\n"        # link 3 off-screen: child spliced up
                    "\t[9] StaticText 'Item'\n"        # empty listitem skipped, zero-width 5 removed
                    "\t[11] checkbox 'Agree' checked: true")  # nameless node 10 skipped
    assert info["4"] == {"backend_id": 104, "text": "[4] heading 'Title'", "bounds": (0, 0, 100, 20)}
    assert "3" not in info and "5" not in info


def test_viewport_filter_splices_children_in_place():
    kept = viewport_filter(NODES[:11], BOUNDS, 1280, 2048)
    root = kept[0]
    assert root["childIds"] == ["4", "2", "7", "8", "10"]
    assert {n["nodeId"] for n in kept} == {"1", "4", "2", "6", "7", "8", "9", "10", "11"}
    assert NODES[0]["childIds"] == ["4", "2", "3", "5", "8", "10"]  # input untouched


def test_viewport_ratio_and_webarena_compat():
    assert viewport_ratio(0, 2000, 100, 100, 1280, 2048) == 0.48
    assert viewport_ratio(0, 2000, 100, 100, 1280, 2048, webarena_bug=True) == 4800.0
    assert viewport_ratio(-50, 0, 100, 10, 1280, 2048) == 0.5
    nodes = [_n("1", "RootWebArea", "P", ["2"]), _n("2", "button", "B", [], "1")]
    bounds = {"2": (0, 2000, 100, 100)}
    assert [n["nodeId"] for n in viewport_filter(nodes, bounds, 1280, 2048)] == ["1"]
    assert len(viewport_filter(nodes, bounds, 1280, 2048, webarena_bug=True)) == 2


def test_static_text_cleanup_window_of_three_and_quote_quirk():
    tree = "\n".join(["[1] link 'Alpha'", "[2] a 'x'", "[3] b 'y'", "[4] c 'z'",
                      "[5] StaticText 'Alpha'",            # Alpha 4 lines back: kept
                      "[6] StaticText 'y'",                # in [3]'s line: dropped
                      "[7] StaticText \"it's\""])         # regex needs '...': dropped (WebArena)
    assert clean_tree(tree).split("\n") == ["[1] link 'Alpha'", "[2] a 'x'", "[3] b 'y'",
                                            "[4] c 'z'", "[5] StaticText 'Alpha'"]


def test_tab_line():
    assert tab_line(["A"]) == "Tab 0 (current): A\n\n"
    assert tab_line(["A", "B"], current=1) == "Tab 0: A | Tab 1 (current): B\n\n"


def test_renumber_by_preorder():
    text, info = observation_text(NODES, BOUNDS, ["Page"], 1280, 2048)
    # pre-order: 1 root, 4->2, 2->3, 6->4, 3->5, 7->6, 5->7, 8->8, 9->9, 10->10, 11->11
    assert text.split("\n")[2:] == ["[1] RootWebArea 'Page' focused: True", "\t[2] heading 'Title'",
                                    "\t[6] StaticText 'Home'", "\t[9] StaticText 'Item'",
                                    "\t[11] checkbox 'Agree' checked: true"]
    assert info["2"]["backend_id"] == 104
