"""Shared benchmark helpers: device limits (roofline), timing, peak memory.

Limits used for the roofline line (measured, not datasheet, where known; see ARCHITECTURE.md):
H100: dense bf16 ~790 TFLOP/s, HBM ~3.0 TB/s; H200: ~790 TFLOP/s, ~4.3 TB/s. FP32 (non-tensor
core) peaks are datasheet values (~67 TFLOP/s for SXM parts) and only put fp32 VQ in context.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

# name substring -> (bf16 dense TFLOP/s measured, HBM TB/s measured, fp32 TFLOP/s datasheet)
DEVICE_LIMITS = {
    "H200": (790.0, 4.3, 67.0),
    "H100": (790.0, 3.0, 67.0),
}


def device_info() -> dict:
    """Name and roofline limits of the current device (limits None when unknown / CPU)."""
    if not torch.cuda.is_available():
        return {"name": "cpu", "cuda": False, "bf16_tflops": None, "hbm_tbs": None,
                "fp32_tflops": None}
    name = torch.cuda.get_device_name()
    limits = next((v for k, v in DEVICE_LIMITS.items() if k in name), (None, None, None))
    return {"name": name, "cuda": True, "bf16_tflops": limits[0], "hbm_tbs": limits[1],
            "fp32_tflops": limits[2], "torch": torch.__version__,
            "capability": list(torch.cuda.get_device_capability())}


def time_ms(fn: Callable[[], object], cuda: bool, warmup: int = 10, rep: int = 50,
            grad_to_none=None) -> float:
    """Median milliseconds per call: ``triton.testing.do_bench`` on GPU (L2 flushed between
    calls); on CPU a single wall-clock call (interpreter; not a speed figure)."""
    if cuda:
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=warmup, rep=rep, grad_to_none=grad_to_none,
                              return_mode="median"))
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def peak_mem_mb(fn: Callable[[], object], cuda: bool) -> float | None:
    """Extra peak GPU memory (MiB) one call allocates beyond what is live before it."""
    if not cuda:
        return None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def roofline(flops: float, bytes_moved: float, ms: float, dev: dict, fp32: bool = False) -> dict:
    """TFLOP/s, TB/s and their fractions of the device limits for one timed call."""
    s = ms / 1e3
    tflops, tbs = flops / s / 1e12, bytes_moved / s / 1e12
    peak = dev.get("fp32_tflops") if fp32 else dev.get("bf16_tflops")
    return {"tflops": round(tflops, 2), "tbs": round(tbs, 3),
            "frac_compute_peak": round(tflops / peak, 3) if peak else None,
            "compute_peak": "fp32 datasheet" if fp32 else "bf16 measured",
            "frac_hbm": round(tbs / dev["hbm_tbs"], 3) if dev.get("hbm_tbs") else None}
