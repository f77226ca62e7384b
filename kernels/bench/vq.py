"""VQ benchmark: fused Triton nearest-code vs chunked torch and cdist+argmin.

FLOPs: 2*N*K*D for the x.c products (the dominant term). Bytes (roofline): x, codebook and
outputs once. ``cdist+argmin`` materialises the N x K matrix, so it is skipped (and recorded
as skipped) when that matrix would not fit in a quarter of free GPU memory.
"""

from __future__ import annotations

import torch

from kernels.bench.common import peak_mem_mb, roofline, time_ms


def _cdist_argmin(x, c):
    return torch.cdist(x, c).argmin(1)


def _fused(x, c):
    from kernels.vq import nearest_code

    return nearest_code(x, c)


def _chunked(x, c):
    from kernels.vq import nearest_code_reference

    return nearest_code_reference(x, c)


IMPLS = (("triton_fused", _fused), ("torch_chunked", _chunked), ("cdist_argmin", _cdist_argmin))


def check(device="cpu") -> list[dict]:
    """Correctness of the fused kernel vs the chunked reference at a small shape."""
    from kernels.vq import nearest_code, nearest_code_reference

    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(500, 32, generator=g, device=device)
    c = torch.randn(700, 32, generator=g, device=device)
    idx, dist = nearest_code(x, c)
    ridx, rdist = nearest_code_reference(x, c)
    return [{"op": "vq_check", "N": 500, "K": 700, "D": 32,
             "index_agreement": (idx == ridx).float().mean().item(),
             "max_abs_dist_err": (dist - rdist).abs().max().item()}]


def bench(dev: dict, quick: bool, d: int = 64) -> list[dict]:
    """Time the three implementations over N and K (fp32 inputs, like the tokenizer)."""
    ns = (65536, 262144) if quick else (65536, 262144, 1048576)
    ks = (1024, 4096) if quick else (1024, 4096, 16384)
    rows = []
    for n in ns:
        for k in ks:
            rows += _bench_nk(dev, n, k, d, IMPLS)
    return rows


def _bench_nk(dev: dict, n: int, k: int, d: int, impls, device="cuda") -> list[dict]:
    """Rows for one (N, K) (``device="cpu"`` only for smoke tests under the interpreter)."""
    cuda = device == "cuda"
    x = torch.randn(n, d, device=device)  # (N,D)
    c = torch.randn(k, d, device=device)  # (K,D)
    flops, by = 2.0 * n * k * d, 4.0 * (n * d + k * d + 2 * n)
    rows, times = [], {}
    for impl, fn in impls:
        row = {"op": "vq", "impl": impl, "N": n, "K": k, "D": d, "dtype": "float32"}
        free = torch.cuda.mem_get_info()[0] if cuda else float("inf")
        if impl == "cdist_argmin" and n * k * 4 > free / 4:
            row["skipped"] = f"N x K matrix needs {n * k * 4 / 2**30:.1f} GiB"
            rows.append(row)
            continue
        ms = time_ms(lambda fn=fn: fn(x, c), cuda, warmup=5, rep=20)
        times[impl] = ms
        row.update(ms=round(ms, 4), peak_mem_mb=peak_mem_mb(lambda fn=fn: fn(x, c), cuda),
                   **roofline(flops, by, ms, dev, fp32=True))
        rows.append(row)
    for row in rows:
        if row["impl"] == "triton_fused" and "torch_chunked" in times:
            row["speedup_vs_chunked"] = round(times["torch_chunked"] / times["triton_fused"], 3)
    return rows
