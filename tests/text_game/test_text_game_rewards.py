"""The rewards ``binary`` and ``task_specific`` against records worked by hand, on the real
ByteSized32 sample (reference language.md §1.2 facts), and on arbitrary text.

Unit counts of the hand-made world (tg_records): room 2, agent 2, lamp 2, box 3, apple 2 = 11
object units (one per property plus one for ``contains``), 3 score units.
"""

import json

import pytest
import tg_records as R
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from worldmodels.rewards import build_reward, get_reward
from worldmodels.tasks.text_game_data import load_transitions
from worldmodels.tasks.text_game_parse import EMPTY_DIFF, make_diff
from worldmodels.tasks.text_game_rewards import binary_reward, score_diff, task_specific_reward


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    return load_transitions(R.write_records(tmp_path_factory.mktemp("tg") / "r.jsonl"))


def rewards(t, text, compat=False):
    """(binary, task_specific) of answer ``text`` for transition ``t``."""
    items = {"current": [t.current], "current_score": [t.current_score], "target": [t.next],
             "target_score": [t.next_score], "compat": compat}
    return (float(binary_reward({"text": [text]}, items)[0]),
            float(task_specific_reward({"text": [text]}, items)[0]))


def gold(t):
    return "The final answer is: " + json.dumps(make_diff(t.current, t.next, t.current_score, t.next_score))


NO_CHANGE = json.dumps(EMPTY_DIFF)


def test_property_change(hand):
    t = hand[0]  # lamp isOn False -> True; gold units: (lamp, isOn)
    assert rewards(t, gold(t)) == pytest.approx((1.0, 1.3))
    # no change: 10 of 11 object units right, score right, the changed property wrong
    assert rewards(t, NO_CHANGE) == pytest.approx((0.0, 0.09 * 10 / 11 + 0.01))
    assert rewards(t, NO_CHANGE, compat=True) == pytest.approx((0.0, 0.09 * 10 / 11 + 0.01))


def test_extra_predicted_property(hand):
    t = hand[0]
    lamp = {**t.next[2], "properties": {"isOn": True, "color": "red"}}
    text = json.dumps({"modified": [lamp], "removed": [], "score": {}})
    # default: the extra key is one wrong unit (11 right of 12); the changed property is right
    assert rewards(t, text) == pytest.approx((0.0, 0.09 * 11 / 12 + 0.01 + 1.0))
    # RLVR-World: the walk ignores it (binary 1) but its changed-property loop raises KeyError -> 0
    assert rewards(t, text, compat=True) == pytest.approx((1.0, 0.0))


def test_removal(hand):
    t = hand[1]  # apple removed, box contains emptied, score 0 -> 1; 9 object units, gold: box contains
    assert rewards(t, gold(t)) == pytest.approx((1.0, 1.3))
    forgot_box = json.dumps({"modified": [], "removed": [4], "score": t.next_score})
    assert rewards(t, forgot_box) == pytest.approx((0.0, 0.09 * 8 / 9 + 0.01))
    kept_apple = json.dumps({"modified": [t.next[3]], "removed": [], "score": t.next_score})
    # default: the apple is an extra object (one wrong unit: 9 right of 10); compat ignores it
    assert rewards(t, kept_apple) == pytest.approx((0.0, 0.09 * 9 / 10 + 0.01 + 1.0))
    assert rewards(t, kept_apple, compat=True) == pytest.approx((1.0, 1.3))


def test_creation(hand):
    t = hand[2]  # slice 5 created; 13 object units; gold: box contains, apple isSliced
    assert rewards(t, gold(t)) == pytest.approx((1.0, 1.3))
    # RLVR-World drops the created object, which counts as one wrong unit (a missing object):
    # the 11 units of the existing objects right, both gold units right
    assert rewards(t, gold(t), compat=True) == pytest.approx((0.0, 0.09 * 11 / 12 + 0.01 + 1.0))
    wrong_uuid = json.loads(gold(t).split(": ", 1)[1])
    wrong_uuid["modified"][2]["uuid"] = 6
    # default: slice 5 missing (1 wrong), object 6 extra (1 wrong): 11 right of 13
    assert rewards(t, json.dumps(wrong_uuid)) == pytest.approx((0.0, 0.09 * 11 / 13 + 0.01 + 1.0))


def test_score_only_change(hand):
    t = hand[3]  # objects unchanged, score {1, True, True}: no gold units, so a perfect answer earns 0.3
    assert rewards(t, gold(t)) == pytest.approx((1.0, 0.3))
    assert rewards(t, NO_CHANGE) == pytest.approx((0.0, 0.09))  # the 3 score units wrong
    partial = json.dumps({"modified": [], "removed": [], "score": {"score": 1, "gameOver": True}})
    assert rewards(t, partial) == pytest.approx((0.0, 0.09 + 0.01 * 2 / 3))
    missing = json.dumps({"modified": [], "removed": []})  # no score key: every score unit wrong
    assert rewards(t, missing) == pytest.approx((0.0, 0.09))


def test_unchanged_and_unparseable(hand):
    t = hand[4]
    assert rewards(t, NO_CHANGE) == pytest.approx((1.0, 0.3))
    assert rewards(t, json.dumps({"modified": [], "removed": []})) == pytest.approx((0.0, 0.09))
    for text in ("I cannot tell.", "", "The final answer is: [1, 2]", '{"modified": 5, "removed": []}',
                 '{"modified": [], "removed": [], "score": 7}', "The final answer is: {'modified': [{'uuid'"):
        for compat in (False, True):
            assert rewards(t, text, compat) == (0.0, 0.0), (text, compat)


def test_the_rewards_are_registered():
    assert get_reward("binary").fn is binary_reward and get_reward("text_game_binary").fn is binary_reward
    assert get_reward("task_specific").fn is task_specific_reward
    r = build_reward("task_specific+binary:0.5")
    assert r.names == ["task_specific", "binary"]


def test_real_sample_gold_no_change_and_compat(sample):
    """Reference §1.2 [ran]: gold diffs get binary 1 everywhere and task-specific rewards in
    [0.3, 1.3] (mean 0.70: 1.3 on the 930 gold-changed records, 0.3 on the rest); "no change"
    gets binary 1 on exactly the 1,323 unchanged records; with compat the 40 records that
    create objects (and only they) lose their binary reward."""
    items = {"current": [t.current for t in sample], "current_score": [t.current_score for t in sample],
             "target": [t.next for t in sample], "target_score": [t.next_score for t in sample]}
    golds = {"text": [gold(t) for t in sample]}
    nochange = {"text": [NO_CHANGE] * len(sample)}
    creates = torch.tensor([t.creates for t in sample])
    gold_changed = torch.tensor([t.gold_changed for t in sample])
    unchanged = torch.tensor([not t.changed for t in sample])

    b = binary_reward(golds, {**items, "compat": False})
    ts = task_specific_reward(golds, {**items, "compat": False})
    assert bool((b == 1).all())
    assert ts.min() >= 0.3 - 1e-6 and ts.max() <= 1.3 + 1e-6
    assert torch.allclose(ts, torch.where(gold_changed, 1.3, 0.3))
    assert float(ts.mean()) == pytest.approx((930 * 1.3 + 1387 * 0.3) / 2317) == pytest.approx(0.7014, abs=1e-4)

    nb = binary_reward(nochange, {**items, "compat": False})
    assert torch.equal(nb == 1, unchanged) and int(nb.sum()) == 1323

    cb = binary_reward(golds, {**items, "compat": True})
    assert torch.equal(cb == 0, creates) and int((cb == 0).sum()) == 40
    assert int(binary_reward(nochange, {**items, "compat": True}).sum()) == 1323


def test_every_card_counts_units_as_worked_by_hand(hand):
    t = hand[2]
    card = score_diff({"modified": [], "removed": [], "score": {}}, t.current, t.current_score,
                      t.next, t.next_score)
    # no change on the creation record: box contains and apple isSliced wrong (9 of the 11
    # units of existing objects right), the missing slice one more wrong unit
    assert (card.item_right, card.item_wrong, card.score_right, card.gold_right, card.gold_total) == (9, 3, 3, 0, 2)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_rewards_never_raise_and_stay_in_range_on_arbitrary_text(text):
    t = _HAND[0]
    for compat in (False, True):
        b, ts = rewards(t, text, compat)
        assert b in (0.0, 1.0) and 0.0 <= ts <= 1.3 + 1e-6


_props = st.dictionaries(st.sampled_from(["isOn", "isOpen", "isContainer", "isSliced", "x"]),
                         st.none() | st.booleans() | st.integers(-2, 2) | st.text(max_size=3), max_size=4)
_objects = st.fixed_dictionaries({"uuid": st.integers(0, 6)}, optional={
    "name": st.sampled_from(["lamp (ID: 2)", "box (ID: 3)", "x"]), "properties": _props | st.integers(),
    "contains": st.lists(st.sampled_from(["apple (ID: 4)", "agent (ID: 0)"]), max_size=2) | st.integers()})


@settings(max_examples=300, deadline=None)
@given(st.lists(_objects, max_size=4), st.lists(st.integers(0, 6) | st.text(max_size=2), max_size=3),
       st.none() | st.dictionaries(st.sampled_from(["score", "gameOver", "gameWon", "z"]),
                                   st.booleans() | st.integers(0, 2), max_size=4), st.integers(0, 4))
def test_rewards_never_raise_and_stay_in_range_on_random_diffs(modified, removed, score, which):
    t = _HAND[which]
    diff = {"modified": modified, "removed": removed}
    if score is not None:
        diff["score"] = score
    for compat in (False, True):
        b, ts = rewards(t, json.dumps(diff), compat)
        assert b in (0.0, 1.0) and 0.0 <= ts <= 1.3 + 1e-6


_HAND = load_transitions(R.write_records(__import__("pathlib").Path(__import__("tempfile").mkdtemp()) / "r.jsonl"))
