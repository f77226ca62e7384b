"""web_rewards: RLVR-World's F1 reward (reference language.md §1.3), hand-worked and vs a second
implementation of the original's ``parse_magento_log`` + ``hungarian_match``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from worldmodels.rewards import build_reward
from worldmodels.tasks.web_rewards import f1_score, prf

GOLD = "New items:\n[4] link 'Cart'\n\nDeleted items:\nNone\n\nUpdated items:\n[2] button 'Menu' expanded: True"


def test_hand_worked():
    assert prf(GOLD, GOLD) == (1.0, 1.0, 1.0)
    # None is an item: only the Deleted section's None matches -> P = R = 1/3
    none = "New items:\nNone\n\nDeleted items:\nNone\n\nUpdated items:\nNone"
    assert prf(none, GOLD) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    # duplicates collapse (sets): one predicted item, right -> P 1, R 1/3, F1 1/2
    assert prf("New items:\n[4] link 'Cart'\n[4] link 'Cart'\n   [4] link 'Cart'  ", GOLD) == pytest.approx((1, 1 / 3, 0.5))
    # sections matter: the right line in the wrong section is no hit
    assert f1_score("Updated items:\n[4] link 'Cart'", GOLD) == 0.0
    # pooled: TP 2 of 4 predicted, 3 gold -> P 1/2, R 2/3, F1 4/7
    part = "New items:\n[4] link 'Cart'\n[9] link 'X'\nUpdated items:\n[2] button 'Menu' expanded: True\n[8] x"
    assert prf(part, GOLD) == pytest.approx((0.5, 2 / 3, 4 / 7))


def test_reasoning_option():
    resp = "<think>\nNew items:\nI guess [4]\n</think>\n" + GOLD
    # the original parses the whole response: 'I guess [4]' and '</think>' are predicted New items
    assert prf(resp, GOLD) == pytest.approx((3 / 5, 1.0, 0.75))
    assert f1_score(resp, GOLD, after_reasoning="</think>") == 1.0
    assert f1_score(GOLD, GOLD, after_reasoning="</think>") == 1.0  # marker absent: whole text
    # text before the first header is ignored in both
    assert f1_score("Reasoning: the cart link appears.\n" + GOLD, GOLD) == 1.0


def test_special_tokens_option():
    resp = GOLD + "<|im_end|>"  # verl decodes without skipping special tokens: the last item never matches
    assert prf(resp, GOLD) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert f1_score(resp, GOLD, strip_special=("<|im_end|>", "<|endoftext|>")) == 1.0


def test_malformed_scores_zero_and_registry():
    for bad in ["", "no headers here", "[4] link 'Cart'", None, 123, ["New items:"]]:
        assert f1_score(bad, GOLD) == 0.0
    assert f1_score(GOLD, "not a diff") == 0.0  # a gold without sections: 0, no division by zero
    reward = build_reward("f1")
    total, parts = reward({"text": [GOLD, "garbage", None, GOLD + "<|im_end|>"]}, {"gold": [GOLD] * 4})
    assert torch.allclose(total, torch.tensor([1.0, 0.0, 0.0, 2 / 3]))
    total, _ = reward({"text": [GOLD + "<|im_end|>"]}, {"gold": [GOLD], "strip_special": ["<|im_end|>"]})
    assert total.tolist() == [1.0]
    with pytest.raises(KeyError, match=r"needs predictions\['text'\] and items\['gold'\]"):
        reward({"text": [GOLD]}, {"target": [GOLD]})


def _reference_f1(response: str, gold: str) -> float:
    """A second implementation after RLVR-World's web_agent.py as described in the reference:
    per-section sets, a Hungarian match with cost 0 for equal strings and 1e4 otherwise (scipy),
    pairs of cost 0 counted as hits, pooled over sections."""
    def parse(text):
        sections, cur = {}, None
        for line in text.splitlines():
            s = line.strip()
            for h in ("New items:", "Deleted items:", "Updated items:"):
                if s.startswith(h):
                    cur = h
                    sections.setdefault(h, set())
                    break
            else:
                if cur and s:
                    sections[cur].add(s)
        return sections
    p, g = parse(response), parse(gold)
    if not p or not g:
        return 0.0
    tp = 0
    for h, gs in g.items():
        ps, gl = sorted(p.get(h, set())), sorted(gs)
        if ps and gl:
            cost = np.array([[0.0 if a == b else 1e4 for b in gl] for a in ps])
            r, c = linear_sum_assignment(cost)
            tp += int((cost[r, c] == 0).sum())
    n_p, n_g = sum(map(len, p.values())), sum(map(len, g.values()))
    if tp == 0:
        return 0.0
    prec, rec = tp / n_p, tp / n_g
    return 2 * prec * rec / (prec + rec)


LINES = ["New items:", "Deleted items:", "Updated items:", "None", "[4] link 'Cart'", "  [2] button 'M'",
         "[2] button 'M'", "", "reasoning", "Updated items: x"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=12), st.lists(st.sampled_from(LINES), max_size=12))
def test_matches_reference_formula(pred_lines, gold_lines):
    pred, gold = "\n".join(pred_lines), "\n".join(gold_lines)
    assert f1_score(pred, gold) == pytest.approx(_reference_f1(pred, gold))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_and_in_unit_interval(text):
    for resp in (text, "New items:\n" + text, GOLD + text):
        p, r, f = prf(resp, GOLD, after_reasoning="</think>", strip_special=("<|im_end|>",))
        assert all(0.0 <= x <= 1.0 for x in (p, r, f))
        assert 0.0 <= f1_score(resp, GOLD) <= 1.0
