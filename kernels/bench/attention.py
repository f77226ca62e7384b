"""Attention benchmark: Triton FlashAttention vs SDPA (FlashAttention backend), fwd and bwd.

FLOPs follow the FlashAttention papers: forward 4*B*H*N^2*D (two matmuls), halved when
causal; backward 2.5x the forward (five matmuls). Bytes (roofline) count q, k, v, o once
(forward) and q, k, v, o, do, dq, dk, dv once (backward).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kernels.bench.common import peak_mem_mb, roofline, time_ms


def _sdpa_flash(q, k, v, causal):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _ours(q, k, v, causal):
    from kernels.attention import attention

    return attention(q, k, v, causal=causal)


def check(dtype=torch.float16, device="cpu") -> list[dict]:
    """Correctness of the Triton kernels vs SDPA at small shapes (relative RMS error)."""
    rows = []
    for n, d, causal in [(64, 64, True), (50, 128, False)]:
        g = torch.Generator(device=device).manual_seed(0)
        q, k, v, do = (torch.randn(1, 4, n, d, generator=g, device=device, dtype=dtype)
                       for _ in range(4))
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        ref = [t.clone().float().requires_grad_() for t in (q, k, v)]
        o = _ours(*leaves, causal)
        o.backward(do)
        r = F.scaled_dot_product_attention(*ref, is_causal=causal)
        r.backward(do.float())
        errs = {name: ((a.float() - b).pow(2).mean().sqrt() / b.pow(2).mean().sqrt()).item()
                for name, a, b in [("o", o, r), ("dq", leaves[0].grad, ref[0].grad),
                                   ("dk", leaves[1].grad, ref[1].grad),
                                   ("dv", leaves[2].grad, ref[2].grad)]}
        rows.append({"op": "attention_check", "path": type(o.grad_fn).__name__, "N": n, "D": d, "causal": causal,
                     "dtype": str(dtype).removeprefix("torch."),
                     "rel_rms": {k_: float(f"{v_:.3e}") for k_, v_ in errs.items()}})
    return rows


def bench(dev: dict, quick: bool, dtype=torch.bfloat16) -> list[dict]:
    """Time fwd and bwd of both implementations for B=4, H=32 over N, D and causal."""
    b, h = 4, 32
    dims = (64,) if quick else (64, 128)
    lengths = (1024, 4096) if quick else (1024, 2048, 4096, 8192, 16384)
    rows = []
    for d in dims:
        for n in lengths:
            for causal in (True, False):
                rows += _bench_one(dev, b, h, n, d, causal, dtype)
    return rows


def _bench_one(dev, b, h, n, d, causal, dtype, device="cuda") -> list[dict]:
    """Rows for one shape (``device="cpu"`` only for smoke tests under the interpreter)."""
    cuda = device == "cuda"
    q, k, v, do = (torch.randn(b, h, n, d, device=device, dtype=dtype) for _ in range(4))
    flops_f = 4.0 * b * h * n * n * d * (0.5 if causal else 1.0)
    elt = q.element_size()
    bytes_f, bytes_b = 4 * q.numel() * elt, 8 * q.numel() * elt
    out, times = [], {}
    for impl, fn in (("triton", _ours), ("sdpa_flash", _sdpa_flash)):
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        fwd_ms = time_ms(lambda fn=fn, leaves=leaves: fn(*leaves, causal), cuda)
        o = fn(*leaves, causal)
        bwd_ms = time_ms(lambda o=o: o.backward(do, retain_graph=True), cuda,
                         grad_to_none=leaves)
        mem = peak_mem_mb(lambda fn=fn, leaves=leaves: fn(*leaves, causal).backward(do), cuda)
        path = type(o.grad_fn).__name__
        times[impl] = (fwd_ms, bwd_ms)
        for pas, ms, fl, by in (("fwd", fwd_ms, flops_f, bytes_f),
                                ("bwd", bwd_ms, 2.5 * flops_f, bytes_b)):
            out.append({"op": "attention", "pass": pas, "impl": impl, "B": b, "H": h, "N": n,
                        "D": d, "causal": causal, "dtype": str(dtype).removeprefix("torch."),
                        "ms": round(ms, 4), "peak_mem_mb_fwd_bwd": mem, "autograd_node": path,
                        **roofline(fl, by, ms, dev)})
        del o, leaves
    for row in out:  # speed relative to SDPA-FlashAttention (>1 = ours faster)
        if row["impl"] == "triton":
            i = 0 if row["pass"] == "fwd" else 1
            row["speedup_vs_sdpa"] = round(times["sdpa_flash"][i] / times["triton"][i], 3)
    return out
