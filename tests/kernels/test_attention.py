"""Triton FlashAttention forward/backward vs the plain-torch reference (CPU interpreter).

    TRITON_INTERPRET=1 .venv/bin/pytest -q tests/kernels/test_attention.py
"""

import math

import pytest
import torch

pytest.importorskip("triton")

from kernels.attention import FlashAttentionFunction, attention, attention_reference
from kernels.attention.triton_bwd import flash_attn_bwd
from kernels.attention.triton_fwd import flash_attn_fwd


def rel_rms(a, b) -> float:
    """RMS(a-b) / RMS(b) in float64. A reference that is zero up to fp32 round-off (dq, dk
    at N=1: softmax over one key has no gradient) is compared absolutely instead, against the
    unit scale of the test inputs."""
    a, b = a.double(), b.double()
    ref = b.pow(2).mean().sqrt()
    return ((a - b).pow(2).mean().sqrt() / (ref if ref > 1e-6 else 1.0)).item()


TOL = {torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 5e-3}
# (N, H, Hkv): odd lengths, GQA group sizes 1, 2 and 4
SHAPES = [(1, 4, 2), (17, 4, 2), (64, 2, 2), (130, 4, 1)]


def _inputs(n, h, hkv, d, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, do = (torch.randn(2, h, n, d, generator=g).to(dtype) for _ in range(2))
    k, v = (torch.randn(2, hkv, n, d, generator=g).to(dtype) for _ in range(2))
    return q, k, v, do


def _reference_grads(q, k, v, do, causal, scale=None):
    """fp32 reference on the (already rounded) inputs: output, natural lse, dq, dk, dv."""
    qf, kf, vf = (t.detach().float().clone().requires_grad_() for t in (q, k, v))
    o, lse = attention_reference(qf, kf, vf, causal, scale, return_lse=True)
    o.backward(do.float())
    return o.detach(), lse, qf.grad, kf.grad, vf.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16],
                         ids=["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("d", [32, 64, 128])
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "full"])
def test_forward_backward_match_reference(dtype, d, causal):
    for n, h, hkv in SHAPES:
        q, k, v, do = _inputs(n, h, hkv, d, dtype, seed=n)
        o, lse2 = flash_attn_fwd(q, k, v, causal)
        dq, dk, dv = flash_attn_bwd(do, q, k, v, o, lse2, causal)
        ro, rlse, rdq, rdk, rdv = _reference_grads(q, k, v, do, causal)
        assert o.dtype == dq.dtype == dk.dtype == dtype and o.shape == q.shape
        assert dk.shape == k.shape and dv.shape == v.shape
        assert torch.allclose(lse2 * math.log(2), rlse, atol=1e-4), (n, h, hkv)
        for name, got, ref in [("o", o, ro), ("dq", dq, rdq), ("dk", dk, rdk), ("dv", dv, rdv)]:
            err = rel_rms(got, ref)
            assert err <= TOL[dtype], f"{name} rel-RMS {err:.2e} at N={n} H={h} Hkv={hkv}"


def test_small_blocks_many_tiles_and_strided_inputs():
    """Blocks smaller than N exercise the multi-tile loops (unmasked + diagonal stages);
    q/k/v are non-contiguous (B,N,H,D) views, as transformers passes them."""
    n, h, hkv, d = 77, 4, 2, 32
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, n, h, d, generator=g).transpose(1, 2)  # (B,H,N,D) view
    k = torch.randn(2, n, hkv, d, generator=g).transpose(1, 2)
    v = torch.randn(2, n, hkv, d, generator=g).transpose(1, 2)
    do = torch.randn(2, h, n, d, generator=g)
    configs = [(True, (16, 32), (32, 16, 16, 32)), (False, (16, 32), (32, 16, 16, 32)),
               (True, (64, 16), (16, 64, 64, 16))]
    for causal, fwd_blocks, bwd_blocks in configs:
        o, lse2 = flash_attn_fwd(q, k, v, causal, block_m=fwd_blocks[0], block_n=fwd_blocks[1])
        dq, dk, dv = flash_attn_bwd(do, q, k, v, o, lse2, causal, blocks=bwd_blocks)
        ro, _, rdq, rdk, rdv = _reference_grads(q, k, v, do, causal)
        for got, ref in [(o, ro), (dq, rdq), (dk, rdk), (dv, rdv)]:
            assert rel_rms(got, ref) <= 1e-5


def test_attention_autograd_and_custom_scale():
    q, k, v, do = _inputs(33, 4, 2, 64, torch.float32, seed=3)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    out = attention(q, k, v, causal=True, scale=0.3)
    out.backward(do)
    ro, _, rdq, rdk, rdv = _reference_grads(q.detach(), k.detach(), v.detach(), do, True, 0.3)
    assert out.grad_fn is not None and "FlashAttentionFunction" in type(out.grad_fn).__name__
    for got, ref in [(out, ro), (q.grad, rdq), (k.grad, rdk), (v.grad, rdv)]:
        assert rel_rms(got.detach(), ref) <= 1e-5


def test_custom_op_under_torch_compile():
    """The torch.library op (fake + autograd registrations) traces under torch.compile."""
    q, k, v, do = _inputs(17, 4, 2, 32, torch.float32, seed=4)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    fn = torch.compile(lambda a, b, c: attention(a, b, c, causal=True), backend="aot_eager",
                       fullgraph=True)
    out = fn(q, k, v)
    out.backward(do)
    ro, _, rdq, rdk, rdv = _reference_grads(q.detach(), k.detach(), v.detach(), do, True)
    for got, ref in [(out, ro), (q.grad, rdq), (k.grad, rdk), (v.grad, rdv)]:
        assert rel_rms(got.detach(), ref) <= 1e-5


def test_dispatch_falls_back_to_sdpa_without_interpreter(monkeypatch):
    calls = []
    real_apply = FlashAttentionFunction.apply

    def spy(*args):  # counts kernel dispatches, then runs the kernel as before
        calls.append(args[0].shape)
        return real_apply(*args)

    monkeypatch.setattr(FlashAttentionFunction, "apply", spy)
    q, k, v, _ = _inputs(9, 4, 2, 48, torch.float32)  # D=48: not a kernel head dim
    out = attention(q, k, v, causal=True)
    assert out.grad_fn is None and calls == []
    assert rel_rms(out, attention_reference(q, k, v, True)) <= 1e-5
    q, k, v, _ = _inputs(9, 4, 2, 32, torch.float32)
    qg = q.clone().requires_grad_()
    out = attention(qg, k, v, causal=False, interpret=False)  # explicit opt-out -> SDPA
    assert calls == [] and "FlashAttentionFunction" not in type(out.grad_fn).__name__
    assert rel_rms(out.detach(), attention_reference(q, k, v, False)) <= 1e-5
    # the spy does see a dispatch: the same inputs without the opt-out go to the kernel
    out = attention(qg, k, v, causal=False)
    assert calls == [qg.shape] and "FlashAttentionFunction" in type(out.grad_fn).__name__


def test_bad_shapes_raise_clear_errors():
    q = torch.randn(1, 3, 8, 32)
    with pytest.raises(ValueError, match="multiple of kv heads"):
        attention(q, torch.randn(1, 2, 8, 32), torch.randn(1, 2, 8, 32))
    with pytest.raises(ValueError, match="4-D"):
        attention(q[0], q[0], q[0])


def test_custom_op_opcheck():
    """torch.library.opcheck: schema, fake (shapes/strides), autograd registration, AOT."""
    from kernels.attention.dispatch import flash_attn_fwd_op

    q, k, v, _ = _inputs(17, 4, 2, 32, torch.float32, seed=5)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    result = torch.library.opcheck(flash_attn_fwd_op, (q, k, v, True, 0.2))
    assert set(result.values()) == {"SUCCESS"}, result
