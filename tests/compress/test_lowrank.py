"""Low-rank SVD factorisation (``worldmodels/compress/lowrank.py``): full rank reproduces the
linear; truncation error equals the discarded singular values (Eckart–Young, numpy's SVD as the
independent reference); parameter counts by hand; the diag variants; the world-model round
trip through ``load_backbone`` and its strict errors.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/compress/test_lowrank.py
"""

import json

import numpy as np
import pytest
import torch
from compress_toys import random_llama, random_rwkv7, world_model_dir
from torch import nn

from worldmodels.compress.lowrank import LowRankLinear, factorise, lowrank_modules, rank_for
from worldmodels.compress.measure import model_size
from worldmodels.strict_load import WeightsMismatch


class Holder(nn.Module):
    def __init__(self, lin):
        super().__init__()
        self.lin = lin


def test_full_rank_equals_the_linear():
    torch.manual_seed(0)
    lin = nn.Linear(12, 8, bias=True)
    x = torch.randn(5, 12)
    ref = lin(x)
    h = Holder(lin)
    rec = factorise(h, svdfac=1, targets=["lin"])
    assert rec["modules"] == {"lin": 8} and isinstance(h.lin, LowRankLinear)
    torch.testing.assert_close(h.lin(x), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape,svdfac", [((10, 7), 2), ((16, 16), 4), ((6, 20), 3)])
def test_truncation_error_is_the_discarded_singular_values(shape, svdfac):
    torch.manual_seed(1)
    lin = nn.Linear(shape[1], shape[0], bias=False)
    W = lin.weight.detach().double().numpy()
    r = min(shape) // svdfac
    lr = LowRankLinear.from_linear(lin, r)
    approx = (lr.weight2 @ lr.weight1).detach().double().numpy()
    sigma = np.linalg.svd(W, compute_uv=False)
    assert np.isclose(((W - approx) ** 2).sum(), (sigma[r:] ** 2).sum(), rtol=1e-4, atol=1e-8)
    # the two factors share sqrt(S): U2 = U sqrt(S) has column norms sqrt(sigma), as U1's rows
    np.testing.assert_allclose(lr.weight2.detach().norm(dim=0).numpy() ** 2, sigma[:r], rtol=1e-4)
    np.testing.assert_allclose(lr.weight1.detach().norm(dim=1).numpy() ** 2, sigma[:r], rtol=1e-4)


def test_rank_rule():
    assert rank_for(32, 32, 4) == 8 and rank_for(64, 32, 8) == 4 and rank_for(3, 9, 8) == 1


def test_parameter_counts_by_hand_rwkv7():
    # preset test: C=32, FFN 64, 2 layers; svdfac 4: r/k/v/o 32x32 -> rank 8: 8*(32+32) = 512
    # instead of 1024; key 64x32 and value 32x64 -> rank 8: 8*96 = 768 instead of 2048.
    m = random_rwkv7()
    before = model_size(m)["params"]
    rec = factorise(m, 4)
    assert len(rec["modules"]) == 12 and set(rec["modules"].values()) == {8}
    saved_per_layer = 4 * (1024 - 512) + 2 * (2048 - 768)
    assert before - model_size(m)["params"] == 2 * saved_per_layer == 9216


def test_parameter_counts_by_hand_llama():
    m = random_llama()
    c = m.config
    h, i, hd = c.hidden_size, c.intermediate_size, c.hidden_size // c.num_attention_heads
    kv = c.num_key_value_heads * hd
    shapes = [(h, h), (kv, h), (kv, h), (h, h), (i, h), (i, h), (h, i)]  # q k v o gate up down
    expected = c.num_hidden_layers * sum(o * n - (min(o, n) // 2) * (o + n) for o, n in shapes)
    before = model_size(m)["params"]
    factorise(m, 2)
    assert before - model_size(m)["params"] == expected


def test_relu_diag_variant():
    torch.manual_seed(2)
    lin = nn.Linear(12, 8, bias=False)
    lr = LowRankLinear.from_linear(lin, 4, "relu_diag")
    assert lr.weight1.shape == (4, 12) and lr.weight2.shape == (8, 4) and lr.diag.shape == (8,)
    assert lr.diag.requires_grad and float(lr.diag.detach().abs().sum()) == 0.0
    x = torch.randn(3, 12)
    torch.testing.assert_close(lr(x), torch.relu(x @ lr.weight1.T) @ lr.weight2.T)
    lr(x).sum().backward()
    assert lr.diag.grad is not None and float(lr.diag.grad.abs().sum()) > 0
    with torch.no_grad():  # rectangular diagonal: y_i += d_i x_i for i < min(out, in)
        lr.diag.fill_(2.0)
    torch.testing.assert_close(lr(x) - torch.relu(x @ lr.weight1.T) @ lr.weight2.T, 2 * x[:, :8])
    sq = LowRankLinear.from_linear(lin, 4, "sqrelu_diag")
    torch.testing.assert_close(sq(x), torch.relu(x @ sq.weight1.T) ** 2 @ sq.weight2.T)


@pytest.mark.parametrize("make,variant", [(random_rwkv7, "relu_diag"), (random_llama, "plain")])
def test_world_model_round_trip_is_exact(tmp_path, make, variant):
    from worldmodels.world_model import WorldModel

    m = make()
    factorise(m, 4, variant)
    with torch.no_grad():
        for mod in lowrank_modules(m).values():
            if mod.diag is not None:
                mod.diag.normal_()
    world_model_dir(tmp_path / "wm", m)
    cfg = json.loads((tmp_path / "wm" / "backbone" / "config.json").read_text())
    assert cfg["wm_lowrank"]["variant"] == variant and cfg["wm_lowrank"]["svdfac"] == 4
    wm = WorldModel.from_pretrained(tmp_path / "wm", device="cpu")
    assert set(lowrank_modules(wm.model)) == set(lowrank_modules(m))
    ids = torch.randint(1, 23, (2, 11))
    assert torch.equal(wm.model(input_ids=ids).logits, m(input_ids=ids).logits)


def _resave(d, drop=None, record=None):
    from safetensors.torch import load_file, save_file

    sd = load_file(d / "model.safetensors")
    if drop:
        sd.pop(drop)
    save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
    if record is not None:
        cfg = json.loads((d / "config.json").read_text())
        cfg["wm_lowrank"] = record
        (d / "config.json").write_text(json.dumps(cfg))


def test_strict_load_errors(tmp_path):
    from worldmodels.models import load_backbone

    m = random_rwkv7()
    rec = factorise(m, 4)
    d = tmp_path / "b"
    m.save_pretrained(d)
    key = "model.layers.0.attn.r_proj.weight1"
    _resave(d, drop=key)
    with pytest.raises(WeightsMismatch, match=r"missing key.*r_proj\.weight1"):
        load_backbone(d)
    m.save_pretrained(d)
    bad = {**rec, "modules": {**rec["modules"], "model.layers.0.attn.r_proj": 4}}
    _resave(d, record=bad)
    with pytest.raises(WeightsMismatch, match="shape mismatch"):
        load_backbone(d)
    _resave(d, record={**rec, "modules": {"model.layers.9.attn.r_proj": 4}})
    with pytest.raises(ValueError, match=r"config\.json.*model\.layers\.9\.attn\.r_proj"):
        load_backbone(d)


def test_factorise_errors():
    m = random_rwkv7()
    with pytest.raises(ValueError, match="svdfac"):
        factorise(m, 0)
    with pytest.raises(ValueError, match="variant"):
        factorise(m, 2, "cubic")
    with pytest.raises(ValueError, match="no nn.Linear"):
        factorise(m, 2, targets=["nope_proj"])
    factorise(m, 2)
    with pytest.raises(ValueError, match="already factorised"):
        factorise(m, 2)
