"""RWKV-7 against an independent reference: BlinkDL's ``rwkv`` package (0.8.32, its pure
PyTorch CPU inference, ``RWKV_V7_ON=1``) on the same random weights saved in its ``.pth``
layout; and strict loading of that layout.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/models/test_rwkv7_reference.py
"""

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rwkv7_toys import V, blinkdl_state_dict  # noqa: E402

from worldmodels.models.rwkv7_convert import load_blinkdl, load_rwkv7  # noqa: E402
from worldmodels.strict_load import WeightsMismatch  # noqa: E402
from worldmodels.train.rollout_cache import output_cache


@pytest.fixture(scope="module")
def blinkdl_rwkv():
    """BlinkDL's ``RWKV`` class in its RWKV-7 mode (the env must be set before the import)."""
    os.environ.update(RWKV_V7_ON="1", RWKV_JIT_ON="0", RWKV_CUDA_ON="0")
    pytest.importorskip("rwkv", reason="BlinkDL's rwkv package (dev extra) is not installed")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from rwkv.model import RWKV
    if RWKV.__name__ != "RWKV_x070":
        pytest.skip("rwkv.model was imported before RWKV_V7_ON=1 was set")
    return RWKV


@pytest.fixture(scope="module")
def pth(tmp_path_factory):
    """Random weights (2 layers, width 64, 4 heads of 16, vocab 50) as a BlinkDL .pth file."""
    path = tmp_path_factory.mktemp("rwkv7") / "toy.pth"
    torch.save(blinkdl_state_dict(seed=3), path)
    return path


TOKENS = torch.randint(0, V, (70,), generator=torch.Generator().manual_seed(1)).tolist()


@pytest.mark.parametrize("mode,chunk", [("chunk", 16), ("chunk", 64), ("recurrent", 32)])
def test_logits_equal_blinkdl_rwkv_sequence_and_stepwise(blinkdl_rwkv, pth, mode, chunk):
    """Our logits at every position == BlinkDL's full-sequence forward (its token loop) and its
    token-by-token forward with its state; ours fed as one sequence and token by token with
    our cache."""
    ref = blinkdl_rwkv(model=str(pth.with_suffix("")), strategy="cpu fp32")
    full, _ = ref.forward(TOKENS, None, full_output=True)  # (T, V)
    state, steps = None, []
    for t in TOKENS:
        out, state = ref.forward(t, state)
        steps.append(out)
    steps = torch.stack(steps)
    assert full.abs().max() > 1.0  # the logits are not trivially small
    model = load_blinkdl(pth, attn_mode=mode, chunk_size=chunk)
    with torch.no_grad():
        ours = model(torch.tensor([TOKENS])).logits[0]
        cache, ours_steps = None, []
        for t in TOKENS:
            o = model(torch.tensor([[t]]), cache=cache, use_cache=True)
            cache = output_cache(o)
            ours_steps.append(o.logits[0, -1])
    torch.testing.assert_close(ours, full, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(torch.stack(ours_steps), steps, atol=2e-5, rtol=1e-5)
    # the WKV state itself equals BlinkDL's (layer 1: state[1*3+1], (H,N,N) value-major)
    torch.testing.assert_close(cache.layers[1][1][0], state[4].float(), atol=2e-5, rtol=1e-5)


def test_blinkdl_gnorm_eps_and_sizes_read_off_the_file(pth):
    model = load_rwkv7(pth)
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.head_dim, c.num_heads, c.vocab_size) == (64, 2, 16, 4, V)
    assert (c.decay_low_rank_dim, c.intermediate_size) == (16, 128)
    assert model.model.layers[0].attn.g_norm.eps == 64e-5  # BlinkDL's ln_x eps, not head_dim*1e-5
    assert not model.training


def test_strict_blinkdl_loading_names_missing_and_unexpected_keys(tmp_path):
    sd = blinkdl_state_dict(seed=0)
    del sd["blocks.1.att.k_a"]
    torch.save(sd, tmp_path / "missing.pth")
    with pytest.raises(WeightsMismatch, match=r"missing\.pth.*model\.layers\.1\.attn\.k_a"):
        load_rwkv7(tmp_path / "missing.pth")
    sd = blinkdl_state_dict(seed=0)
    sd["blocks.1.att.extra"] = torch.zeros(3)
    torch.save(sd, tmp_path / "extra.pth")
    with pytest.raises(WeightsMismatch, match=r"unexpected.*blocks\.1\.att\.extra"):
        load_rwkv7(tmp_path / "extra.pth")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(WeightsMismatch, match="not an RWKV-7"):
        load_rwkv7(tmp_path / "other.pth")
    # layer 0's v0/v1/v2 are in every BlinkDL file and unused: dropped, not an error
    assert "blocks.0.att.v1" in blinkdl_state_dict(seed=0)
