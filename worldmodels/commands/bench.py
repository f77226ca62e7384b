"""`wm bench`: benchmarks.

    wm bench kernels --out runs/bench [--quick] [--only attention|vq]

``kernels`` times the Triton attention and VQ kernels against torch (SDPA-FlashAttention,
chunked search, cdist) on a CUDA GPU and writes ``<out>/kernels.json``; without a GPU it only
checks correctness under Triton's CPU interpreter and says that the speed numbers are owed.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="benchmarks (kernels; rollout engine)", no_args_is_help=True)


@app.command("kernels")
def kernels_cmd(
    out: Path = typer.Option(..., "--out", help="output directory (writes kernels.json)"),
    quick: bool = typer.Option(False, "--quick", help="fewer shapes"),
    only: str = typer.Option("all", "--only", help="all | attention | vq"),
) -> None:
    """Attention fwd/bwd vs SDPA-FlashAttention and VQ search vs torch: time, TFLOP/s, memory."""
    from kernels.bench.run import KernelBenchConfig, run_kernel_bench

    try:
        cfg = KernelBenchConfig(out=str(out), quick=quick, only=only)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    run_kernel_bench(cfg, echo=typer.echo)


# ---- `wm bench rollout` (lead): add the rollout-engine benchmark command here. -------------
