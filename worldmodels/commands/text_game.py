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

import typer

from worldmodels.commands._text_cli import add_eval, add_pretrain, add_rlvr
from worldmodels.pipelines import PretrainConfig, RLVRConfig
from worldmodels.tasks.text_game_config import TextGameOverrides, TextGameTaskConfig


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


def register_pretrain(app: typer.Typer, may_change: tuple[str, ...]) -> None:
    """Add `text-game` to the `wm pretrain` group (``may_change``: what --resume may change)."""
    add_pretrain(app, may_change, "text-game", PretrainTextGameConfig,
                 "SFT a text-game world model on gold diffs (MLE on the answer tokens).", "records")


def register_rlvr(app: typer.Typer, may_change: tuple[str, ...]) -> None:
    """Add `text-game` to the `wm rlvr` group."""
    add_rlvr(app, may_change, "text-game", RLVRTextGameConfig,
             "RLVR-train a text-game world model with GRPO on the binary or task-specific reward.",
             "records", "binary | task_specific", "task.rl_unchanged_ratio=0.4")


def _overrides(data, max_new_tokens, max_prompt_tokens, on_overflow, compat) -> dict:
    return TextGameOverrides(test=data, max_new_tokens=max_new_tokens, max_prompt_tokens=max_prompt_tokens,
                             on_overflow=on_overflow, compat_rlvr_world=compat).task_kwargs()


def register_eval(app: typer.Typer) -> None:
    """Add `text-game` to the `wm eval` group."""
    add_eval(app, "text-game", "Accuracy on changed / unchanged / all records, per game and per action verb, "
             "beside the \"no change\" baseline; the prompt-length distribution (eval.json, eval.md).",
             "records", _overrides, "--compat/--no-compat", "RLVR-World's scoring", "drop shots, then rules")
