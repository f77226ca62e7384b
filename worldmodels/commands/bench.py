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


# ---- `wm bench rollout` -----------------------------------------------------------------


@app.command("rollout")
def rollout_cmd(
    out: Path = typer.Option(..., "--out", help="output directory (writes bench_rollout.json/.md)"),
    model: str | None = typer.Option(None, "--model", help="world-model directory; default: a "
                                     "randomly initialised backbone of --preset"),
    preset: str = typer.Option("tiny", "--preset", help="backbone preset without --model"),
    batch: int = typer.Option(32, "--batch", min=1),
    prompt_len: int = typer.Option(64, "--prompt-len", min=1),
    new_tokens: int = typer.Option(128, "--new-tokens", min=1),
    repeats: int = typer.Option(3, "--repeats", min=1),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """KV-cached rollout engine vs `model.generate` on the same batch: tokens/s and their ratio.

        wm bench rollout --out runs/bench --model runs/wm_video
    """
    from worldmodels.train.rollout_bench import run

    result = run(out, model_dir=model, preset=preset, batch=batch, prompt_len=prompt_len,
                 new_tokens=new_tokens, repeats=repeats, device=device)
    typer.echo(f"rollout {result['rollout_tok_s']:.0f} tok/s, generate "
               f"{result['generate_tok_s']:.0f} tok/s, ratio {result['ratio']:.2f} -> {out}")
