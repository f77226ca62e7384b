"""Fused VQ nearest-code kernel vs brute force (CPU interpreter).

    TRITON_INTERPRET=1 .venv/bin/pytest -q tests/kernels/test_vq.py
"""

import pytest
import torch

pytest.importorskip("triton")

from kernels.vq import nearest_code, nearest_code_reference, quantize, quantize_reference
from kernels.vq.triton_vq import vq_triton


def _brute(x, c):
    """(N,K) squared distances in float64 by direct differences (no expansion)."""
    return (x.double()[:, None, :] - c.double()[None, :, :]).pow(2).sum(-1)


def _assert_nearest(idx, x, c, rtol=1e-5):
    """The chosen code is a nearest one: its distance equals the brute-force minimum."""
    d = _brute(x, c)
    chosen = d.gather(1, idx[:, None])[:, 0]
    best = d.min(1).values
    assert torch.all(chosen <= best + rtol * (1 + best)), (chosen - best).max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16],
                         ids=["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("n,k,d", [(1, 5, 3), (300, 257, 16), (130, 1000, 64), (64, 100, 100)])
def test_nearest_code_matches_brute_force(dtype, n, k, d):
    g = torch.Generator().manual_seed(n + k)
    x = torch.randn(n, d, generator=g).to(dtype)
    c = torch.randn(k, d, generator=g).to(dtype)
    out = quantize(x, c)
    assert out.indices.dtype == torch.int64 and out.indices.shape == (n,)
    assert out.sq_dist.dtype == torch.float32 and out.codes.dtype == dtype
    _assert_nearest(out.indices, x, c)
    exact = _brute(x, c).gather(1, out.indices[:, None])[:, 0]
    assert torch.allclose(out.sq_dist.double(), exact, rtol=1e-4, atol=1e-3)
    assert torch.equal(out.codes, c[out.indices])  # gather
    assert torch.allclose(out.sq_err.double(), exact, rtol=1e-5, atol=1e-5)
    assert torch.allclose(out.sq_err_sum.double(), exact.sum(), rtol=1e-5)
    ref = quantize_reference(x, c)
    assert torch.allclose(out.sq_err_sum, ref.sq_err_sum, rtol=1e-5)
    idx, dist = nearest_code(x, c)  # dispatching entry point, same kernel
    assert torch.equal(idx, out.indices) and torch.equal(dist, out.sq_dist)


def test_ties_accept_any_nearest_code():
    """Duplicated codes (exact ties) and a vector equidistant from two codes."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(40, 8, generator=g)
    c = torch.cat([base, base[:10]])  # codes 40..49 duplicate 0..9
    x = torch.cat([base[:10] + 0.01, base[30:35]])
    idx, dist = nearest_code(x, c)
    ref_idx, _ = nearest_code_reference(x, c)
    for i, (a, b) in enumerate(zip(idx.tolist(), ref_idx.tolist(), strict=True)):
        assert a == b or torch.equal(c[a], c[b]), (i, a, b)
    assert set(idx[:10].tolist()) <= set(range(10)) | set(range(40, 50))
    _assert_nearest(idx, x, c)
    # midpoint of two codes: both are nearest
    c2 = torch.tensor([[0.0, 0.0], [2.0, 0.0], [9.0, 9.0]])
    idx2, dist2 = nearest_code(torch.tensor([[1.0, 0.0]]), c2)
    assert idx2.item() in (0, 1) and abs(dist2.item() - 1.0) < 1e-6


def test_many_codebook_tiles_and_strided_input():
    """Small blocks force several codebook tiles per program (running argmin across tiles)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(16, 70, generator=g).t()  # (70,16) non-contiguous
    c = torch.randn(300, 16, generator=g)
    idx, dist, codes, err = vq_triton(x, c, with_codes=True, block_n=16, block_k=32)
    _assert_nearest(idx, x, c)
    assert torch.equal(idx, nearest_code_reference(x, c)[0])
    assert torch.equal(codes, c[idx])


def test_reference_path_when_interpreter_off():
    x, c = torch.randn(10, 4), torch.randn(7, 4)
    idx, dist = nearest_code(x, c, interpret=False)
    ridx, rdist = nearest_code_reference(x, c)
    assert torch.equal(idx, ridx) and torch.equal(dist, rdist)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"x \(N,D\) and codebook \(K,D\)"):
        nearest_code(torch.randn(3, 4), torch.randn(5, 3))
    with pytest.raises(ValueError, match="empty"):
        quantize(torch.randn(3, 4), torch.randn(0, 4))
