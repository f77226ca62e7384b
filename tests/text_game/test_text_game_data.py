"""Text-game records: the loader (every problem names file and line), the two notions of
"changed", the modes, and RLVR-World's RL sampling."""

import collections
import gzip
import json

import pytest
import tg_records as R

from worldmodels.records import RecordError
from worldmodels.tasks.text_game_data import (
    load_transitions,
    rl_sample,
    states_equal,
    transition_from_record,
    values_equal,
)


def test_real_sample_loads_every_record_with_the_reference_counts(sample):
    assert len(sample) == 2317
    assert len({t.game for t in sample}) == 25
    # reference language.md: 994 changed under exact equality, 930 in RLVR-World's gold split
    assert sum(t.changed for t in sample) == 994
    assert sum(t.gold_changed for t in sample) == 930
    assert all(t.changed for t in sample if t.gold_changed)  # gold is a subset of changed
    assert sum(t.creates for t in sample) == 40
    t = sample[0]
    assert t.game == "volume-container" and t.state_id == 609
    assert t.action == "take graduated cylinder (ID: 8) from room (ID: 1)"  # tick_state's lastAction
    assert t.uuid_base == 9 and t.current_score == {"score": 0, "gameOver": False, "gameWon": False}
    assert t.source.endswith("test_dev.jsonl.gz:1")


def test_modes_pick_their_states(tmp_path):
    rec = R.lamp_on()
    rec["tick_state"]["objects"][1]["properties"]["isContainer"] = False  # a tick-only change
    full = transition_from_record(rec, "full", "x:1")
    action = transition_from_record(rec, "action", "x:1")
    tick = transition_from_record(rec, "tick", "x:1")
    assert full.next is rec["tick_state"]["objects"] and full.current_score is not None
    assert action.next is rec["action_state"]["objects"] and action.current_score is None
    assert tick.current is rec["action_state"]["objects"] and tick.action == "" and tick.verb == "tick"
    assert full.verb == "turn" and action.action == "turn on lamp (ID: 2)"
    with pytest.raises(ValueError, match="mode must be one of"):
        transition_from_record(rec, "score")


def test_exact_equality_sorts_contains_and_includes_the_score():
    a = R.world()
    b = R.world()
    b[0]["contains"] = list(reversed(b[0]["contains"]))
    assert states_equal(a, R.SCORE0, b, dict(R.SCORE0))
    assert not states_equal(a, R.SCORE0, b, {**R.SCORE0, "score": 1})
    b[2]["name"] = "old lamp (ID: 2)"
    assert not states_equal(a, R.SCORE0, b, R.SCORE0)
    assert values_equal([1, 2], (1, 2)) and not values_equal(True, 1) and values_equal(True, 1, strict=False)


def test_handmade_changed_flags(tmp_path):
    data = load_transitions(R.write_records(tmp_path / "r.jsonl"))
    assert [t.changed for t in data] == [True, True, True, True, False]
    # gold: an existing object's property / contains changed; score-only is not gold
    assert [t.gold_changed for t in data] == [True, True, True, False, False]
    assert [t.creates for t in data] == [False, False, True, False, False]


@pytest.mark.parametrize("gz", [False, True])
def test_a_corrupt_line_is_an_error_naming_file_and_line(tmp_path, gz):
    lines = [json.dumps(r) for r in R.all_records()]
    lines[2] = lines[2][:-10]  # truncated JSON on line 3
    p = tmp_path / ("r.jsonl.gz" if gz else "r.jsonl")
    with (gzip.open(p, "wt") if gz else open(p, "w")) as f:
        f.write("\n".join(lines) + "\n")
    with pytest.raises(RecordError, match=rf"{p.name}:3: not valid JSON"):
        load_transitions(p)


def test_malformed_records_name_file_line_and_field(tmp_path):
    recs = R.all_records()
    del recs[1]["tick_state"]["max_UUID"]
    p = R.write_records(tmp_path / "a.jsonl", recs)
    with pytest.raises(RecordError, match=r"a.jsonl:2: tick_state: missing field 'max_UUID'"):
        load_transitions(p)
    recs = R.all_records()
    recs[3]["current_state"]["objects"][2]["uuid"] = "2"
    p = R.write_records(tmp_path / "b.jsonl", recs)
    with pytest.raises(RecordError, match=r"b.jsonl:4: current_state.objects\[2\]: field 'uuid' is str"):
        load_transitions(p)
    recs = R.all_records()
    del recs[0]["game"]
    p = R.write_records(tmp_path / "c.jsonl", recs)
    with pytest.raises(RecordError, match=r"c.jsonl:1: missing field 'game'"):
        load_transitions(p)
    with pytest.raises(RecordError, match="no such record file"):
        load_transitions(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(RecordError, match="no records"):
        load_transitions(tmp_path / "empty.jsonl")


def test_limit_reads_only_the_first_records(tmp_path):
    p = R.write_records(tmp_path / "r.jsonl", copies=3)
    assert [t.state_id for t in load_transitions(p, limit=7)] == [1, 2, 3, 4, 5, 101, 102]


def test_rl_sample_keeps_every_changed_record_and_draws_unchanged_with_replacement(sample):
    changed = [t for t in sample if t.gold_changed]
    for ratio, n_unchanged in ((0.4, 372), (0.05, 46)):  # round(930 * ratio)
        got = rl_sample(sample, ratio, seed=0)
        assert got[:930] == changed
        rest = got[930:]
        assert len(rest) == n_unchanged and not any(t.gold_changed for t in rest)
    big = rl_sample(sample, 2.0, seed=1)[930:]  # 1,860 draws from 1,387 unchanged: repeats
    assert len(big) == 1860 and max(collections.Counter(map(id, big)).values()) > 1
    assert rl_sample(sample, 0.4, seed=3) == rl_sample(sample, 0.4, seed=3)
    assert rl_sample(sample, 0.4, seed=3) != rl_sample(sample, 0.4, seed=4)
    exact = rl_sample(sample, 0.0, split="exact")
    assert len(exact) == 994 and all(t.changed for t in exact)
    assert rl_sample(sample, None) == list(sample)
    with pytest.raises(ValueError, match="split must be gold|exact"):
        rl_sample(sample, 0.4, split="changed")
