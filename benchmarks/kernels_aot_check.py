"""Compile every Triton kernel for a GPU target *without a GPU* and report registers/spills.

    .venv/bin/python benchmarks/kernels_aot_check.py            # sm_90 (H100/H200)
    .venv/bin/python benchmarks/kernels_aot_check.py --arch 80  # A100

Uses the launch configs the launchers pick (``default_blocks``, ``bwd_blocks``, VQ
``_blocks``) and the specialisation Triton applies at a real launch (unit strides become
constants, pointers/strides divisible by 16). Catches compile errors the CPU interpreter
cannot see, and register spills ("STACK" > 0), which cost speed. It is not a timing.
Needs the ``ptxas``/``cuobjdump`` that ship inside the triton wheel.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)  # must precede the triton import

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from kernels.attention.triton_bwd import _bwd_dkdv, _bwd_dq, _bwd_preprocess, bwd_blocks  # noqa: E402
from kernels.attention.triton_fwd import _attn_fwd, default_blocks  # noqa: E402
from kernels.vq.triton_vq import _blocks as vq_blocks  # noqa: E402
from kernels.vq.triton_vq import _vq_kernel  # noqa: E402

UNIT_STRIDES = {"sqd", "skd", "svd", "sod", "sdd", "sdkd", "sdqd", "sxd", "scd"}
CUOBJDUMP = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"


def build(fn, ptrs: dict, consts: dict, floats=(), warps=4, stages=3, arch=90) -> str:
    """Compile one specialisation; returns cuobjdump's resource-usage line."""
    names = fn.arg_names
    consts = dict(consts) | {n: 1 for n in names if n in UNIT_STRIDES}
    sig = {n: "constexpr" if n in consts else ptrs.get(n, "fp32" if n in floats else "i32")
           for n in names}
    div = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(names)
           if n in ptrs or (sig[n] == "i32" and n.startswith("s"))}
    src = ASTSource(fn, sig, constexprs={(names.index(n),): v for n, v in consts.items()},
                    attrs=div)
    k = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                       options={"num_warps": warps, "num_stages": stages})
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(k.asm["cubin"])
        f.flush()
        out = subprocess.run([str(CUOBJDUMP), "-res-usage", f.name], capture_output=True,
                             text=True, check=True).stdout
    line = next(ln.strip() for ln in out.splitlines() if "REG:" in ln)
    return " ".join(line.split()[:2])  # "REG:n STACK:m"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", type=int, default=90)
    arch = ap.parse_args().arch
    for dt in ("fp16", "bf16"):
        for d in (32, 64, 128):
            bm, bn, w, st = default_blocks(d, 4096, 4096, False)
            for causal in (True, False):
                io = {n: f"*{dt}" for n in ("Q", "K", "V", "Out")} | {"LSE": "*fp32"}
                r = build(_attn_fwd, io, {"HEAD_DIM": d, "BLOCK_M": bm, "BLOCK_N": bn,
                                          "CAUSAL": causal, "UPCAST": False},
                          ("qk_scale",), w, st, arch)
                print(f"fwd   {dt} D={d:<3} causal={causal!s:<5} M{bm} N{bn} w{w}: {r}")
            m1, n1, m2, n2, w, st = bwd_blocks(d, 4096, 4096, False)
            stats = {"LSE": "*fp32", "Delta": "*fp32"}
            r = build(_bwd_preprocess, {"Out": f"*{dt}", "DO": f"*{dt}", "Delta": "*fp32"},
                      {"HEAD_DIM": d, "BLOCK_M": m2}, arch=arch)
            print(f"delta {dt} D={d:<3}: {r}")
            for causal in (True, False):
                io = {n: f"*{dt}" for n in ("Q", "K", "V", "DO", "DK", "DV")} | stats
                r = build(_bwd_dkdv, io, {"HEAD_DIM": d, "BLOCK_M": m1, "BLOCK_N": n1,
                                          "CAUSAL": causal, "UPCAST": False},
                          ("qk_scale", "sm_scale"), w, st, arch)
                print(f"dkdv  {dt} D={d:<3} causal={causal!s:<5} M{m1} N{n1} w{w}: {r}")
                io = {n: f"*{dt}" for n in ("Q", "K", "V", "DO", "DQ")} | stats
                r = build(_bwd_dq, io, {"HEAD_DIM": d, "BLOCK_M": m2, "BLOCK_N": n2,
                                        "CAUSAL": causal, "UPCAST": False},
                          ("qk_scale", "sm_scale"), w, st, arch)
                print(f"dq    {dt} D={d:<3} causal={causal!s:<5} M{m2} N{n2} w{w}: {r}")
    for dt, prec in (("fp32", "tf32x3"), ("bf16", "tf32")):
        for dim in (16, 64, 128, 256):
            bn, bk, w, st = vq_blocks(1 << 20, 16384, dim, False)
            io = {"X": f"*{dt}", "C": f"*{dt}", "IDX": "*i64", "DIST": "*fp32",
                  "CODES": f"*{dt}", "ERR": "*fp32"}
            r = build(_vq_kernel, io, {"BLOCK_N": bn, "BLOCK_K": bk, "BLOCK_D": dim,
                                       "WITH_CODES": True, "UPCAST": False, "PRECISION": prec},
                      (), w, st, arch)
            print(f"vq    {dt} D={dim:<3} N{bn} K{bk} w{w}: {r}")


if __name__ == "__main__":
    main()
