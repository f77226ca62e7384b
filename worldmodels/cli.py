"""`wm`: the worldmodels command line.

    wm --help                         every command group
    wm data build robot --episodes 200
    wm tokenizer train --kind frame --data data/robot
    wm pretrain video --tokenizer runs/tok_frame
    wm rlvr video --init runs/wm_video --reward mae
    wm eval video --model runs/wm_video

Each group lives in ``worldmodels/commands/<group>.py`` and keeps heavy imports (torch,
mujoco, transformers) inside its functions so that ``wm --help`` stays instant.
"""

from __future__ import annotations

import importlib
import keyword

import typer

GROUPS = {
    "data": "build and inspect datasets (robot episodes from MuJoCo, loaders for other layouts)",
    "tokenizer": "train and evaluate video tokenizers (per-frame FSQ/VQ, compressive)",
    "pretrain": "MLE pretraining of a world model",
    "rlvr": "RLVR post-training (GRPO on verifiable metric rewards)",
    "eval": "evaluate a world model on held-out data",
    "plan": "model-predictive control with a world model (CEM, MPPI)",
    "real2sim": "rank policies inside a world model and compare with reality",
    "webagent": "MPC web agent over a web-DOM world model",
    "bench": "benchmarks (kernels, rollout engine)",
    "import": "import world models trained elsewhere (RLVR-World / iVideoGPT checkpoints)",
    "compress": "RWKV-Lite compression (low-rank projections, FFN sparsity, clustered head)",
}

app = typer.Typer(
    name="wm",
    help="worldmodels: train world models with MLE + RLVR and plan with them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="print the version and exit"),
) -> None:
    if version:
        from worldmodels import __version__

        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


def _register() -> None:
    for name, summary in GROUPS.items():
        # a group named by a Python keyword lives in <name>_.py (commands/import_.py)
        module = importlib.import_module(f"worldmodels.commands.{name}{'_' * keyword.iskeyword(name)}")
        if hasattr(module, "register"):  # a one-command module (commands/compress.py)
            module.register(app, name)
            continue
        sub: typer.Typer = module.app
        app.add_typer(sub, name=name, help=sub.info.help or summary)


_register()

if __name__ == "__main__":  # pragma: no cover
    app()
