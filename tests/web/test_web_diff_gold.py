"""Our ``wma``-mode diff against WMA's gold labels in sample_webarena_tao_dev.json.

Measured per-section agreement (as sets of item lines; 5 records):

    section   agree   records
    new       3 / 5   0, 2, 3
    deleted   3 / 5   0, 2, 3
    updated   1 / 5   3
    all three 1 / 5   3

This is what reference ``language.md`` §2.8 reports for WMA's algorithm run with scipy. Every
disagreement falls in one of two classes, each asserted below:

1. *updated*, records 0, 1, 2 (gold about 163 lines, ours 1): ours is a subset of gold, and
   the extra gold lines are next-tree lines (an update is emitted as the next line). Of them,
   162 / 151 / 162 appear verbatim in both trees: unchanged nodes that WMA's solver (pygmtools)
   paired with another node of equal cost (same content and role) but a different id, which
   counts as "updated" because WMA's record equality includes the id. scipy's tie-breaking
   pairs them with themselves. Not reproducible: it depends on the solver's tie-breaking.
2. *new* / *deleted*, records 1 and 4, and *updated* on record 4: gold leaves unmatched
   nodes whose exact line is in both trees (11 of 11 gold-only new lines in record 1, 6 of 8 in
   record 4; all gold-only deleted lines), while nodes present only in the next tree (ours-only
   new lines: 11 and 8) are matched in gold. With cost ``-100 content_eq - 0.5 role_eq`` leaving
   an identical pair unmatched is never optimal when a node with no equal partner could be
   left instead, so no optimal assignment on the shipped trees gives these labels (§2.3: the
   gold was computed on other trees or by another solver state). Our sets are the optimal ones.

Item *order* also differs where the sets agree (record 3 updated: same 36 lines, other order):
WMA orders by its solver's output, we order by current row; the F1 reward uses sets.
"""

from __future__ import annotations

import json

import pytest

from worldmodels.tasks.web_diff import tree_diff

KEYS = {"new": "new_items", "deleted": "deleted_items", "updated": "updated_items"}


def _lines(text: str) -> list[str]:
    return [] if text == "None" else text.split("\n")


def test_wma_mode_agreement_with_gold(wma_dir):
    records = json.loads((wma_dir / "sample_webarena_tao_dev.json").read_text())
    assert len(records) == 5
    agree = {k: [] for k in KEYS}
    extra_in_both = {}
    for i, rec in enumerate(records):
        d = tree_diff(rec["observation"], rec["next_state_acctree"], "wma")
        cur = {x.replace("\t", "") for x in rec["observation"].split("\n")}
        nxt = {x.replace("\t", "") for x in rec["next_state_acctree"].split("\n")}
        for sec, key in KEYS.items():
            ours, gold = set(getattr(d, sec)), set(_lines(rec[key]))
            assert len(getattr(d, sec)) == len(ours) and len(_lines(rec[key])) == len(gold)  # no duplicates
            if ours == gold:
                agree[sec].append(i)
                continue
            gold_only, ours_only = gold - ours, ours - gold
            extra_in_both[(i, sec)] = (len(gold_only), sum(x in cur and x in nxt for x in gold_only), len(ours_only))
            if sec == "updated":
                assert gold_only <= nxt  # updates are next-tree lines
            if sec == "deleted":
                assert not ours_only and gold_only <= cur  # gold deletes more, never less
            assert all(x in nxt and x not in cur for x in ours_only if sec != "deleted")  # ours: truly new lines
    assert agree == {"new": [0, 2, 3], "deleted": [0, 2, 3], "updated": [3]}
    # (record, section): (gold-only lines, of them in both trees verbatim, ours-only lines)
    assert extra_in_both == {
        (0, "updated"): (162, 162, 0), (2, "updated"): (162, 162, 0),          # class 1
        (1, "updated"): (162, 151, 0),                                         # class 1 (+ class 2's pairs)
        (1, "new"): (11, 11, 11), (1, "deleted"): (11, 11, 0),                 # class 2
        (4, "new"): (8, 6, 8), (4, "deleted"): (6, 6, 0), (4, "updated"): (27, 19, 2),  # class 2
    }
    # record 3: same sets, other order
    rec = records[3]
    d = tree_diff(rec["observation"], rec["next_state_acctree"], "wma")
    assert d.sections()["updated_items"] != rec["updated_items"]
    assert sorted(d.updated) == sorted(_lines(rec["updated_items"]))


def test_wma_mode_on_mind2web_within_tolerance(wma_dir):
    """Mind2Web samples (reference §2.3): backend ids are renumbered on every snapshot (no id is
    shared between a record's two trees), so WMA's id-based deletion deletes every current node
    and every matched pair counts as updated. The gold labels cannot come from a one-to-one
    matching on the shipped trees (record 1: 180 -> 188 nodes leaves >= 8 next nodes unmatched,
    but gold new is None), so they are checked as tolerances, with the measured counts:
    gold new ⊆ ours and gold deleted ⊆ ours on all 5; new and updated equal on records 0, 2, 4
    (updated differs on 1 and 3 by equal-cost tie-breaks, same sizes)."""
    records = json.loads((wma_dir / "sample_mind2web_acctree_dev.json").read_text())
    equal = {k: [] for k in KEYS}
    for i, rec in enumerate(records):
        cur, nxt = rec["cleaned_accessibility_tree"], rec["cleaned_next_accessibility_tree"]
        d = tree_diff(cur, nxt, "wma")
        ids = [{int(x.split("]")[0].lstrip("\t[")) for x in t.split("\n") if x.strip()} for t in (cur, nxt)]
        assert not ids[0] & ids[1]  # renumbered
        assert len(d.deleted) == len(ids[0]) and len(d.updated) == min(len(ids[0]), len(ids[1]))
        for sec, key in KEYS.items():
            ours, gold = set(getattr(d, sec)), set(_lines(rec[key]))
            if sec != "updated":
                assert gold <= ours, (i, sec)
            else:
                assert len(gold) == len(ours), i
            if ours == gold:
                equal[sec].append(i)
    assert equal == {"new": [0, 2, 4], "deleted": [], "updated": [0, 2, 4]}
    assert _lines(records[1]["new_items"]) == [] and len(_lines(records[1]["deleted_items"])) == 3


def test_f1_of_our_wma_diff_against_gold(wma_dir):
    """The F1 reward (set semantics, ``None`` an item, pooled) our ``wma``-mode diff would earn as a
    prediction of the gold: precision is high (most of our lines are in gold) and recall is low on
    records 0-2, where gold's ~160 tie-break "updates" dominate - a model trained on these labels
    is rewarded for reproducing the original solver's tie-breaks."""
    from worldmodels.tasks.web_data import load_webarena
    from worldmodels.tasks.web_rewards import prf

    got = [prf(tree_diff(t.observation, t.next_observation, "wma").to_text(), t.gold)
           for t in load_webarena(wma_dir / "sample_webarena_tao_dev.json")]
    # P = TP / |ours ∪ Nones|, R = TP / |gold|, e.g. record 0: TP = 3 (two Nones, one update) of 3 / 165
    # record 1: ours 11 new (gold's new are other nodes), deleted None (gold: 11), 1 update: TP 1 of 13 / 185
    want = [(1.0, 3 / 165, 6 / 168), (1 / 13, 1 / 185, 0.0101), (1.0, 13 / 175, 0.1383),
            (1.0, 1.0, 1.0), (0.9291, 0.7616, 0.8371)]
    assert [x for row in got for x in row] == pytest.approx([x for row in want for x in row], abs=1e-4)
