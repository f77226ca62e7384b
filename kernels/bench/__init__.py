"""Kernel benchmarks behind ``wm bench kernels`` (GPU timings; CPU correctness only)."""
