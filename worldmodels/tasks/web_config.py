"""The ``task:`` config sections of web world models (torch-free, so ``--help`` stays fast).

``WebTaskConfig`` builds a task for pretraining (``wm pretrain web``); ``WebOverrides`` is what
RLVR and evaluation may change of a trained model's recorded task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from worldmodels.tasks.text_game_config import TextGameTaskConfig, TextOverrides

STYLES = ("rlvr_world", "compact")
ON_OVERFLOW = ("error", "reduce")
FORMATS = ("auto", "webarena", "mind2web")
TARGETS = ("diff", "gold")
DIFF_MODES = ("clean", "wma")


def check_web_fields(c) -> None:
    """Checks shared by both sections (fields that are None are not checked)."""
    choices = {"data_format": FORMATS, "prompt_style": STYLES, "on_overflow": ON_OVERFLOW,
               "target": TARGETS, "diff_mode": DIFF_MODES}
    for name, allowed in choices.items():
        v = getattr(c, name, None)
        if v is not None and v not in allowed:
            raise ValueError(f"task.{name} must be one of {allowed}, got {v!r}")
    for name in ("max_prompt_tokens", "max_new_tokens", "max_train", "max_test"):
        v = getattr(c, name, None)
        if v is not None and v < 1:
            raise ValueError(f"task.{name} must be >= 1 or null, got {v}")


@dataclass
class WebTaskConfig:
    """What a web world model is trained on (WMA-format transition files).

    train: training transitions (.json array or .jsonl; WMA's WebArena or Mind2Web format).
    max_train: use only the first N training transitions (null: all).
    test: held-out transitions (same format).
    max_test: use only the first N held-out transitions (null: all).
    data_format: auto (WebArena fields, else Mind2Web's) | webarena | mind2web.
    target: diff (the diff computed from the two trees with diff_mode) | gold (the file's
        new_items/deleted_items/updated_items; an error names a record without them).
    diff_mode: clean (a diff apply_diff inverts; ours) | wma (WMA's annotation algorithm, compat).
    prompt_style: rlvr_world (RLVR-World's template: role, action grammar, rules, output format,
        a worked example, URL/objective/previous actions/observation/action) | compact (tree and
        action only, for tiny models).
    max_prompt_tokens: longest prompt in tokens (null: no limit).
    tokenizer: a tokenizer directory or .gguf file; null = train a byte-level BPE on the corpus.
    bpe_vocab_size: vocabulary of the trained BPE (tokenizer: null).
    bpe_split_words: the trained BPE never merges across words (GPT-2 regex).
    on_overflow: a longer prompt is an error, or is reduced: the worked example dropped
        (rlvr_world), then the tree's last lines cut (never the action); eval reports reductions.
    max_new_tokens: most answer tokens generated in RLVR and evaluation (EOS included).
    compat_rlvr_world: decoded answers keep special tokens and the stop token (verl's reward
        manager), so the EOS string sticks to the last item and it never matches; false = ours
        (dropped).
    """

    task_name: ClassVar[str] = "web"

    train: str = "data/web/train.json"
    max_train: int | None = None
    test: str = "data/web/test.json"
    max_test: int | None = None
    data_format: str = "auto"
    target: str = "diff"
    diff_mode: str = "clean"
    prompt_style: str = "compact"
    max_prompt_tokens: int | None = None
    tokenizer: str | None = None
    bpe_vocab_size: int = 2048
    bpe_split_words: bool = False
    on_overflow: str = "error"
    max_new_tokens: int = 512
    compat_rlvr_world: bool = False

    def __post_init__(self) -> None:
        problems = [msg for bad, msg in (
            (not (self.train and self.test), "task.train and task.test must be set (transition files)"),
            (self.bpe_vocab_size < 300, f"task.bpe_vocab_size must be >= 300, got {self.bpe_vocab_size}"))
            if bad]
        if problems:
            raise ValueError(problems[0])
        check_web_fields(self)

    #: keyword arguments of ``WebTask``: every field but the tokenizer's (as for text games)
    task_kwargs = TextGameTaskConfig.task_kwargs


@dataclass
class WebOverrides(TextOverrides):
    """What RLVR / evaluation may change of the world model's recorded web task
    (null: as recorded in its worldmodel.json).

    train: training transitions.
    test: held-out transitions.
    data_format: auto | webarena | mind2web.
    max_train: use only the first N training transitions.
    max_test: use only the first N held-out transitions.
    target: diff | gold.
    diff_mode: clean | wma.
    max_prompt_tokens: longest prompt in tokens.
    on_overflow: error | reduce.
    max_new_tokens: most answer tokens generated.
    compat_rlvr_world: decode keeping special tokens and the stop token (RLVR-World).
    """

    task_name: ClassVar[str] = "web"

    data_format: str | None = None
    target: str | None = None
    diff_mode: str | None = None
    compat_rlvr_world: bool | None = None

    def __post_init__(self) -> None:
        check_web_fields(self)
