"""FFN activation-sparsity predictor (``worldmodels/compress/sparsity.py``): labels and the
confusion matrix by hand, the low-bit predictor's top share and quantisation, exact invariance
of the FFN when only inactive neurons are masked, and a predictor that learns a linear rule.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/compress/test_ffn_sparsity.py
"""

import math

import pytest
import torch
from compress_toys import random_llama, random_rwkv7
from torch import nn

from worldmodels.compress import sparsity as sp


def test_labels_by_hand():
    key = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        key.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])  # key x = [[1, 2, -1], [-1, 0.5, -1.5]]
    assert sp.ffn_labels(key, x).tolist() == [[True, True, False], [False, True, False]]


def test_confusion_by_hand():
    labels = torch.tensor([[True, True, False], [False, True, False]])
    pred = torch.tensor([[True, False, True], [False, True, True]])
    c = sp.confusion(pred, labels)
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (2, 2, 1, 1)
    assert c["recall"] == pytest.approx(2 / 3) and c["precision"] == pytest.approx(0.5)


def test_quantised_predictor():
    torch.manual_seed(0)
    w = torch.randn(40, 8)
    one = sp.quantise(w, 1)
    torch.testing.assert_close(one.abs(), w.abs().mean(1, keepdim=True).expand_as(w))
    assert torch.equal(torch.sign(one), torch.sign(w))
    four = sp.quantise(w, 4)
    scale = (w.max() - w.min()) / 15
    assert four.unique().numel() <= 16 and float((four - w).abs().max()) <= float(scale) / 2 + 1e-6
    active = sp.quant_predict(torch.randn(5, 8), one, 0.15)
    assert active.sum(1).tolist() == [math.ceil(0.15 * 40)] * 5


def test_masking_only_inactive_neurons_is_exact():
    m = random_rwkv7()
    ids = torch.randint(1, 23, (2, 13))
    ref = m(input_ids=ids).logits
    keys = sp.ffn_key_modules(m)
    assert len(keys) == 2
    # the key's own op on the same input: exactly the neurons relu() keeps
    def active(key):
        return lambda x: torch.nn.functional.linear(x, key.weight) > 0

    oracle = {n: active(k) for n, k in keys.items()}
    with sp.masked_ffn(m, oracle):
        assert torch.equal(m(input_ids=ids).logits, ref)
    with sp.masked_ffn(m, {n: (lambda x: torch.zeros(*x.shape[:-1], 64, dtype=torch.bool)) for n in keys}):
        assert not torch.allclose(m(input_ids=ids).logits, ref)
    assert torch.equal(m(input_ids=ids).logits, ref)  # hooks removed


def test_mlp_predictor_learns_a_linear_rule_and_or_mask():
    torch.manual_seed(0)
    key = nn.Linear(8, 16, bias=False)
    x_tr, x_te = torch.randn(2000, 8), torch.randn(500, 8)
    cfg = sp.SparsityConfig(epochs=15, batch_size=64)
    mlp = sp.train_mlp_predictor(x_tr, sp.ffn_labels(key, x_tr), cfg)
    pred = sp.LayerPredictor(mlp, sp.quantise(key.weight.detach(), 1), cfg).parts(x_te)
    labels = sp.ffn_labels(key, x_te)
    assert sp.confusion(pred["mlp"], labels)["recall"] > 0.9
    assert torch.equal(pred["or"], pred["mlp"] | pred["quant"])
    assert sp.confusion(pred["or"], labels)["recall"] >= sp.confusion(pred["mlp"], labels)["recall"]


def test_fit_and_evaluate_on_a_model():
    m = random_rwkv7()
    batches = [{"input_ids": torch.randint(1, 23, (4, 16))} for _ in range(2)]
    inputs = sp.collect_ffn_inputs(m, batches, max_tokens=100)
    assert {tuple(v.shape) for v in inputs.values()} == {(100, 32)}
    cfg = sp.SparsityConfig(epochs=1)
    preds = sp.fit_predictors(m, inputs, cfg)
    res = sp.evaluate_predictors(m, preds, inputs)
    name = next(iter(inputs))
    labels = sp.ffn_labels(dict(m.named_modules())[name], inputs[name])
    row = res["layers"][name]
    assert row["sparsity"] == pytest.approx(1 - labels.float().mean().item())
    c = sp.confusion(preds[name](inputs[name]), labels)
    assert row["or"]["recall"] == pytest.approx(c["recall"]) and row["or"]["tp"] == c["tp"]
    assert 0 <= res["overall"]["or"]["recall"] <= 1


def test_not_an_rwkv7_model():
    with pytest.raises(ValueError, match="RWKV-7"):
        sp.ffn_key_modules(random_llama())
