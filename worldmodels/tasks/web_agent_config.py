"""The ``task:`` config sections of the MPC web agent's learned models (torch-free, so ``--help``
stays fast): the behaviour-cloned policy (``wm pretrain web-policy``, ``tasks/web_policy.py``)
and the value model (``wm pretrain web-value``, ``tasks/web_value.py``).

Both read the episode files of ``wm data build web`` (WMA WebArena-format JSON with the episode
fields ``agent``, ``success``, ``episode_success``, ``episode_steps``, ``episode``, ``step``,
``site``, ``family``; ``tasks/web_agent_data.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

POLICY_STYLES = ("compact", "instruct")
VALUE_STYLES = ("compact",)
ON_OVERFLOW = ("error", "reduce")
_NOT_TASK_KWARGS = {"tokenizer", "bpe_vocab_size", "bpe_split_words"}


def _check(c, styles: tuple[str, ...]) -> None:
    if not (c.train and c.test):
        raise ValueError("task.train and task.test must be set (episode record files)")
    if c.prompt_style not in styles:
        raise ValueError(f"task.prompt_style must be one of {styles}, got {c.prompt_style!r}")
    if c.on_overflow not in ON_OVERFLOW:
        raise ValueError(f"task.on_overflow must be one of {ON_OVERFLOW}, got {c.on_overflow!r}")
    for name in ("max_train", "max_test", "max_prompt_tokens", "max_new_tokens", "max_previous_actions"):
        v = getattr(c, name, None)
        if v is not None and v < 1:
            raise ValueError(f"task.{name} must be >= 1 or null, got {v}")
    if c.bpe_vocab_size < 300:
        raise ValueError(f"task.bpe_vocab_size must be >= 300, got {c.bpe_vocab_size}")


def _task_kwargs(c) -> dict:
    return {f.name: getattr(c, f.name) for f in fields(c) if f.name not in _NOT_TASK_KWARGS}


@dataclass
class WebPolicyTaskConfig:
    """A web-agent policy trained by behaviour cloning: prompt = objective, URL, previous actions
    and the observation tree; target = the action string (WebArena grammar) + EOS.

    train: training episode records (.json array or .jsonl; `wm data build web` output).
    test: held-out episode records (same format).
    max_train: use only the first N training records that pass the agent filter (null: all).
    max_test: use only the first N held-out records that pass the agent filter (null: all).
    include_random: also clone the random agent's steps (false: scripted episodes only, their
        noisy steps included: the demonstrations are noisy on purpose).
    prompt_style: compact (the four fields only, for tiny models) | instruct (a role sentence
        and the action grammar before the fields, for pretrained LMs).
    max_previous_actions: show only the last N previous actions (null: all).
    max_prompt_tokens: longest prompt in tokens (null: no limit).
    on_overflow: a longer prompt is an error, or is reduced by cutting the tree's last lines
        (never the objective, URL or previous actions); eval reports reductions.
    max_new_tokens: most action tokens generated (EOS included).
    tokenizer: a tokenizer directory or .gguf file; null = train a byte-level BPE on the corpus.
    bpe_vocab_size: vocabulary of the trained BPE (tokenizer: null).
    bpe_split_words: the trained BPE never merges across words (GPT-2 regex).
    """

    task_name: ClassVar[str] = "web_policy"

    train: str = "data/web_small/train.json"
    test: str = "data/web_small/test.json"
    max_train: int | None = None
    max_test: int | None = None
    include_random: bool = False
    prompt_style: str = "compact"
    max_previous_actions: int | None = 8
    max_prompt_tokens: int | None = None
    on_overflow: str = "reduce"
    max_new_tokens: int = 48
    tokenizer: str | None = None
    bpe_vocab_size: int = 2048
    bpe_split_words: bool = False

    def __post_init__(self) -> None:
        _check(self, POLICY_STYLES)

    task_kwargs = _task_kwargs


@dataclass
class WebValueTaskConfig:
    """A web-agent value model: prompt = objective + the state's tree; target = one digit 0-9,
    ``round(9 * v)`` of the state's Monte-Carlo success-to-go ``v`` (1 if the task check already
    holds, else ``gamma ** (s - k)`` when the episode succeeds at a later step s, else 0).
    Trained on the next observation of every record (random episodes supply failures).

    train: training episode records (.json array or .jsonl; `wm data build web` output).
    test: held-out episode records (same format).
    max_train: use only the first N training records (null: all).
    max_test: use only the first N held-out records (null: all).
    gamma: discount per step of the success-to-go label, in (0, 1].
    include_random: also train on the random agent's episodes (true: they supply failures).
    prompt_style: compact (objective and tree).
    max_prompt_tokens: longest prompt in tokens (null: no limit).
    on_overflow: a longer prompt is an error, or is reduced by cutting the tree's last lines
        (never the objective).
    tokenizer: a tokenizer directory or .gguf file; null = train a byte-level BPE on the corpus.
    bpe_vocab_size: vocabulary of the trained BPE (tokenizer: null).
    bpe_split_words: the trained BPE never merges across words (GPT-2 regex).
    """

    task_name: ClassVar[str] = "web_value"

    train: str = "data/web_small/train.json"
    test: str = "data/web_small/test.json"
    max_train: int | None = None
    max_test: int | None = None
    gamma: float = 0.8
    include_random: bool = True
    prompt_style: str = "compact"
    max_prompt_tokens: int | None = None
    on_overflow: str = "reduce"
    tokenizer: str | None = None
    bpe_vocab_size: int = 2048
    bpe_split_words: bool = False

    def __post_init__(self) -> None:
        _check(self, VALUE_STYLES)
        if not 0 < self.gamma <= 1:
            raise ValueError(f"task.gamma must be in (0, 1], got {self.gamma}")

    task_kwargs = _task_kwargs
