"""`wm compress`: RWKV-Lite compression of a world model (low-rank SVD projections, recovery
training, FFN sparsity predictor, clustered head; seeds.md §7).

    wm compress --model runs/wm_rwkv --out runs/wm_rwkv_svd4 --svdfac 4
    wm compress --model runs/wm_rwkv --out runs/wm_rwkv_svd8 --svdfac 8 --recover-steps 200 \
        --sparsity --cluster-head 16                  # recover, then measure the predictors
    wm compress --model runs/wm_llama --out runs/wm_llama_svd4 --svdfac 4 --variant relu_diag \
        --targets q_proj,k_proj,v_proj,o_proj --set recover.optim.lr=3e-4 --recover-steps 100
    wm eval text-game --model runs/wm_rwkv_svd4       # the output is a normal world model

Each target ``nn.Linear`` (W: out x in) becomes ``W2 W1`` of rank ``min(out, in) // svdfac``
from its truncated SVD (``worldmodels/compress/lowrank.py``); the backbone's ``config.json``
records the factorisation so ``WorldModel.from_pretrained`` rebuilds it. ``--recover-steps N``
continues MLE on the model's recorded task data (``run_pretrain`` with ``init=`` the compressed
model; ``--set recover.*`` tunes it). ``--out`` gets the world model, ``compress.json`` (sizes,
held-out losses before / after / recovered, factors, sparsity, clustered head) and
``compress.md``. ``--distill`` recovers instead by distillation: KL to the uncompressed
model's next-token distributions on the training sequences (``compress/distill.py``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from worldmodels.commands._common import build_config, config_epilog
from worldmodels.compress.run import CompressConfig

HELP = """RWKV-Lite compression of a world model: low-rank projections, recovery, FFN sparsity, clustered head.

\b
wm compress --model runs/wm_rwkv --out runs/wm_rwkv_svd4 --svdfac 4
wm compress --model runs/wm_rwkv --out runs/wm_rwkv_svd8 --svdfac 8 --recover-steps 200 --sparsity --cluster-head 32
wm compress --model runs/wm_llama --out runs/wm_llama_svd4 --variant relu_diag --targets q_proj,v_proj --recover-steps 100
wm compress --model runs/wm_rwkv --out runs/wm_rwkv_svd4d --svdfac 4 --recover-steps 100 --distill

Writes a normal world model into --out (WorldModel.from_pretrained, wm eval and wm rlvr load it) \
plus compress.json and compress.md: parameters and bytes before / after, held-out loss of the \
original, factorised and recovered (continued MLE, or --distill) model, FFN sparsity with \
predictor recall / precision (--sparsity) and the clustered head's accuracy (--cluster-head).
"""


def _video_section(model: str):
    """The recorded VideoTaskConfig of a video model's pretraining run (its config.yaml)."""
    from worldmodels.commands.pretrain import PretrainVideoConfig
    from worldmodels.config import CONFIG_FILENAME, load_config

    path = Path(model) / CONFIG_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"--recover-steps on a video model needs its run's {path} (the "
                                f"task section: episodes and tokenizer)")
    return load_config(PretrainVideoConfig, path).task


def compress(
    model: str = typer.Option(None, "--model", help="world-model directory to compress (model)"),
    out: str = typer.Option(None, "--out", help="new directory for the compressed world model (out)"),
    svdfac: int = typer.Option(None, "--svdfac", help="rank = min(out, in) // svdfac (svdfac; default 4)"),
    variant: str = typer.Option(None, "--variant", help="plain | relu_diag | sqrelu_diag (variant)"),
    targets: str = typer.Option(None, "--targets", help="comma-separated module-name suffixes "
                                "(targets; default by model type)"),
    recover_steps: int = typer.Option(None, "--recover-steps", help="continued-MLE recovery steps "
                                      "(recover_steps; 0 = none)"),
    distill: bool = typer.Option(False, "--distill", help="recover by distillation from the "
                                 "uncompressed model instead of continued MLE (distill)"),
    sparsity: bool = typer.Option(False, "--sparsity", help="fit and score the FFN activation "
                                  "predictor (RWKV-7; sparsity.enabled)"),
    cluster_head: int = typer.Option(None, "--cluster-head", help="K clusters for the clustered "
                                     "head (cluster.k; 0 = off)"),
    config: Path = typer.Option(None, "--config", help="YAML with any of the keys below"),
    set_: list[str] = typer.Option(None, "--set", help="dotted override, e.g. recover.optim.lr=3e-4"),
) -> None:
    """Compress a world model RWKV-Lite style and measure what it cost."""
    from worldmodels.compress.run import run_compress

    flags = {"model": model, "out": out, "svdfac": svdfac, "variant": variant,
             "targets": None if targets is None else "[" + targets + "]",
             "recover_steps": recover_steps, "distill": True if distill else None, "sparsity.enabled": True if sparsity else None,
             "cluster.k": cluster_head}
    try:
        cfg = build_config(CompressConfig, config=config, flags=flags, sets=set_)
    except typer.BadParameter as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(code=2) from e
    if not cfg.model or not cfg.out:
        typer.echo("error: --model and --out are required", err=True)
        raise typer.Exit(code=2)
    try:
        section = None
        if cfg.recover_steps:
            from worldmodels.meta import read_world_model_meta

            if read_world_model_meta(cfg.model).get("kind") == "video":
                section = _video_section(cfg.model)
        res = run_compress(cfg, task_section=section, log=lambda s: typer.echo(s, err=True))
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    typer.echo(f"done: params {res['factor_params']:.2f}x fewer, loss {res['before']['loss']:.4f} -> "
               f"{res['after']['loss']:.4f}"
               + (f" -> {res['recovered']['loss']:.4f} recovered" if "recovered" in res else "")
               + f" -> {cfg.out} (compress.json, compress.md)")


def register(app: typer.Typer, name: str) -> None:
    """Add ``wm compress`` to the root ``app`` as one command (not a group: a group's usage line
    would read ``wm compress [OPTIONS] COMMAND [ARGS]``)."""
    app.command(name, help=HELP, epilog=config_epilog(CompressConfig), no_args_is_help=True)(compress)
