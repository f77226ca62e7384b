"""`wm bench kernels` on a machine without CUDA, and the GPU code paths run on CPU (smoke).

    TRITON_INTERPRET=1 .venv/bin/pytest -q tests/kernels/test_bench.py
"""

import json

import pytest
import torch
from typer.testing import CliRunner

from kernels.bench import attention as att
from kernels.bench import vq
from kernels.bench.common import roofline
from kernels.bench.report import markdown

CPU_DEV = {"name": "cpu", "cuda": False, "bf16_tflops": None, "hbm_tbs": None,
           "fp32_tflops": None}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU behaviour")
def test_cli_without_gpu_writes_correctness_json(tmp_path):
    from worldmodels.cli import app

    res = CliRunner().invoke(app, ["bench", "kernels", "--out", str(tmp_path), "--quick"])
    assert res.exit_code == 0, res.output
    assert "speed numbers need a GPU" in res.output
    data = json.loads((tmp_path / "kernels.json").read_text())
    assert "NOT a speed figure" in (tmp_path / "kernels.md").read_text()
    assert "NOT a speed figure" in data["note"] and data["device"]["cuda"] is False
    checks = {r["op"] for r in data["rows"]}
    assert checks == {"attention_check", "vq_check"}
    for row in data["rows"]:
        if row["op"] == "attention_check":
            assert row["path"] == "FlashAttentionFunctionBackward"  # the Triton kernel ran
            assert max(row["rel_rms"].values()) < 5e-3
        else:
            assert row["index_agreement"] == 1.0


def test_cli_rejects_bad_only(tmp_path):
    from worldmodels.cli import app

    res = CliRunner().invoke(app, ["bench", "kernels", "--out", str(tmp_path), "--only", "x"])
    assert res.exit_code != 0 and "--only" in res.output


def test_benchmark_rows_on_cpu_shapes():
    """The per-shape GPU benchmark code, run on tiny CPU tensors (times are meaningless)."""
    rows = att_rows = att._bench_one(CPU_DEV, 1, 2, 32, 32, True, torch.float16, device="cpu")
    assert {(r["impl"], r["pass"]) for r in rows} == {
        ("triton", "fwd"), ("triton", "bwd"), ("sdpa_flash", "fwd"), ("sdpa_flash", "bwd")}
    ours = [r for r in rows if r["impl"] == "triton"]
    assert all(r["autograd_node"] == "FlashAttentionFunctionBackward" and "speedup_vs_sdpa" in r
               for r in ours)
    rows = vq._bench_nk(CPU_DEV, 64, 40, 16, vq.IMPLS, device="cpu")
    assert [r["impl"] for r in rows] == ["triton_fused", "torch_chunked", "cdist_argmin"]
    assert "speedup_vs_chunked" in rows[0] and all(r["ms"] > 0 for r in rows)
    md = markdown({"device": CPU_DEV, "rows": rows + att_rows})
    assert "| 64 | 40 | 16 |" in md and "| 32 | 32 | True | bwd |" in md


def test_roofline_fractions():
    dev = {"bf16_tflops": 790.0, "hbm_tbs": 3.0, "fp32_tflops": 67.0}
    r = roofline(flops=395e12, bytes_moved=1.5e12, ms=1000.0, dev=dev)
    assert r["tflops"] == 395.0 and r["frac_compute_peak"] == 0.5 and r["frac_hbm"] == 0.5
    assert roofline(67e12, 0, 1000.0, dev, fp32=True)["frac_compute_peak"] == 1.0
