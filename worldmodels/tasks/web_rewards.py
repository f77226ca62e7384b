"""Web world-model reward ``f1`` (RLVR-World), registered for ``--reward``; precision and recall.

    f1_score(response, gold_diff_text)              # float in [0, 1]
    prf(response, gold)                             # (precision, recall, f1)

Definition (RLVR-World ``lang_wm/verl/verl/utils/reward_score/web_agent.py``; reference
``language.md`` §1.3): both texts are walked by ``parse_magento_log``
(:func:`worldmodels.tasks.web_diff.split_sections`) - the **whole** response, reasoning
included; a line starting with ``New items:`` / ``Deleted items:`` / ``Updated items:``
switches section; every later non-empty stripped line is an item of that section's **set**
(duplicates collapse, ``None`` is an item). ``hungarian_match`` with cost 0 for equal strings
and 1e4 otherwise reduces to exact set intersection, so with ``G_s``/``P_s`` the gold/predicted
sets of section s::

    TP = sum_s |G_s ∩ P_s|,  precision = TP / sum_s |P_s|,  recall = TP / sum_s |G_s|,
    F1 = 2 P R / (P + R)     (0 when TP = 0, or when either side has no section)

Options (defaults = the original):
- ``after_reasoning``: a marker string (e.g. ``"</think>"``); only the text after its last
  occurrence is parsed (all of it when the marker is absent).
- ``strip_special``: special-token strings removed from the response before parsing. verl's
  reward manager decodes without skipping special tokens, so in the original the EOS string
  sticks to the last item, which then never matches; ``strip_special=("<|im_end|>",)`` (or the
  tokenizer's special tokens) fixes that.
Malformed output (no section header, non-str) scores 0; nothing here raises.

Precision and recall are metrics (``web_metrics``), not registered rewards.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from worldmodels.rewards import register_reward
from worldmodels.tasks.web_diff import split_sections

__all__ = ["section_sets", "prf", "f1_score", "prepare_response", "f1_reward"]


def section_sets(text) -> dict[str, set[str]]:
    """Header -> set of item lines (``None`` included); ``{}`` for non-str or header-less text."""
    if not isinstance(text, str):
        return {}
    return {h: set(items) for h, items in split_sections(text).items()}


def prepare_response(response, after_reasoning: str | None = None, strip_special: Iterable[str] = ()) -> str:
    """``response`` with special tokens removed and, with ``after_reasoning``, only the part after
    the marker's last occurrence. Non-str -> ``""``."""
    if not isinstance(response, str):
        return ""
    for tok in strip_special:
        if tok:
            response = response.replace(tok, "")
    if after_reasoning and after_reasoning in response:
        response = response.rsplit(after_reasoning, 1)[1]
    return response


def prf(response, gold, after_reasoning: str | None = None, strip_special: Iterable[str] = ()) -> tuple[float, float, float]:
    """(precision, recall, F1) of ``response`` against the ``gold`` diff text, pooled over sections."""
    pred = section_sets(prepare_response(response, after_reasoning, strip_special))
    ref = section_sets(gold)
    if not pred or not ref:
        return 0.0, 0.0, 0.0
    tp = sum(len(ref[h] & pred.get(h, set())) for h in ref)
    n_pred, n_gold = sum(map(len, pred.values())), sum(map(len, ref.values()))
    if tp == 0:
        return 0.0, 0.0, 0.0
    p, r = tp / n_pred, tp / n_gold
    return p, r, 2 * p * r / (p + r)


def f1_score(response, gold, after_reasoning: str | None = None, strip_special: Iterable[str] = ()) -> float:
    """RLVR-World's F1 reward in [0, 1] (module docstring)."""
    return prf(response, gold, after_reasoning, strip_special)[2]


@register_reward("f1", aliases=("web_f1",))
def f1_reward(predictions: dict, items: dict, **ctx) -> torch.Tensor:
    """(B,) F1 of ``predictions["text"]`` against ``items["gold"]`` (diff texts, length B).

    Optional ``items["after_reasoning"]`` (str) and ``items["strip_special"]`` (list of str)
    apply to every row. Rows whose scoring fails for any reason score 0."""
    if "gold" not in items or "text" not in predictions:
        raise KeyError("the f1 reward needs predictions['text'] and items['gold'] (gold diff texts, one per row); "
                       f"got predictions {sorted(predictions)} and items {sorted(items)}")
    texts, golds = predictions["text"], items["gold"]
    after, special = items.get("after_reasoning"), tuple(items.get("strip_special") or ())
    out = []
    for t, g in zip(texts, golds, strict=True):
        try:
            out.append(f1_score(t, g, after, special))
        except Exception:  # malformed output never crashes a run
            out.append(0.0)
    return torch.tensor(out, dtype=torch.float32)
