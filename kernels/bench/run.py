"""``wm bench kernels``: run the kernel benchmarks and write one JSON file.

    wm bench kernels --out runs/bench            # on a CUDA GPU: full sweep (minutes)
    wm bench kernels --out runs/bench --quick    # fewer shapes
    wm bench kernels --out runs/bench --only vq

Without CUDA there is nothing to time: the command says so, runs the Triton kernels once
under Triton's CPU interpreter as a correctness check (fp32/fp16 only), and records the
interpreter wall time explicitly labelled as *not* a speed figure.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ONLY = ("all", "attention", "vq")


@dataclass
class KernelBenchConfig:
    """Settings of one ``wm bench kernels`` run.

    Attributes:
        out: directory; the results go to ``out/kernels.json`` and the tables to
            ``out/kernels.md`` (created if missing).
        quick: fewer shapes (attention D=64, N in {1k, 4k}; VQ N up to 256k, K up to 4k).
        only: "all", "attention" or "vq".
    """

    out: str
    quick: bool = False
    only: str = "all"

    def __post_init__(self) -> None:
        if self.only not in ONLY:
            raise ValueError(f"--only must be one of {ONLY}, got {self.only!r}")
        if not str(self.out):
            raise ValueError("--out must name a directory")


def _prepare_cpu_interpreter() -> bool:
    """Select Triton's interpreter before any Triton import; False if it is too late."""
    import sys

    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
        return False
    os.environ["TRITON_INTERPRET"] = "1"
    return True


def run_kernel_bench(cfg: KernelBenchConfig, echo=print) -> Path:
    """Run the benchmarks selected by ``cfg``; returns the JSON path written."""
    import torch

    cuda = torch.cuda.is_available()
    if not cuda:
        ok = _prepare_cpu_interpreter()
    from kernels._runtime import HAS_TRITON, set_interpreter
    from kernels.bench import attention as att
    from kernels.bench import vq
    from kernels.bench.common import device_info

    dev = device_info()
    result = {"config": asdict(cfg), "device": dev, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "rows": []}
    t0 = time.perf_counter()
    if not HAS_TRITON:
        result["note"] = "Triton is not installed: nothing to benchmark (pip install triton)."
        echo(result["note"])
    elif cuda:
        echo(f"device: {dev['name']} (roofline: {dev['bf16_tflops']} TFLOP/s bf16, "
             f"{dev['hbm_tbs']} TB/s)")
        if cfg.only in ("all", "attention"):
            result["rows"] += att.check(torch.float16, "cuda") + att.bench(dev, cfg.quick)
        if cfg.only in ("all", "vq"):
            result["rows"] += vq.check("cuda") + vq.bench(dev, cfg.quick)
    else:
        result["note"] = ("No CUDA device: speed numbers need a GPU and are owed. Ran the "
                          "Triton kernels once under Triton's CPU interpreter as a correctness "
                          "check; 'interpreter_seconds' is NOT a speed figure.")
        echo(result["note"])
        if not ok:
            result["note"] += " (Triton was already imported without TRITON_INTERPRET=1: skipped)"
        else:
            previous = set_interpreter(True)
            try:
                if cfg.only in ("all", "attention"):
                    result["rows"] += att.check(torch.float32) + att.check(torch.float16)
                if cfg.only in ("all", "vq"):
                    result["rows"] += vq.check()
            finally:
                set_interpreter(previous)
    result["interpreter_seconds" if not cuda else "wall_seconds"] = round(
        time.perf_counter() - t0, 2)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "kernels.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(path)
    from kernels.bench.report import markdown

    (out / "kernels.md").write_text(markdown(result))
    for row in result["rows"]:
        echo(json.dumps(row))
    echo(f"wrote {path} and {out / 'kernels.md'}")
    return path
