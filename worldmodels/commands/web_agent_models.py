"""`wm pretrain web-policy|web-value`: the MPC web agent's learned policy (behaviour cloning) and
value model, thin commands over ``worldmodels.pipelines.run_pretrain``
(``worldmodels.tasks.web_policy`` / ``web_value``).

    wm data build web --config data/recipes/web_small.yaml           # episode records
    wm pretrain web-policy --config data/recipes/web_policy_tiny.yaml --out runs/web_policy
    wm pretrain web-value --config data/recipes/web_value_tiny.yaml --out runs/web_value
    wm pretrain web-policy --train data/web_tiny/train.json --test data/web_tiny/test.json \
        --preset tiny --steps 500 --set task.include_random=true --out runs/web_policy_all

The output directories are world models (``worldmodel.json`` of kind ``web_policy`` /
``web_value``, ``backbone/``, ``tokenizer/``) that ``planners.web_learned``'s
``LMPolicy`` and ``LearnedValue`` load. Registered into the ``pretrain`` group by
``register_pretrain`` (called from ``commands/pretrain.py``); ``--resume`` as for the other
tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from worldmodels.commands._text_cli import add_pretrain
from worldmodels.commands.text_game import PretrainTextGameConfig
from worldmodels.pipelines import PretrainConfig
from worldmodels.tasks.web_agent_config import (
    POLICY_STYLES,
    VALUE_STYLES,
    WebPolicyTaskConfig,
    WebValueTaskConfig,
)


@dataclass
class PretrainWebPolicyConfig(PretrainConfig):
    """`wm pretrain web-policy` (fields: ``worldmodels.pipelines.PretrainConfig``): behaviour
    cloning of the sites' agents (MLE on the action tokens).

    out: run / policy directory.
    init: null, or a web policy to continue training from (its backbone and tokenizer).
    task: WebPolicyTaskConfig (episode files, agents, prompt style, tokenizer).
    model: BackboneConfig (llama preset with a BPE trained on the corpus, or family hf with
        model.path: that directory's tokenizer is used unless task.tokenizer says otherwise).
    train: MLEConfig (steps, batch, optimizer, checkpoints, logging).
    """

    out: str = "runs/web_policy"
    task: WebPolicyTaskConfig = field(default_factory=WebPolicyTaskConfig)

    __post_init__ = PretrainTextGameConfig.__post_init__  # an hf backbone reads its own tokenizer's ids


@dataclass
class PretrainWebValueConfig(PretrainConfig):
    """`wm pretrain web-value` (fields: ``worldmodels.pipelines.PretrainConfig``): a value model
    of page states (MLE on one digit, the bucket of the state's success-to-go).

    out: run / value-model directory.
    init: null, or a web value model to continue training from (its backbone and tokenizer).
    task: WebValueTaskConfig (episode files, gamma, agents, tokenizer).
    model: BackboneConfig (llama preset with a BPE trained on the corpus, or family hf with
        model.path: that directory's tokenizer is used unless task.tokenizer says otherwise).
    train: MLEConfig (steps, batch, optimizer, checkpoints, logging).
    """

    out: str = "runs/web_value"
    task: WebValueTaskConfig = field(default_factory=WebValueTaskConfig)

    __post_init__ = PretrainTextGameConfig.__post_init__


def register_pretrain(app: typer.Typer, may_change: tuple[str, ...]) -> None:
    """Add `web-policy` and `web-value` to the `wm pretrain` group."""
    add_pretrain(app, may_change, "web-policy", PretrainWebPolicyConfig,
                 "Behaviour-clone a web-agent policy on the sites' episodes (MLE on the action tokens).",
                 "episode records", styles=POLICY_STYLES, recipe="data/recipes/web_policy_tiny.yaml")
    add_pretrain(app, may_change, "web-value", PretrainWebValueConfig,
                 "Train a web-agent value model: objective + page state -> a digit, the bucket of the "
                 "state's success-to-go (MLE on that digit).",
                 "episode records", styles=VALUE_STYLES, recipe="data/recipes/web_value_tiny.yaml")
