"""`wm pretrain|rlvr|eval text-game`: thin commands over ``worldmodels.pipelines`` and
``worldmodels.evaluate`` for text-game world models (``worldmodels.tasks.text_game``).

    wm pretrain text-game --config data/recipes/text_game_pretrain_tiny.yaml --out runs/tg_sft
    wm pretrain text-game --train data/text_game/train.jsonl --test data/text_game/test.jsonl \
        --style compact --preset tiny --steps 2000 --out runs/tg_sft
    wm pretrain text-game --set model.family=hf --set model.path=models/smollm2 \
        --set model.lora.enabled=true ...               # a local HF LM and its own tokenizer
    wm rlvr text-game --init runs/tg_sft --reward task_specific --out runs/tg_rlvr \
        --config data/recipes/text_game_rlvr_tiny.yaml
    wm eval text-game --model runs/tg_rlvr --items 512       # -> runs/tg_rlvr/eval/eval.{json,md}

The commands are registered into the ``pretrain``, ``rlvr`` and ``eval`` groups by
``register_pretrain`` / ``register_rlvr`` / ``register_eval`` (called from those modules), so
the video commands stay as they are. ``--resume`` works as for video (the recorded
``config.yaml`` wins; only the step budget and logging knobs may change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from worldmodels.commands._common import build_config, config_epilog, resume_help
from worldmodels.pipelines import PretrainConfig, RLVRConfig
from worldmodels.tasks.text_game_config import STYLES, TextGameOverrides, TextGameTaskConfig
from worldmodels.train.grpo_config import PRESETS, grpo_preset


@dataclass
class PretrainTextGameConfig(PretrainConfig):
    """`wm pretrain text-game` (fields: ``worldmodels.pipelines.PretrainConfig``): SFT on gold diffs.

    out: run / world-model directory.
    init: null, or a text-game world model to continue training from (its backbone and tokenizer).
    task: TextGameTaskConfig (records, prompt style, tokenizer, RL sampling for later RLVR).
    model: BackboneConfig (llama preset with a BPE trained on the corpus, or family hf with
        model.path: that directory's tokenizer is used unless task.tokenizer says otherwise).
    train: MLEConfig (steps, batch, optimizer, checkpoints, logging).
    """

    out: str = "runs/wm_text_game"
    task: TextGameTaskConfig = field(default_factory=TextGameTaskConfig)

    def __post_init__(self) -> None:
        if self.task.tokenizer is None and self.model.family == "hf" and self.model.path and not self.init:
            self.task.tokenizer = self.model.path  # an hf backbone reads its own tokenizer's ids


@dataclass
class RLVRTextGameConfig(RLVRConfig):
    """`wm rlvr text-game` (fields: ``worldmodels.pipelines.RLVRConfig``).

    init: the text-game world model to post-train (`wm pretrain text-game` output).
    out: output run / world-model directory.
    reward: binary | task_specific (RLVR-World's two), a combination, or pkg.module:function.
    task: TextGameOverrides (other records, RL sampling ratio, compat scoring, answer length).
    grpo: GRPOConfig (the GRPO knobs, TRL names).
    eval: EvalConfig (held-out records every grpo.eval_steps, logged as eval/*).
    """

    init: str = "runs/wm_text_game"
    out: str = "runs/rlvr_text_game"
    reward: str = "task_specific"
    task: TextGameOverrides = field(default_factory=TextGameOverrides)


def _fail(e: Exception) -> None:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(code=2) from e


def register_pretrain(app: typer.Typer, may_change: tuple[str, ...]) -> None:
    """Add `text-game` to the `wm pretrain` group (``may_change``: what --resume may change)."""

    @app.command("text-game", epilog=config_epilog(PretrainTextGameConfig))
    def text_game(
        config: Path = typer.Option(None, "--config", help="YAML recipe, e.g. data/recipes/text_game_pretrain_tiny.yaml"),
        train: str = typer.Option(None, "--train", help="training records (task.train)"),
        test: str = typer.Option(None, "--test", help="held-out records (task.test)"),
        style: str = typer.Option(None, "--style", help=f"prompt style: {' | '.join(STYLES)} (task.prompt_style)"),
        out: str = typer.Option(None, "--out", help="run / world-model directory (out)"),
        init: str = typer.Option(None, "--init", help="text-game world model to continue from (init)"),
        preset: str = typer.Option(None, "--preset", help="backbone preset (model.preset)"),
        steps: int = typer.Option(None, "--steps", help="optimizer steps (train.steps)"),
        set_: list[str] = typer.Option(None, "--set", help="dotted override, e.g. task.max_train=500 (keys below)"),
        resume: bool = typer.Option(False, "--resume", help=resume_help(may_change, {"train.steps": "--steps"})),
    ) -> None:
        """SFT a text-game world model on gold diffs (MLE on the answer tokens)."""
        from worldmodels.pipelines import run_pretrain

        flags = {"task.train": train, "task.test": test, "task.prompt_style": style, "out": out,
                 "init": init, "model.preset": preset, "train.steps": steps}
        cfg = build_config(PretrainTextGameConfig, config=config, flags=flags, sets=set_, resume=resume,
                           may_change=may_change)
        try:
            res = run_pretrain(cfg, resume=resume)
        except (FileNotFoundError, FileExistsError, ValueError) as e:
            _fail(e)
        typer.echo(f"done: step {res.get('step')} loss {res.get('loss', float('nan')):.4f} "
                   f"eval_loss {res.get('eval_loss', float('nan')):.4f} -> {cfg.out}")


def register_rlvr(app: typer.Typer, may_change: tuple[str, ...]) -> None:
    """Add `text-game` to the `wm rlvr` group."""

    @app.command("text-game", epilog=config_epilog(RLVRTextGameConfig))
    def text_game(
        config: Path = typer.Option(None, "--config", help="YAML recipe, e.g. data/recipes/text_game_rlvr_tiny.yaml"),
        init: str = typer.Option(None, "--init", help="pretrained text-game world model (init)"),
        reward: str = typer.Option(None, "--reward", help="binary | task_specific | pkg.mod:fn (reward)"),
        out: str = typer.Option(None, "--out", help="output directory (out)"),
        train: str = typer.Option(None, "--train", help="training records (task.train); default: the model's"),
        preset: str = typer.Option(None, "--preset", help=f"GRPO preset: {' | '.join(PRESETS)}"),
        steps: int = typer.Option(None, "--steps", help="GRPO steps (grpo.max_steps)"),
        set_: list[str] = typer.Option(None, "--set", help="dotted override, e.g. task.rl_unchanged_ratio=0.4 (keys below)"),
        resume: bool = typer.Option(False, "--resume", help=resume_help(may_change, {"grpo.max_steps": "--steps"})),
    ) -> None:
        """RLVR-train a text-game world model with GRPO on the binary or task-specific reward."""
        import os

        from worldmodels.pipelines import run_rlvr
        from worldmodels.rewards import build_reward

        flags = {"init": init, "reward": reward, "out": out, "task.train": train, "grpo.max_steps": steps}
        try:
            preset_layer = {"grpo": PRESETS[preset]} if preset and grpo_preset(preset) else None
            base = RLVRTextGameConfig(grpo=grpo_preset(preset)) if preset else None
        except ValueError as e:
            raise typer.BadParameter(str(e)) from e
        cfg = build_config(RLVRTextGameConfig, config=config, flags=flags, sets=set_, resume=resume,
                           may_change=may_change, base=base, preset_layer=preset_layer)
        try:
            reward_fn = build_reward(cfg.reward, cfg.aggregate, cfg.gamma, dict(cfg.reward_options))
        except (ValueError, FileNotFoundError) as e:
            _fail(ValueError(f"--reward {cfg.reward!r}: {e}"))
        try:
            last = run_rlvr(cfg, resume=resume, reward=reward_fn)
        except (FileNotFoundError, FileExistsError, ValueError) as e:
            _fail(e)
        if os.environ.get("RANK", "0") != "0":
            return
        if not last:
            typer.echo(f"nothing to do: {cfg.out} already reached grpo.max_steps={cfg.grpo.max_steps}")
            return
        shown = {k: round(v, 5) for k, v in last.items() if isinstance(v, float) and
                 (k.startswith("eval/") or k in ("reward", "kl"))}
        typer.echo(f"done: step {last.get('step')} {shown} -> {cfg.out}")


def register_eval(app: typer.Typer) -> None:
    """Add `text-game` to the `wm eval` group."""

    @app.command("text-game")
    def text_game(
        model: str = typer.Option(..., "--model", help="world-model directory (wm pretrain/rlvr text-game --out)"),
        data: str = typer.Option(None, "--data", help="held-out records (default: the model's task.test)"),
        out: str = typer.Option(None, "--out", help="output folder (default: <model>/eval)"),
        items: int = typer.Option(256, "--items", min=1, help="records (evenly spaced)"),
        samples: int = typer.Option(1, "--samples", min=1, help="samples per record"),
        temperature: float = typer.Option(1.0, "--temperature", min=1e-6),
        top_k: int = typer.Option(1, "--top-k", min=0, help="1 = greedy (default); 0 = no truncation"),
        batch_size: int = typer.Option(8, "--batch-size", min=1),
        max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1, help="answer limit (default: the model's)"),
        max_prompt_tokens: int = typer.Option(None, "--max-prompt-tokens", min=1, help="prompt limit (default: the model's)"),
        reduce: bool = typer.Option(None, "--reduce/--no-reduce", help="over-long prompts: drop shots, then rules (default: the model's)"),
        compat: bool = typer.Option(None, "--compat/--no-compat", help="RLVR-World's scoring (default: the model's)"),
        examples: int = typer.Option(4, "--examples", min=0, help="example predictions to write"),
        seed: int = typer.Option(0, "--seed"),
        device: str = typer.Option("auto", "--device"),
    ) -> None:
        """Accuracy on changed / unchanged / all records, per game and per action verb, beside
        the "no change" baseline; the prompt-length distribution (eval.json, eval.md)."""
        from worldmodels.commands.eval import write_report
        from worldmodels.evaluate import EvalConfig, evaluate
        from worldmodels.records import RecordError
        from worldmodels.world_model import WorldModel

        overrides = TextGameOverrides(test=data, max_new_tokens=max_new_tokens, max_prompt_tokens=max_prompt_tokens,
                                      on_overflow=None if reduce is None else ("reduce" if reduce else "error"),
                                      compat_rlvr_world=compat).task_kwargs()
        try:
            wm = WorldModel.from_pretrained(model, device=device, **overrides)
            ds = wm.task.dataset("test")
        except (FileNotFoundError, ValueError, RecordError) as e:
            _fail(e)
        out_dir = Path(out) if out else Path(model) / "eval"
        cfg = EvalConfig(items=items, n_samples=samples, temperature=temperature, top_k=top_k or None,
                         seed=seed, batch_size=batch_size)
        wm.task.eval_rows = []
        res = evaluate(wm.model, wm.task, ds, cfg, device=wm.device, examples=examples, out_dir=out_dir,
                       progress=True)
        res.update(model=str(model), data=str(wm.task.test))
        _, md = write_report(wm.task, res, out_dir)
        typer.echo(md)
