"""web_data loaders (both WMA formats) and web_metrics (precision / recall / F1 / exact match)."""

from __future__ import annotations

import json

import pytest

from worldmodels.records import RecordError
from worldmodels.tasks.web_data import load_mind2web, load_webarena
from worldmodels.tasks.web_metrics import aggregate, transition_metrics
from worldmodels.tasks.web_rewards import prf


def test_load_shared_samples(wma_dir):
    tao = load_webarena(wma_dir / "sample_webarena_tao_dev.json")
    raw = json.loads((wma_dir / "sample_webarena_tao_dev.json").read_text())
    assert len(tao) == 5 and tao[0].objective == "What is the top-5 best-selling product in 2023"
    assert tao[0].site == "ec2-3-23-128-184.us-east-2.compute.amazonaws.com:7780"
    assert tao[0].previous_actions == ["None"] and tao[0].source.endswith("record 0")
    # the gold text is WMA's next_state_tao (which carries one trailing newline)
    assert [t.gold for t in tao] == [r["next_state_tao"].rstrip("\n") for r in raw]
    assert all(prf(t.gold, r["next_state_tao"])[2] == 1.0 for t, r in zip(tao, raw, strict=True))
    plain = load_webarena(wma_dir / "sample_webarena_acctree_dev.json")
    assert [p.observation for p in plain] == [t.observation for t in tao] and all(p.gold is None for p in plain)
    m2w = load_mind2web(wma_dir / "sample_mind2web_acctree_dev.json")
    assert len(m2w) == 5 and {m.site for m in m2w} == {"Travel"}
    assert m2w[0].action.startswith("click [1250]") and m2w[0].gold.startswith("New items:\nNone\n\nDeleted items:\n[274]")


def test_loader_errors_name_file_record_field(tmp_path):
    good = {"objective": "o", "current_action": "click [1]", "observation": "[1] link 'a'",
            "next_state_acctree": "[1] link 'b'", "url": "http://h:1/x", "previous_actions": []}
    f = tmp_path / "w.json"
    f.write_text(json.dumps([good, {**good, "observation": 3}]))
    with pytest.raises(RecordError, match=r"w\.json: record 1: field 'observation' is int"):
        load_webarena(f)
    f.write_text(json.dumps([{k: v for k, v in good.items() if k != "url"}]))
    with pytest.raises(RecordError, match=r"record 0: missing field 'url'"):
        load_webarena(f)
    f.write_text(json.dumps([{**good, "new_items": "None"}]))
    with pytest.raises(RecordError, match=r"record 0: gold diff field 'deleted_items' is NoneType"):
        load_webarena(f)
    f.write_text("[{")
    with pytest.raises(RecordError, match="not valid JSON"):
        load_mind2web(f)
    f.write_text(json.dumps([good]))
    with pytest.raises(RecordError, match="missing field 'confirmed_task'"):
        load_mind2web(f)
    jl = tmp_path / "w.jsonl"
    jl.write_text(json.dumps(good) + "\n")
    assert load_webarena(jl)[0].site == "h:1" and load_webarena(jl)[0].gold is None


GOLD = "New items:\n[4] link 'Cart'\n\nDeleted items:\nNone\n\nUpdated items:\n[2] button 'M'"


def test_metrics_hand_worked():
    assert transition_metrics(GOLD, GOLD) == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "exact": 1.0}
    # the same sets in another order and with duplicates: still exact
    other = "Updated items:\n[2] button 'M'\nDeleted items:\nNone\nNone\nNew items:\n[4] link 'Cart'"
    assert transition_metrics(other, GOLD)["exact"] == 1.0
    m = transition_metrics("New items:\n[4] link 'Cart'\n[5] x", GOLD)
    assert m == pytest.approx({"precision": 0.5, "recall": 1 / 3, "f1": 0.4, "exact": 0.0})
    assert transition_metrics("garbage", GOLD) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "exact": 0.0}
    rows = [{**transition_metrics(GOLD, GOLD), "site": "shop"}, {**m, "site": "shop"},
            {**transition_metrics("x", GOLD), "site": "forum"}]
    agg = aggregate(rows, ["site"])
    assert agg["all"] == pytest.approx({"precision": 0.5, "recall": 4 / 9, "f1": 1.4 / 3, "exact": 1 / 3, "n": 3})
    assert agg["site=shop"] == pytest.approx({"precision": 0.75, "recall": 2 / 3, "f1": 0.7, "exact": 0.5, "n": 2})
    assert agg["site=forum"]["n"] == 1 and agg["site=forum"]["f1"] == 0.0
    with pytest.raises(KeyError, match="metrics row 0: missing field 'site'"):
        aggregate([transition_metrics(GOLD, GOLD)], ["site"])


def test_says_no_change_whatever_the_wording():
    from worldmodels.tasks.web import NO_CHANGE_TEXT
    from worldmodels.tasks.web_metrics import says_no_change

    assert says_no_change(NO_CHANGE_TEXT)
    assert says_no_change("Updated items:\nNone\nNew items:\n  None\n")  # other order, spacing, missing section
    assert not says_no_change(GOLD)  # a real change
    assert not says_no_change("New items:\nNone\nDeleted items:\n[3] link 'x'")  # one section changes
    assert not says_no_change("garbage") and not says_no_change("") and not says_no_change(None)
