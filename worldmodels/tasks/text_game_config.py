"""The ``task:`` config sections of text-game world models (torch-free, so ``--help`` stays fast).

``TextGameTaskConfig`` builds a task for pretraining (``wm pretrain text-game``);
``TextGameOverrides`` is what RLVR and evaluation may change of a trained model's recorded task.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

MODES = ("full", "action", "tick")
STYLES = ("rlvr_world", "compact")
ON_OVERFLOW = ("error", "reduce")


def check_task_fields(c) -> None:
    """Checks shared by both sections (fields that are None are not checked)."""
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ValueError(f"task.{msg}")

    if getattr(c, "mode", None) is not None:
        need(c.mode in MODES, f"mode must be one of {MODES}, got {c.mode!r}")
    if getattr(c, "prompt_style", None) is not None:
        need(c.prompt_style in STYLES, f"prompt_style must be one of {STYLES}, got {c.prompt_style!r}")
    if getattr(c, "state_format", None) is not None:
        need(c.state_format in ("python", "json"), f"state_format must be python|json|null, got "
             f"{c.state_format!r}")
    if getattr(c, "on_overflow", None) is not None:
        need(c.on_overflow in ON_OVERFLOW, f"on_overflow must be one of {ON_OVERFLOW}, got {c.on_overflow!r}")
    for name in ("max_prompt_tokens", "max_new_tokens", "max_train", "max_test"):
        v = getattr(c, name, None)
        need(v is None or v >= 1, f"{name} must be >= 1 or null, got {v}")
    if getattr(c, "rl_unchanged_ratio", None) is not None:
        need(c.rl_unchanged_ratio >= 0, f"rl_unchanged_ratio must be >= 0, got {c.rl_unchanged_ratio}")
    if getattr(c, "rl_split", None) is not None:
        need(c.rl_split in ("gold", "exact"), f"rl_split must be gold|exact, got {c.rl_split!r}")


@dataclass
class TextGameTaskConfig:
    """What a text-game world model is trained on (GPT-simulator JSONL transitions).

    train: training records (.jsonl, .jsonl.gz or .json; `wm data build text-game` output).
    test: held-out records (same format).
    max_train: use only the first N training records (null: all).
    max_test: use only the first N held-out records (null: all).
    mode: full (current -> tick state, with the score; RLVR-World) | action | tick.
    prompt_style: rlvr_world (rules, two dishwasher shots, Python-dict states, "The final answer
        is:" marker; needs rules and examples) | compact (JSON state, no rules or shots).
    state_format: python | json; null = the style's own (python for rlvr_world, json for compact).
    rules: directory with {object,action,score}_rules.json (rlvr_world; null: no rules).
    examples: GPT-simulator examples.json with the in-context shots (rlvr_world; null: no shots).
    max_prompt_tokens: longest prompt in tokens (null: no limit; the backbone's context still
        bounds prompt + answer).
    on_overflow: a longer prompt is an error, or is reduced: fewer shots, then no rules (never
        the state or the action); eval reports how many were reduced.
    max_new_tokens: most answer tokens generated in RLVR and evaluation (EOS included).
    tokenizer: a tokenizer directory (e.g. a HF model directory: its tokenizer.json) or a .gguf
        file; null = train a byte-level BPE on the training prompts and answers.
    bpe_vocab_size: vocabulary of the trained BPE (tokenizer: null).
    bpe_split_words: the trained BPE never merges across words (GPT-2 regex); false = merges
        may span words and punctuation (~4x shorter JSON states; text_tokenizer docstring).
    compat_rlvr_world: score and apply diffs exactly as RLVR-World (drops created objects, the
        KeyError quirk, Python ==); false = our fixes (text_game_rewards docstring).
    rl_sampling: RLVR's training prompts are every changed record plus rl_unchanged_ratio
        unchanged ones per changed one, drawn with replacement (RLVR-World); false = all records.
    rl_unchanged_ratio: unchanged per changed record (RLVR-World: 0.4 binary, 0.05 task_specific).
    rl_split: what counts as changed for RL sampling: gold (RLVR-World: a property or contains of
        an existing object changed) | exact (the state differs).
    rl_seed: seed of the unchanged draw.
    """

    task_name: ClassVar[str] = "text_game"

    train: str = "data/text_game/train.jsonl"
    test: str = "data/text_game/test.jsonl"
    max_train: int | None = None
    max_test: int | None = None
    mode: str = "full"
    prompt_style: str = "compact"
    state_format: str | None = None
    rules: str | None = None
    examples: str | None = None
    max_prompt_tokens: int | None = None
    on_overflow: str = "error"
    max_new_tokens: int = 512
    tokenizer: str | None = None
    bpe_vocab_size: int = 2048
    bpe_split_words: bool = False
    compat_rlvr_world: bool = False
    rl_sampling: bool = False
    rl_unchanged_ratio: float = 0.05
    rl_split: str = "gold"
    rl_seed: int = 0

    def __post_init__(self) -> None:
        if not self.train or not self.test:
            raise ValueError("task.train and task.test must be set (record files)")
        if self.bpe_vocab_size < 300:
            raise ValueError(f"task.bpe_vocab_size must be >= 300, got {self.bpe_vocab_size}")
        check_task_fields(self)

    def task_kwargs(self) -> dict:
        """Keyword arguments of ``TextGameTask`` (every field but the tokenizer's)."""
        skip = {"tokenizer", "bpe_vocab_size", "bpe_split_words"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


@dataclass
class TextOverrides:
    """What RLVR / evaluation may change of any text world model's recorded task (the fields
    the text-game and web overrides share; null: as recorded in its worldmodel.json).

    train: training records.
    test: held-out records.
    max_train: use only the first N training records.
    max_test: use only the first N held-out records.
    max_prompt_tokens: longest prompt in tokens.
    on_overflow: error | reduce.
    max_new_tokens: most answer tokens generated.
    """

    train: str | None = None
    test: str | None = None
    max_train: int | None = None
    max_test: int | None = None
    max_prompt_tokens: int | None = None
    on_overflow: str | None = None
    max_new_tokens: int | None = None

    def __post_init__(self) -> None:
        check_task_fields(self)

    def task_kwargs(self) -> dict:
        """Keyword overrides for the task's ``from_meta`` (only what is set)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass
class TextGameOverrides(TextOverrides):
    """What RLVR / evaluation may change of the world model's recorded text-game task
    (null: as recorded in its worldmodel.json).

    train: training records.
    test: held-out records.
    max_train: use only the first N training records.
    max_test: use only the first N held-out records.
    max_prompt_tokens: longest prompt in tokens.
    on_overflow: error | reduce (fewer shots, then no rules).
    max_new_tokens: most answer tokens generated.
    compat_rlvr_world: score and apply diffs exactly as RLVR-World.
    rl_sampling: changed records plus sampled unchanged ones (true) or all records (false).
    rl_unchanged_ratio: unchanged per changed record (0.4 binary, 0.05 task_specific).
    rl_split: gold | exact.
    rl_seed: seed of the unchanged draw.
    """

    task_name: ClassVar[str] = "text_game"

    compat_rlvr_world: bool | None = None
    rl_sampling: bool | None = None
    rl_unchanged_ratio: float | None = None
    rl_split: str | None = None
    rl_seed: int | None = None
