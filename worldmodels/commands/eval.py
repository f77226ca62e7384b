"""`wm eval`: held-out evaluation of world models.

    wm eval video --model runs/wm_video --data data/robot                  # -> runs/wm_video/eval
    wm eval video --model runs/wm_video --data data/robot --samples 8 --clips 128 --lpips none
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Evaluate world models on held-out data (`wm eval video`).",
                  no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Evaluate world models on held-out data."""


@app.command("video")
def video(
    model: str = typer.Option(..., "--model", help="world-model directory (wm pretrain/rlvr --out)"),
    data: str = typer.Option("data/robot", "--data", help="episode folder; its test split is used"),
    out: str = typer.Option(None, "--out", help="output folder (default: <model>/eval)"),
    samples: int = typer.Option(4, "--samples", min=1, help="samples per clip (best-of-n)"),
    clips: int = typer.Option(64, "--clips", min=1, help="held-out clips (evenly spaced)"),
    future: int = typer.Option(None, "--future", min=1, help="multi-step frames (default: the model's)"),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    gifs: int = typer.Option(4, "--gifs", min=0, help="side-by-side GIFs to write"),
    lpips: str = typer.Option("vgg", "--lpips", help="LPIPS backbone vgg|alex|squeeze, or none"),
    temperature: float = typer.Option(1.0, "--temperature", min=1e-6),
    top_k: int = typer.Option(None, "--top-k", min=1),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Single-step and multi-step metrics (MSE, MAE, PSNR, SSIM, LPIPS, repetition) vs baselines."""
    from worldmodels.tasks.video_eval import evaluate_video

    res = evaluate_video(model, data, out, n_samples=samples, max_clips=clips, batch_size=batch_size,
                         future_frames=future, gifs=gifs,
                         lpips_net=None if lpips.lower() == "none" else lpips,
                         temperature=temperature, top_k=top_k, seed=seed, device=device)
    from worldmodels.tasks.video_eval import markdown_table

    typer.echo(markdown_table(res))
