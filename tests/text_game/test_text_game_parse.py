"""Gold diffs, answer extraction, JSON repair and apply-diff (default and RLVR-World compat)."""

import json

import pytest
import tg_records as R
from hypothesis import given, settings
from hypothesis import strategies as st

from worldmodels.tasks.text_game_data import load_transitions, states_equal
from worldmodels.tasks.text_game_parse import (
    EMPTY_DIFF,
    apply_diff,
    extract_answer,
    make_diff,
    parse_diff,
    parse_json_answer,
    rewrite_literals,
)


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    return load_transitions(R.write_records(tmp_path_factory.mktemp("tg") / "r.jsonl"))


def test_gold_diffs_of_the_handmade_records(hand):
    lamp, eat, slice_, answer, look = hand
    d = make_diff(lamp.current, lamp.next, lamp.current_score, lamp.next_score)
    assert d == {"modified": [lamp.next[2]], "removed": [], "score": {}}
    d = make_diff(eat.current, eat.next, eat.current_score, eat.next_score)
    assert d == {"modified": [eat.next[3]], "removed": [4], "score": eat.next_score}
    d = make_diff(slice_.current, slice_.next, slice_.current_score, slice_.next_score)
    assert [o["uuid"] for o in d["modified"]] == [3, 4, 5]  # changed in current order, then created
    assert d["modified"][2] == slice_.next[5] and d["removed"] == []
    assert make_diff(answer.current, answer.next, answer.current_score, answer.next_score) == \
        {"modified": [], "removed": [], "score": {"score": 1, "gameOver": True, "gameWon": True}}
    assert make_diff(look.current, look.next, look.current_score, look.next_score) == EMPTY_DIFF
    assert make_diff(look.current, look.next) == {"modified": [], "removed": []}  # no score: no key


def test_gpt_simulator_creation_quirk_is_a_switch(hand):
    t = hand[2]
    d = make_diff(t.current, t.next, t.current_score, t.next_score, gpt_simulator_creation=True)
    assert d["modified"][2] == {o["uuid"]: o for o in t.next}  # the whole dict of objects


def test_gold_diff_applied_gives_the_next_state_on_the_real_sample(sample):
    for t in sample:
        d = make_diff(t.current, t.next, t.current_score, t.next_score)
        objects, score = apply_diff(t.current, t.current_score, json.loads(json.dumps(d)))
        assert states_equal(objects, score, t.next, t.next_score), t.source
        objects, score = apply_diff(t.current, t.current_score, d, compat=True)
        assert states_equal(objects, score, t.next, t.next_score) == (not t.creates), t.source


def test_apply_diff_score_semantics_and_creation(hand):
    t = hand[2]
    d = make_diff(t.current, t.next, t.current_score, t.next_score)
    objects, score = apply_diff(t.current, t.current_score, d)
    assert [o["uuid"] for o in objects] == [1, 0, 2, 3, 4, 5] and score == R.SCORE0  # {} keeps
    objects, _ = apply_diff(t.current, t.current_score, d, compat=True)
    assert [o["uuid"] for o in objects] == [1, 0, 2, 3, 4]  # RLVR-World drops the new uuid
    assert apply_diff(t.current, t.current_score, {"modified": [], "removed": []})[1] is None
    assert apply_diff(t.current, None, d)[1] is None  # modes action / tick
    objects, _ = apply_diff(t.current, t.current_score, {"modified": [], "removed": [4, 99]})
    assert [o["uuid"] for o in objects] == [1, 0, 2, 3]


def test_extraction_fallbacks_in_order():
    assert extract_answer("a The final answer is: X b The final answer is: Y") == " Y"  # the last
    assert extract_answer("the final answer is: Z") == " Z"
    assert extract_answer("The final state is: S") == " S"
    assert extract_answer("The final game state is: G") == " G"
    # the first marker found wins, whatever follows it
    assert extract_answer("The final state is: S The final answer is: A") == " A"
    assert extract_answer('x ```json\n{"a": 1}\n``` y ```json\n{"modified": []}\n```') == '\n{"modified": []}\n'
    assert extract_answer("x ```json\n{}\n```") == "x ```json\n{}\n```"  # fence < 10 chars: whole
    assert extract_answer("plain") == "plain"


def test_literal_rewriting_default_keeps_quoted_names():
    text = "{'name': 'True Love', 'isOn': True, 'x': None, 'y': False}"
    assert rewrite_literals(text) == "{'name': 'True Love', 'isOn': true, 'x': null, 'y': false}"
    assert rewrite_literals(text, compat=True) == "{'name': 'true Love', 'isOn': true, 'x': null, 'y': false}"
    assert parse_json_answer(text)["name"] == "True Love"


@pytest.mark.parametrize("text", [
    'The final answer is: {"modified": [], "removed": [4], "score": {}}',
    'reasoning... The final answer is:\n```json\n{"modified": [], "removed": [4], "score": {}}\n```\nDone.',
    "The final answer is: {'modified': [], 'removed': [4], 'score': {}} and some trailing words",
    '```json\n{"modified": [], "removed": [4], "score": {}}\n```',
    '{"modified": [], "removed": [4], "score": {}',  # truncated: repaired
    'I think {"x": 1} then {"modified": [], "removed": [4], "score": {}}',  # several values: the diff
])
def test_parse_diff_repairs_common_forms(text):
    assert parse_diff(text) == {"modified": [], "removed": [4], "score": {}}


@pytest.mark.parametrize("text", [
    "no json here", "", "[1, 2]", '{"modified": []}', '{"removed": []}', '{"modified": 5, "removed": []}',
    '{"modified": [3], "removed": []}', '{"modified": [{"name": "x"}], "removed": []}',
    '{"modified": [], "removed": [], "score": 3}', '{"modified": [], "removed": [[1]]}',
    '{"modified": [{"uuid": true}], "removed": []}', '{"modified": [], "removed": [false]}',
])
def test_parse_diff_rejects_what_is_not_a_diff(text):
    assert parse_diff(text) is None


def test_compat_parse_returns_whatever_has_the_two_keys():
    assert parse_diff('{"modified": 5, "removed": []}', compat=True) == {"modified": 5, "removed": []}
    assert parse_diff('{"modified": []}', compat=True) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parse_never_raises_on_arbitrary_text(text):
    for compat in (False, True):
        d = parse_diff(text, compat)
        assert d is None or ("modified" in d and "removed" in d)
        if d is not None and not compat:
            assert isinstance(d["modified"], list) and isinstance(d["removed"], list)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(
                        ["modified", "removed", "score", "uuid", "properties", "contains"]), c, max_size=4),
                    max_leaves=20))
def test_parse_never_raises_on_arbitrary_json(value):
    text = "The final answer is: " + json.dumps(value)
    for compat in (False, True):
        parse_diff(text, compat)
