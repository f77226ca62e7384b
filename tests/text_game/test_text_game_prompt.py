"""Text-game prompts: the rlvr_world section order with the dishwasher shots and rules, the
compact style, and the reduction that never cuts the state or the action."""

import json

import pytest
import tg_records as R

from worldmodels.records import RecordError
from worldmodels.tasks.text_game_data import load_transitions
from worldmodels.tasks.text_game_prompt import (
    PromptTooLong,
    fit_prompt,
    load_rules,
    load_shots,
    object_rules,
    render_answer,
    render_prompt,
    render_state,
)


@pytest.fixture(scope="module")
def res(bytesized32):
    return load_rules(bytesized32 / "rules"), load_shots(bytesized32 / "examples.json")


def test_rlvr_world_prompt_sections_in_order(sample, res):
    rules, shots = res
    t = sample[0]
    p = render_prompt(t, "rlvr_world", rules, shots)
    assert [s.game for s in shots] == ["dishwasher", "dishwasher"]
    assert shots[0].action == "put plate (ID: 5) in dirty cup (ID: 4)" and shots[1].changed
    marks = ["You simulate a text game", "UUID base given below", "'modified', 'removed' and 'score'",
             "as time passes", "Example game task description:\nYour task is to wash the dirty dishes.",
             "in the example game:", "In the first example", f"The current game UUID base is {shots[0].uuid_base}",
             f"The action to take is:\n{shots[0].action}", "The expected response is:", "In the second example",
             f"The action to take is:\n{shots[1].action}", "Here is the game that you need to simulate:",
             f"Task Description:\n{t.task_desc}", "Here are the descriptions of all game objects properties:",
             "Here are the descriptions of all game actions:", "Here is a description of the game score function:",
             "Here is the game state:\n{'game_state': [{'name': 'room (ID: 1)'",
             f"The current game UUID base is {t.uuid_base}", f"The action to take is:\n{t.action}",
             '"The final answer is:"']
    pos = [p.find(m) for m in marks]
    assert -1 not in pos, [m for m, i in zip(marks, pos, strict=True) if i < 0]
    assert pos == sorted(pos)
    # the example game's rules once, the object rules without their last piece
    assert p.count(object_rules(rules["object"]["dishwasher"]).strip()) == 1
    last_piece = rules["object"][t.game].split("==========")[-1].strip()
    assert not last_piece or last_piece not in p
    # the state as a Python dict with the score last; the shots' expected diffs as Python dicts
    assert render_state(t.current, t.current_score) in p and "'gameWon': False}]}" in p
    assert "{'modified': [" in p


def test_compact_prompt_has_json_state_and_no_rules_or_shots(sample, res):
    t = sample[0]
    p = render_prompt(t, "compact", *res)
    state = json.loads(p.split("State: ", 1)[1].split("\n", 1)[0])
    assert state["game_state"][:-1] == t.current and state["game_state"][-1] == t.current_score
    assert "dishwasher" not in p and "Here are the descriptions" not in p
    assert f"Action: {t.action}" in p and f"UUID base: {t.uuid_base}" in p


def test_answers():
    d = {"modified": [], "removed": [3], "score": {}}
    assert render_answer(d, "rlvr_world") == 'The final answer is: {"modified": [], "removed": [3], "score": {}}'
    assert render_answer(d, "compact") == '{"modified":[],"removed":[3],"score":{}}'


def test_reduction_drops_shots_then_rules_never_the_state(sample, res):
    rules, shots = res
    t = sample[0]
    full = render_prompt(t, "rlvr_world", rules, shots)
    one = render_prompt(t, "rlvr_world", rules, shots, n_shots=1)
    none = render_prompt(t, "rlvr_world", rules, shots, n_shots=0)
    bare = render_prompt(t, "rlvr_world", rules, shots, n_shots=0, with_rules=False)
    assert len(full) > len(one) > len(none) > len(bare)
    for limit, want in ((len(full), "none"), (len(one), "one_shot"), (len(none), "no_shots"), (len(bare), "no_rules")):
        text, reduction, n = fit_prompt(t, "rlvr_world", rules, shots, len, limit)
        assert reduction == want and n == len(text) <= limit
        assert render_state(t.current, t.current_score) in text and t.action in text
    assert "In the second example" not in one and "dishwasher" not in none
    assert "Here are the descriptions" not in bare
    with pytest.raises(PromptTooLong, match=r"test_dev.jsonl.gz:1: the rlvr_world prompt has \d+ tokens, more than"):
        fit_prompt(t, "rlvr_world", rules, shots, len, len(bare) - 1)
    with pytest.raises(PromptTooLong, match="on_overflow=reduce"):
        fit_prompt(t, "rlvr_world", rules, shots, len, len(one), reduce=False)


def test_modes_action_and_tick_use_one_shot_and_no_score(tmp_path, bytesized32):
    rec = R.lamp_on()
    rules = {k: {"lamp-room": f"{k} rules==========tail", "dishwasher": "d=========="} for k in ("object", "action", "score")}
    p = R.write_records(tmp_path / "r.jsonl", [rec])
    tick = load_transitions(p, "tick")[0]
    text = render_prompt(tick, "rlvr_world", rules, load_shots(bytesized32 / "examples.json", "tick"))
    assert "Here is an example." in text and "action rules" not in text and "'score'" not in text
    assert "The action to take is" not in text.split("Here is the game that you need to simulate:")[1]


def test_missing_resources_are_named(tmp_path):
    with pytest.raises(RecordError, match="object_rules.json: no such rules file"):
        load_rules(tmp_path)
    (tmp_path / "ex.json").write_text(json.dumps({"full": {"action": R.lamp_on()}}))
    with pytest.raises(RecordError, match=r"ex.json: missing full.tick"):
        load_shots(tmp_path / "ex.json")
    (tmp_path / "ex.json").write_text(json.dumps({"full": {"action": {}, "tick": {}}}))
    with pytest.raises(RecordError, match=r"ex.json: full.action: missing field 'game'"):
        load_shots(tmp_path / "ex.json")
