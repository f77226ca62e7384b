"""WebArena's action grammar: every verb parses; malformed strings give an error, never raise."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worldmodels.envs.web.actions import Action, ActionError, format_action, parse_action


@pytest.mark.parametrize("raw, want", [
    ("click [12]", Action("click", "12")),
    ("  hover [7] ", Action("hover", "7")),
    ("type [3] [red shirt] [0]", Action("type", "3", "red shirt", False)),
    ("type [3] [red shirt] [1]", Action("type", "3", "red shirt", True)),
    ("type [3] [red shirt]", Action("type", "3", "red shirt", True)),   # omitted flag = Enter
    ("type [3] [a [b] c] [0]", Action("type", "3", "a [b] c", False)),
    ("press [Control+a]", Action("press", text="Control+a")),
    ("scroll [down]", Action("scroll", text="down")),
    ("scroll [UP]", Action("scroll", text="up")),
    ("goto [http://127.0.0.1:5000/cart]", Action("goto", text="http://127.0.0.1:5000/cart")),
    ("go_back", Action("go_back")),
    ("go_forward", Action("go_forward")),
    ("stop [$12.50]", Action("stop", text="$12.50")),
    ("stop []", Action("stop", text="")),
])
def test_every_verb(raw, want):
    assert parse_action(raw) == want


@pytest.mark.parametrize("raw, fragment", [
    ("", "unknown action"), ("jump [3]", "unknown action"), ("click [abc]", "numeric element id"),
    ("click 12", "one bracketed argument"), ("click [1] [2]", "one bracketed argument"),
    ("type [x] [hi] [1]", "numeric id"), ("type [3]", "numeric id"),
    ("scroll [left]", "down or up"), ("goto []", "non-empty"), ("press [ ]", "non-empty"),
    ("go_back [1]", "no argument"), (None, "must be a str"),
])
def test_malformed_is_an_error(raw, fragment):
    got = parse_action(raw)
    assert isinstance(got, ActionError) and fragment in got.message


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises(raw):
    got = parse_action(raw)
    assert isinstance(got, (Action, ActionError))
    if isinstance(got, Action):
        assert parse_action(format_action(got)) == got


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["click", "type", "hover", "press", "scroll", "goto", "stop"]),
       st.text(alphabet="[]0123456789 abc\n", max_size=20))
def test_never_raises_near_grammar(verb, rest):
    assert isinstance(parse_action(f"{verb} {rest}"), (Action, ActionError))
