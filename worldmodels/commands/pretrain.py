"""`wm pretrain`: MLE pretraining of world models (thin commands over ``worldmodels.pipelines``).

    wm pretrain video --config data/recipes/pretrain_tiny.yaml --out runs/wm_video
    wm pretrain video --data data/robot --tokenizer runs/tok_frame --set train.steps=4000
    wm pretrain video --out runs/wm_video --resume                 # continue exactly
    wm pretrain video --out runs/wm_video --resume --steps 8000    # ... up to more steps
    wm pretrain video --init runs/wm_video --data data/robot_more --tokenizer runs/wm_video/tokenizer \
        --out runs/wm_video_more --steps 2000                       # continued pretraining
    wm pretrain video --init runs/wm_skip6_act --tokenizer runs/tok_skip6_motion --data data/robot_poke2k \
        --set task.init_new_tokenizer=true --out runs/wm_skip6_motion  # ... with a fine-tuned tokenizer
    torchrun --nproc_per_node 2 -m worldmodels.cli pretrain video --config ...   # DDP
    wm pretrain video --init runs/demo/wm --tokenizer runs/tok_mw --set task.init_new_tokenizer=true \
        --data ../shared/data/robot/metaworld --out runs/wm_mw --steps 600 --max-minutes 20
        # fine-tune the robot-pretrained model on a small foreign dataset: the key map and split
        # come from runs/tok_mw's record (else --layout ... --held-out ...), the action ranges
        # are refitted to the data's 4-dim actions, the schedule is fitted to 20 minutes

Episode flags (``--layout``, ``--image-key``, ``--test-every``, ``--held-out``, ``--size`` ...,
``commands/_episodes.py``) set ``task.episodes``; fields not given come from what the tokenizer
run recorded. ``--max-minutes`` fits the learning-rate schedule to the time budget.

The output directory is a world model (``worldmodel.json`` + ``backbone/`` + ``tokenizer/``),
refreshed at every checkpoint, plus ``checkpoints/``, ``metrics.jsonl`` and ``config.yaml``.
``--resume`` continues with the settings recorded in ``<out>/config.yaml``: a flag, ``--set`` or
``--config`` value that differs from them is an error naming the field and both values, except
the step budget, ``train.max_minutes`` and the logging/eval/save knobs (``RESUME_MAY_CHANGE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from worldmodels.commands._common import build_config, config_epilog, resume_help
from worldmodels.commands._episodes import episode_options, episode_overrides
from worldmodels.pipelines import PretrainConfig
from worldmodels.tasks.video_config import VideoTaskConfig

app = typer.Typer(help="MLE pretraining of world models (`wm pretrain video`).", no_args_is_help=True)

# What --resume may change: the step budget, the wall-clock limit and how often it logs,
# evaluates, saves and how many checkpoints it keeps -- never what is optimised or measured.
RESUME_MAY_CHANGE = ("train.steps", "train.max_minutes", "train.log_every", "train.eval_every",
                     "train.save_every", "train.keep_checkpoints")


@app.callback()
def _group() -> None:
    """MLE pretraining of world models."""


@dataclass
class PretrainVideoConfig(PretrainConfig):
    """`wm pretrain video` (fields: ``worldmodels.pipelines.PretrainConfig``).

    out: run / world-model directory.
    init: null, or a world model to continue pretraining from (its backbone and layout).
    task: VideoTaskConfig (episodes, tokenizer, layout).
    model: BackboneConfig (family, preset or path, LoRA).
    train: MLEConfig (steps, batch, optimizer, checkpoints, logging).
    """

    # recipes and runs written before the task section existed
    LEGACY_KEYS = {"data": "task", "init_new_tokenizer": "task.init_new_tokenizer"}

    out: str = "runs/wm_video"
    task: VideoTaskConfig = field(default_factory=VideoTaskConfig)


@app.command("video", epilog=config_epilog(PretrainVideoConfig))
@episode_options
def video(
    config: Path = typer.Option(None, "--config", help="YAML recipe, e.g. data/recipes/pretrain_tiny.yaml"),
    data: str = typer.Option(None, "--data", help="episode folder (task.root)"),
    tokenizer: str = typer.Option(None, "--tokenizer", help="tokenizer directory (task.tokenizer)"),
    out: str = typer.Option(None, "--out", help="run / world-model directory (out)"),
    init: str = typer.Option(None, "--init", help="world model to continue pretraining from (init), "
                             "e.g. the robot-pretrained runs/demo/wm for a small foreign dataset"),
    preset: str = typer.Option(None, "--preset", help="backbone preset (model.preset)"),
    steps: int = typer.Option(None, "--steps", help="optimizer steps (train.steps)"),
    max_minutes: float = typer.Option(None, "--max-minutes", help="time budget; the lr schedule "
                                      "is fitted to it (train.max_minutes)"),
    set_: list[str] = typer.Option(None, "--set", help="dotted override, e.g. train.optim.lr=3e-4 (keys below)"),
    resume: bool = typer.Option(False, "--resume", help=resume_help(RESUME_MAY_CHANGE, {"train.steps": "--steps"})),
    episodes: dict | None = None,
) -> None:
    """Pretrain a video world model with MLE (next-token loss on frame tokens)."""
    from worldmodels.pipelines import run_pretrain

    flags = {"task.root": data, "task.tokenizer": tokenizer, "out": out, "init": init,
             "model.preset": preset, "train.steps": steps, "train.max_minutes": max_minutes,
             **episode_overrides(episodes, "task.episodes.")}
    cfg = build_config(PretrainVideoConfig, config=config, flags=flags, sets=set_, resume=resume,
                       may_change=RESUME_MAY_CHANGE)
    try:
        res = run_pretrain(cfg, resume=resume)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    typer.echo(f"done: step {res.get('step')} loss {res.get('loss', float('nan')):.4f} "
               f"eval_loss {res.get('eval_loss', float('nan')):.4f} -> {cfg.out}")


from worldmodels.commands.text_game import register_pretrain  # noqa: E402  (wm pretrain text-game)

register_pretrain(app, RESUME_MAY_CHANGE)

from worldmodels.commands.web import register_pretrain as _register_web  # noqa: E402  (wm pretrain web)

_register_web(app, RESUME_MAY_CHANGE)

from worldmodels.commands.web_agent_models import register_pretrain as _register_web_agent  # noqa: E402

_register_web_agent(app, RESUME_MAY_CHANGE)  # wm pretrain web-policy | web-value
