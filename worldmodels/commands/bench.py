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
    stop_answers: bool = typer.Option(True, "--stop-answers/--no-stop-answers",
                                      help="also time text-like answers of mixed lengths that end "
                                      "at stop ids (both paths exit early)"),
    repeats: int = typer.Option(3, "--repeats", min=1),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """KV-cached rollout engine vs `model.generate` on the same batch: tokens/s and their ratio
    (fixed length; answers with stop ids; the interleaved generate/force pattern).

        wm bench rollout --out runs/bench --model runs/wm_video
    """
    from worldmodels.train.rollout_bench import run

    kw = _model_sizes(model) if model else {}
    result = run(out, preset=preset, batch=batch, prompt_len=prompt_len, new_tokens=new_tokens,
                 stop_answers=stop_answers, repeats=repeats, device=device, **kw)
    line = (f"rollout {result['rollout_tok_s']:.0f} tok/s, generate "
            f"{result['generate_tok_s']:.0f} tok/s, ratio {result['ratio']:.2f}")
    if "stop_ratio" in result:
        line += f"; with stop ids ratio {result['stop_ratio']:.2f}"
    typer.echo(f"{line} -> {out}")


def _model_sizes(model_dir: str) -> dict:
    """The backbone and the interleaved pattern of world model ``model_dir`` as plain sizes for
    the engine benchmark (a video model: one frame's tokens, vocab-masked to the visual codes,
    with the action tokens forced between frames)."""
    from worldmodels.world_model import read_world_model_meta

    try:
        meta = read_world_model_meta(model_dir)
    except (FileNotFoundError, ValueError) as e:
        raise typer.BadParameter(str(e), param_hint="--model") from e
    kw = {"backbone_dir": Path(model_dir) / meta.get("backbone", "backbone")}
    lay = meta.get("layout")
    if meta["kind"] == "video" and lay:
        skip = lay.get("spec", {}).get("frame_skip", 1)
        n_act, vis = skip * len(lay["actions"]["low"]), lay["visual_vocab"]
        off = lay.get("action_offset", vis)
        kw.update(segment_tokens=lay["frame_tokens"], forced_tokens=n_act, allowed=(0, vis),
                  forced_range=(off, off + lay.get("action_bins", 256)))
    return kw
