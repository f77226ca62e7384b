"""`wm pretrain|rlvr|eval web`: thin commands over ``worldmodels.pipelines`` and
``worldmodels.evaluate`` for web world models (``worldmodels.tasks.web``).

    wm pretrain web --config data/recipes/web_pretrain_tiny.yaml --out runs/wm_web
    wm pretrain web --train data/web/train.json --test data/web/test.json --style compact \
        --preset tiny --steps 2000 --out runs/wm_web
    wm rlvr web --init runs/wm_web --reward f1 --out runs/rlvr_web --config data/recipes/web_rlvr_tiny.yaml
    wm eval web --model runs/rlvr_web --items 256       # -> runs/rlvr_web/eval/eval.{json,md}

Registered into the ``pretrain``, ``rlvr`` and ``eval`` groups by ``register_pretrain`` /
``register_rlvr`` / ``register_eval`` (called from those modules). ``--resume`` works as for the
other tasks (the recorded ``config.yaml`` wins; only the step budget and logging knobs may change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from worldmodels.commands._text_cli import add_eval, add_pretrain, add_rlvr
from worldmodels.commands.text_game import PretrainTextGameConfig
from worldmodels.pipelines import PretrainConfig, RLVRConfig
from worldmodels.tasks.web_config import WebOverrides, WebTaskConfig


@dataclass
class PretrainWebConfig(PretrainConfig):
    """`wm pretrain web` (fields: ``worldmodels.pipelines.PretrainConfig``): SFT on target diffs.

    out: run / world-model directory.
    init: null, or a web world model to continue training from (its backbone and tokenizer).
    task: WebTaskConfig (transition files, target, diff mode, prompt style, tokenizer).
    model: BackboneConfig (llama preset with a BPE trained on the corpus, or family hf with
        model.path: that directory's tokenizer is used unless task.tokenizer says otherwise).
    train: MLEConfig (steps, batch, optimizer, checkpoints, logging).
    """

    out: str = "runs/wm_web"
    task: WebTaskConfig = field(default_factory=WebTaskConfig)

    __post_init__ = PretrainTextGameConfig.__post_init__  # an hf backbone reads its own tokenizer's ids


@dataclass
class RLVRWebConfig(RLVRConfig):
    """`wm rlvr web`: GRPO on a web world model (the other fields, grpo: and eval:, are
    ``worldmodels.pipelines.RLVRConfig``'s; eval runs every grpo.eval_steps on held-out transitions).

    reward: f1 (RLVR-World's web reward), a combination, or pkg.module:function.
    task: WebOverrides (other transition files, target, answer length).
    init: the web world model to post-train (`wm pretrain web` output).
    out: output run / world-model directory.
    """

    reward: str = "f1"
    init: str = "runs/wm_web"
    out: str = "runs/rlvr_web"
    task: WebOverrides = field(default_factory=WebOverrides)


def _overrides(data, max_new_tokens, max_prompt_tokens, on_overflow, gold) -> dict:
    return WebOverrides(test=data, max_new_tokens=max_new_tokens, max_prompt_tokens=max_prompt_tokens,
                        on_overflow=on_overflow, target=None if gold is None else ("gold" if gold else "diff")
                        ).task_kwargs()


#: `register_pretrain(app, may_change)`: add `web` to the `wm pretrain` group
register_pretrain = partial(add_pretrain, name="web", cfg_cls=PretrainWebConfig, what="transitions",
                            doc="SFT a web world model on accessibility-tree diffs (MLE on the answer tokens).")
#: `register_rlvr(app, may_change)`: add `web` to the `wm rlvr` group
register_rlvr = partial(add_rlvr, name="web", cfg_cls=RLVRWebConfig, what="transitions", rewards="f1",
                        doc="RLVR-train a web world model with GRPO on RLVR-World's F1 reward.",
                        set_example="task.max_new_tokens=256")
#: `register_eval(app)`: add `web` to the `wm eval` group
register_eval = partial(
    add_eval, name="web", what="transitions", overrides=_overrides, flag="--gold/--diff",
    doc="Precision / recall / F1 / exact match overall and per site, beside the \"no change\" baseline; the "
        "prompt reductions (eval.json, eval.md).",
    flag_help="score against the file's gold diff (--gold) or the diff of the two trees (--diff)",
    reduce_help="drop the example, then cut the tree")
