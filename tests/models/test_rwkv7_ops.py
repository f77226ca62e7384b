"""RWKV-7 time-mix kernels: the chunked form equals the token-by-token recurrence (values,
final state and gradients), stays finite on long sequences at the strongest decay, and leaves
the state untouched at padded (identity) positions; token shift skips padding.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/models/test_rwkv7_ops.py
"""

import math

import pytest
import torch
import torch.nn.functional as F

from worldmodels.models.rwkv7_ops import token_shift, wkv7, wkv7_chunked, wkv7_recurrent


def inputs(B=2, T=45, H=2, N=8, seed=0, decay="random", gate=None):
    g = torch.Generator().manual_seed(seed)
    r, k, v = (torch.randn(B, T, H, N, generator=g) for _ in range(3))
    s = torch.rand(B, T, H, N, generator=g) if decay == "random" else torch.ones(B, T, H, N)
    log_w = -math.exp(-0.5) * s  # RWKV-7's range: w in [0.545, 1)
    kk = F.normalize(torch.randn(B, T, H, N, generator=g), dim=-1)
    a = torch.rand(B, T, H, N, generator=g) if gate is None else torch.full((B, T, H, N), gate)
    S0 = torch.randn(B, H, N, N, generator=g)
    return r, log_w, k, v, -kk, kk * a, S0


def naive(r, log_w, k, v, a, b, S):
    """The recurrence written per row and head with explicit outer products (BlinkDL's loop)."""
    B, T, H, N = r.shape
    S = S.clone()
    y = torch.zeros(B, T, H, N)
    for bi in range(B):
        for h in range(H):
            s = S[bi, h]
            for t in range(T):
                w = log_w[bi, t, h].exp()
                s = s * w[None, :] + torch.outer(s @ a[bi, t, h], b[bi, t, h]) + torch.outer(v[bi, t, h], k[bi, t, h])
                y[bi, t, h] = s @ r[bi, t, h]
            S[bi, h] = s
    return y, S


def test_recurrent_equals_naive_loop():
    x = inputs(T=9)
    y, S = wkv7_recurrent(*x)
    y_ref, S_ref = naive(*x)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(S, S_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk", [1, 7, 16, 32, 64])
@pytest.mark.parametrize("T", [1, 45, 64])
def test_chunked_equals_recurrent(chunk, T):
    x = inputs(T=T, seed=chunk + T)
    y, S = wkv7_chunked(*x, chunk_size=chunk)
    y_ref, S_ref = wkv7_recurrent(*x)
    scale = y_ref.abs().max()
    torch.testing.assert_close(y / scale, y_ref / scale, atol=2e-6, rtol=0)
    torch.testing.assert_close(S, S_ref, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("decay", ["random", "strongest"])
def test_long_sequence_is_finite_and_equal(decay):
    """300 tokens at chunk 64 (cumulative decay e^-39 inside a chunk) and a = 1 (the removal
    term at full strength): finite, and equal to the recurrence."""
    x = inputs(B=1, T=300, H=2, N=16, seed=5, decay=decay, gate=1.0)
    y, S = wkv7_chunked(*x, chunk_size=64)
    y_ref, S_ref = wkv7_recurrent(*x)
    assert torch.isfinite(y).all() and torch.isfinite(S).all()
    scale = y_ref.abs().max()
    torch.testing.assert_close(y / scale, y_ref / scale, atol=5e-6, rtol=0)
    torch.testing.assert_close(S, S_ref, atol=5e-5, rtol=1e-4)


def test_chunked_gradients_equal_recurrent_gradients():
    x = [t.clone().double().requires_grad_() for t in inputs(T=21, seed=2)]
    w_out = torch.randn(2, 21, 2, 8, dtype=torch.double)
    w_state = torch.randn(2, 2, 8, 8, dtype=torch.double)

    def grads(fn):
        y, S = fn(*x)
        loss = (y.double() * w_out).sum() + (S.double() * w_state).sum()
        return torch.autograd.grad(loss, x)

    # the kernels compute in float32; compare float32 gradients of both forms
    g_chunk = grads(lambda *a: wkv7_chunked(*a, chunk_size=8))
    g_rec = grads(wkv7_recurrent)
    for name, gc, gr in zip(("r", "log_w", "k", "v", "a", "b", "state"), g_chunk, g_rec, strict=True):
        scale = gr.abs().max()
        assert scale > 0, name
        torch.testing.assert_close(gc / scale, gr / scale, atol=1e-5, rtol=0, msg=name)


def test_identity_positions_leave_the_state_unchanged():
    """log_w = 0, k = 0, a = b = 0 at a position: the state passes through exactly, so a
    sequence with such positions inserted ends in the same state."""
    r, log_w, k, v, a, b, S0 = inputs(B=1, T=12, seed=4)
    pad = torch.zeros(12, dtype=torch.bool)
    pad[[0, 1, 5, 11]] = True
    lw, kz, az, bz = (t.masked_fill(pad[None, :, None, None], 0.0) for t in (log_w, k, a, b))
    keep = ~pad
    for fn in (wkv7_recurrent, lambda *z: wkv7_chunked(*z, chunk_size=4)):
        y, S = fn(r, lw, kz, v, az, bz, S0)
        y_ref, S_ref = fn(*(t[:, keep] for t in (r, log_w, k, v, a, b)), S0)
        torch.testing.assert_close(S, S_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(y[:, keep], y_ref, atol=1e-5, rtol=1e-5)


def test_dispatch_modes_agree_and_bad_chunk_raises():
    x = inputs(T=10, seed=8)
    y1, S1 = wkv7(*x, mode="chunk", chunk_size=4)
    y2, S2 = wkv7(*x, mode="recurrent")
    torch.testing.assert_close(y1, y2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(S1, S2, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="chunk_size"):
        wkv7_chunked(*x, chunk_size=65)


def test_token_shift_skips_padding():
    x = torch.arange(1, 7, dtype=torch.float32).view(1, 6, 1).repeat(2, 1, 1)  # tokens 1..6
    mask = torch.tensor([[0, 0, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    prev, new = token_shift(x, mask, torch.tensor([[10.0], [20.0]]))
    # row 0: before the first real token the cache (10); after padding the last real token
    assert prev[0, :, 0].tolist() == [10, 10, 10, 3, 4, 4]
    assert prev[1, :, 0].tolist() == [20, 1, 2, 3, 4, 5]
    assert new[:, 0].tolist() == [6, 6]
    # a row with no real token keeps its cache; no mask = plain shift with zeros at the start
    _, kept = token_shift(x[:1], torch.zeros(1, 6, dtype=torch.bool), torch.tensor([[7.0]]))
    assert kept.item() == 7
    plain, last = token_shift(x[:1], None, None)
    assert plain[0, :, 0].tolist() == [0, 1, 2, 3, 4, 5] and last.item() == 6
