"""`wm rlvr`: RLVR post-training (GRPO on verifiable rewards), thin commands over
``worldmodels.pipelines.run_rlvr``.

    wm rlvr video --init runs/wm_video --reward mae --preset tiny --out runs/rlvr_mae
    wm rlvr video --init runs/wm_video --reward lpips+mae --aggregate mean
    wm rlvr video --init runs/wm_skip6_comp --reward readout_state+mae --readout runs/readout
    wm rlvr video --config data/recipes/rlvr_tiny.yaml --set grpo.beta=0 --set grpo.max_steps=50
    wm rlvr video --out runs/rlvr_mae --resume                          # continue exactly
    wm rlvr video --out runs/rlvr_mae --resume --steps 600              # ... for more steps
    torchrun --nproc_per_node 2 -m worldmodels.cli rlvr video --init runs/wm_video --reward mae
    wm rlvr video --init runs/wm_mw --reward mae --preset tiny --steps 20 --out runs/rlvr_mw
        # data folder, key map and split: the world model's record (episode flags override)

``--resume`` continues the run with the settings recorded in ``<out>/config.yaml``; a flag,
``--set`` or ``--config`` value that differs from them is an error naming the field and both
values, except the step budget and the logging/eval/save frequencies (``RESUME_MAY_CHANGE``).

The reward is built first, so ``--reward lpips`` without the LPIPS backbone weights stops at
once with the metrics module's message, and an unknown name lists the registered rewards.
The output directory is itself a world model (``worldmodel.json`` + ``backbone/`` +
``tokenizer/``), refreshed at every checkpoint, plus ``checkpoints/``, ``metrics.jsonl``
(reward, kl, clip_ratio, ..., ``eval/*`` held-out metrics) and ``config.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from worldmodels.commands._common import build_config, config_epilog, resume_help
from worldmodels.commands._episodes import episode_options, episode_overrides
from worldmodels.pipelines import RLVRConfig
from worldmodels.tasks.video_config import VideoTaskOverrides
from worldmodels.train.grpo_config import PRESETS, grpo_preset

app = typer.Typer(help="RLVR post-training (GRPO on verifiable rewards).", no_args_is_help=True)

# What --resume may change: the step budget and how often it logs/evaluates/saves -- never
# what is optimised (reward, init = KL reference, data, GRPO knobs) or what eval/* measures.
# Not grpo.rollout_cuda_graphs either: it draws the eager step's tokens in float32
# (tests/gpu/test_cuda_grpo_graphs.py), but in bf16 near-tied logits can round differently.
RESUME_MAY_CHANGE = ("grpo.max_steps", "grpo.logging_steps", "grpo.eval_steps", "grpo.save_steps",
                     "grpo.sample_table_steps")


@app.callback()
def _group() -> None:
    """RLVR post-training of world models."""


@dataclass
class RLVRVideoConfig(RLVRConfig):
    """`wm rlvr video` (fields: ``worldmodels.pipelines.RLVRConfig``).

    init: the pretrained world model directory (`wm pretrain video` output).
    out: output run / world-model directory.
    reward: reward spec: mae, mse, psnr, ssim, lpips, lpips_alex, readout_state, combinations
        (lpips+mae, lpips:1,mae:0.5) or a dotted path pkg.module:function.
    reward_options: e.g. {readout: runs/readout} for the ``readout_state`` reward (--readout).
    task: VideoTaskOverrides (another episode folder / token cache than the model's).
    grpo: GRPOConfig (the GRPO knobs, TRL names).
    eval: EvalConfig (held-out clips every grpo.eval_steps, logged as eval/*).
    """

    # recipes and runs written before the generic pipeline
    LEGACY_KEYS = {"data": "task.root", "cache_dir": "task.cache_dir",
                   "readout": "reward_options.readout", "eval.clips": "eval.items"}

    init: str = "runs/wm_video"
    out: str = "runs/rlvr_video"
    task: VideoTaskOverrides = field(default_factory=VideoTaskOverrides)


@app.command("video", epilog=config_epilog(RLVRVideoConfig))
@episode_options
def video(
    config: Path = typer.Option(None, "--config", help="YAML recipe, e.g. data/recipes/rlvr_tiny.yaml"),
    init: str = typer.Option(None, "--init", help="pretrained world model directory (init)"),
    reward: str = typer.Option(None, "--reward", help="reward spec: mae, lpips+mae, lpips:1,mae:0.5, readout_state+mae, pkg.mod:fn"),
    readout: str = typer.Option(None, "--readout", help="state-readout dir for --reward readout_state (reward_options.readout)"),
    aggregate: str = typer.Option(None, "--aggregate", help="mean | last | discount (aggregate)"),
    out: str = typer.Option(None, "--out", help="output directory (out)"),
    data: str = typer.Option(None, "--data", help="episode folder (task.root); default: the world model's"),
    preset: str = typer.Option(None, "--preset", help=f"GRPO preset: {' | '.join(PRESETS)}"),
    steps: int = typer.Option(None, "--steps", help="GRPO steps (grpo.max_steps)"),
    set_: list[str] = typer.Option(None, "--set", help="dotted override, e.g. grpo.beta=0 (keys below)"),
    resume: bool = typer.Option(False, "--resume", help=resume_help(RESUME_MAY_CHANGE, {"grpo.max_steps": "--steps"})),
    episodes: dict | None = None,
) -> None:
    """RLVR-train a video world model with GRPO on a verifiable frame reward."""
    import os

    from worldmodels.pipelines import run_rlvr
    from worldmodels.rewards import build_reward

    flags = {"init": init, "reward": reward, "reward_options.readout": readout, "aggregate": aggregate,
             "out": out, "task.root": data, "grpo.max_steps": steps,
             **episode_overrides(episodes, "task.episodes.")}
    try:  # a preset asks (on resume) only for the fields it sets, not for every GRPO default
        preset_layer = {"grpo": PRESETS[preset]} if preset and grpo_preset(preset) else None
        base = RLVRVideoConfig(grpo=grpo_preset(preset)) if preset else None
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    cfg = build_config(RLVRVideoConfig, config=config, flags=flags, sets=set_, resume=resume,
                       may_change=RESUME_MAY_CHANGE, base=base, preset_layer=preset_layer)
    try:  # before anything is loaded: missing LPIPS weights / unknown reward names stop here
        reward_fn = build_reward(cfg.reward, cfg.aggregate, cfg.gamma, dict(cfg.reward_options))
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: --reward {cfg.reward!r}: {e}", err=True)
        raise typer.Exit(code=2) from e
    try:
        last = run_rlvr(cfg, resume=resume, reward=reward_fn)
    except (FileNotFoundError, FileExistsError, ValueError) as e:  # missing model / data, existing run
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from e
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 reports
        return
    if not last:
        typer.echo(f"nothing to do: {cfg.out} already reached grpo.max_steps={cfg.grpo.max_steps} "
                   f"(pass --resume --steps N for more)")
        return
    shown = {k: round(v, 5) for k, v in last.items() if isinstance(v, float) and
             (k.startswith("eval/") or k in ("reward", "kl"))}
    typer.echo(f"done: step {last.get('step')} {shown} -> {cfg.out}")


from worldmodels.commands.text_game import register_rlvr  # noqa: E402  (wm rlvr text-game)

register_rlvr(app, RESUME_MAY_CHANGE)

from worldmodels.commands.web import register_rlvr as _register_web  # noqa: E402  (wm rlvr web)

_register_web(app, RESUME_MAY_CHANGE)
