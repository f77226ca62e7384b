"""Markdown tables from ``kernels.json`` rows (pasted into the README by whoever ran them)."""

from __future__ import annotations


def _fmt(v, nd=2) -> str:
    return "-" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def attention_table(rows: list[dict]) -> list[str]:
    """One line per (D, N, causal, pass): ours vs SDPA-FlashAttention."""
    by = {}
    for r in rows:
        if r.get("op") == "attention":
            by.setdefault((r["D"], r["N"], r["causal"], r["pass"]), {})[r["impl"]] = r
    out = ["| D | N | causal | pass | Triton ms | Triton TFLOP/s | frac peak | SDPA-FA ms | "
           "SDPA-FA TFLOP/s | Triton/SDPA speed |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (d, n, causal, pas), imp in sorted(by.items()):
        t, s = imp.get("triton", {}), imp.get("sdpa_flash", {})
        out.append(f"| {d} | {n} | {causal} | {pas} | {_fmt(t.get('ms'), 3)} | "
                   f"{_fmt(t.get('tflops'), 1)} | {_fmt(t.get('frac_compute_peak'))} | "
                   f"{_fmt(s.get('ms'), 3)} | {_fmt(s.get('tflops'), 1)} | "
                   f"{_fmt(t.get('speedup_vs_sdpa'))} |")
    return out


def vq_table(rows: list[dict]) -> list[str]:
    """One line per (N, K): fused vs chunked vs cdist, time and peak memory."""
    by = {}
    for r in rows:
        if r.get("op") == "vq":
            by.setdefault((r["N"], r["K"], r["D"]), {})[r["impl"]] = r
    out = ["| N | K | D | fused ms | fused TFLOP/s | chunked ms | cdist ms | fused speed-up "
           "vs chunked | fused / chunked / cdist peak MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for (n, k, d), imp in sorted(by.items()):
        f, c, x = imp.get("triton_fused", {}), imp.get("torch_chunked", {}), imp.get("cdist_argmin", {})
        mem = " / ".join(_fmt(i.get("peak_mem_mb"), 0) for i in (f, c, x))
        out.append(f"| {n} | {k} | {d} | {_fmt(f.get('ms'), 3)} | {_fmt(f.get('tflops'), 1)} | "
                   f"{_fmt(c.get('ms'), 3)} | {x.get('skipped') or _fmt(x.get('ms'), 3)} | "
                   f"{_fmt(f.get('speedup_vs_chunked'))} | {mem} |")
    return out


def markdown(result: dict) -> str:
    """The whole report: device line, note, then the two tables (when they have rows)."""
    dev = result.get("device", {})
    lines = [f"# Kernel benchmark: {dev.get('name', '?')}", ""]
    if result.get("note"):
        lines += [result["note"], ""]
    att, vq = attention_table(result["rows"]), vq_table(result["rows"])
    if len(att) > 2:
        lines += ["## Attention (bf16, B=4, H=32)", "", *att, ""]
    if len(vq) > 2:
        lines += ["## VQ nearest code (fp32)", "", *vq, ""]
    return "\n".join(lines)
