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
    vocab_size: int = typer.Option(4635, "--vocab-size", min=2,
                                   help="vocabulary of the --preset backbone (4635: the video layout; "
                                   "the text-game BPE: 2048)"),
    batch: int = typer.Option(32, "--batch", min=1),
    prompt_len: int = typer.Option(64, "--prompt-len", min=1),
    new_tokens: int = typer.Option(128, "--new-tokens", min=1),
    stop_answers: bool = typer.Option(True, "--stop-answers/--no-stop-answers",
                                      help="also time text-like answers of mixed lengths that end "
                                      "at stop ids (both paths exit early)"),
    repeats: int = typer.Option(3, "--repeats", min=1),
    device: str = typer.Option("auto", "--device"),
    group: int = typer.Option(0, "--group", min=0,
                              help="also time GRPO-like rollouts: batch//GROUP prompts x GROUP samples "
                              "each (temperature 1, answers of mixed lengths), the engine with one "
                              "prefill per prompt (its own sampler, and generate's for the same "
                              "tokens) vs generate, alternated (e.g. --group 5)"),
    rounds: int = typer.Option(5, "--rounds", min=1, help="alternations of the --group line (median)"),
    compile_step: bool = typer.Option(False, "--compile", help="torch.compile the engine's decode step"),
    cuda_graphs: bool = typer.Option(False, "--cuda-graphs", help="CUDA graphs for the decode step (GPU)"),
    static_grow: int = typer.Option(32, "--static-grow", min=0,
                                    help="positions the engine's static cache holds past what is fed "
                                    "(grows by this much; 0: the whole sequence at once)"),
    threads: int = typer.Option(0, "--threads", min=0,
                                help="torch threads (0: leave as is; 1 gives steadier CPU numbers)"),
    seed: int = typer.Option(0, "--seed", help="model, prompts and draws (--group round r: seed + r)"),
) -> None:
    """KV-cached rollout engine vs `model.generate` on the same batch: tokens/s and their ratio
    (fixed length; answers with stop ids; GRPO-like groups with --group; the interleaved
    generate/force pattern).

        wm bench rollout --out runs/bench --model runs/wm_video
        wm bench rollout --out runs/bench_text --vocab-size 2048 --batch 40 --prompt-len 124 \\
            --new-tokens 96 --group 5 --rounds 7 --threads 1
    """
    from worldmodels.train.rollout_bench import run
    from worldmodels.train.rollout_cache import DecodeConfig

    if group > batch:
        raise typer.BadParameter(f"--group {group} exceeds --batch {batch}", param_hint="--group")
    import torch

    if cuda_graphs and not torch.cuda.is_available():
        raise typer.BadParameter("CUDA graphs need a CUDA device", param_hint="--cuda-graphs")
    if threads:
        torch.set_num_threads(threads)
    kw = _model_sizes(model) if model else {"vocab_size": vocab_size}
    decode = DecodeConfig(compile=compile_step, cuda_graphs=cuda_graphs, static_grow=static_grow)
    if decode == DecodeConfig():
        decode = None  # the engine's defaults
    result = run(out, preset=preset, batch=batch, prompt_len=prompt_len, new_tokens=new_tokens,
                 stop_answers=stop_answers, repeats=repeats, device=device, group=group,
                 rounds=rounds, decode=decode, seed=seed, **kw)
    line = (f"rollout {result['rollout_tok_s']:.0f} tok/s, generate "
            f"{result['generate_tok_s']:.0f} tok/s, ratio {result['ratio']:.2f}")
    if "stop_ratio" in result:
        line += f"; with stop ids ratio {result['stop_ratio']:.2f}"
    if "group_ratio" in result:
        line += f"; group {group} (sampled, mixed lengths) ratio {result['group_ratio']:.2f}"
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
