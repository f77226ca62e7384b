"""The MPC web agent's value model as a task: how close a page state is to the objective.

    task = WebValueTask.for_pretrain(WebValueTaskConfig(train=..., test=...))   # trains a BPE
    batch = task.collate(task.dataset("test")[:4])
    lm = task.lm_batch(batch)              # chat prompt + one digit, loss on the digit
    v = task.expected_values(model, batch) # (B,) in [0, 1]: E[digit] / 9 under the digit softmax
    task.value_report(model, "test")       # {"mae", "auc", "success_accuracy", "n", ...}

Data: ``wm data build web`` episode records (``web_agent_data``): every record's *next*
observation is one state (random episodes too, with ``include_random``: they supply failures).
Label (``web_agent_data.success_to_go``), a Monte-Carlo success-to-go of the state after step
k: 1 if the task check already holds (``success``), else ``gamma ** (s - k)`` if the episode
succeeds at a later step s, else 0 (``gamma`` 0.8 by default). Prompt: ``OBJECTIVE`` and
``OBSERVATION`` (the tree, last; cut from its end to fit ``max_prompt_tokens``, never the
objective). Target: one digit, ``round(9 v)`` (``value_bucket``).

Read-out (:meth:`WebValueTask.expected_values`, :func:`digit_expectation`): one forward pass;
the softmax of the next-token logits restricted to the ten digit tokens, its expectation
``sum_d d p_d`` divided by 9, so in [0, 1]. No sampling.

Sampled evaluation (the generic loop: one generated token, vocab-limited to the digits' id
range): per sample ``mae`` = |digit/9 - label|, ``success_accuracy`` = [digit/9 >= (1 + gamma)/2
iff the task check holds] (the threshold halfway between a success state, 1, and one a step
from it, gamma), ``parsed`` (a digit was emitted; else the value counts as 0). Baseline
``zero`` (every state valued 0). :meth:`value_report` gives the same with the expectation
read-out, plus the ROC AUC of success states vs the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from worldmodels.tasks.base import RolloutRequest, Segment, Task
from worldmodels.tasks.text_game import TextGameTask
from worldmodels.tasks.web_agent_config import WebValueTaskConfig
from worldmodels.tasks.web_agent_data import (
    VALUE_FIELDS,
    AgentStep,
    fit_tree_prompt,
    load_agent_steps,
    value_bucket,
    value_labels,
)
from worldmodels.tasks.web_policy import predict_states

METRICS = ("mae", "success_accuracy", "parsed")


def render_value_prompt(objective: str, tree: str) -> str:
    """The user message: the objective, then the state's tree."""
    return f"OBJECTIVE: {objective}\nOBSERVATION:\n{tree}\n"


def digit_token_ids(tokenizer) -> list[int]:
    """The ids of "0".."9" (each must encode to exactly one token); ValueError otherwise."""
    out = []
    for d in range(10):
        ids = tokenizer(str(d), add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"the tokenizer encodes the digit {d} as {len(ids)} tokens {ids}; the value "
                             f"model needs one token per digit")
        out.append(int(ids[0]))
    return out


def digit_expectation(logits: torch.Tensor, digit_ids: list[int]) -> torch.Tensor:
    """logits (B,V) of the answer's first token -> (B,) float32 in [0, 1]: ``sum_d d p_d / 9``
    with p the softmax over the ten digit tokens only."""
    p = logits.float()[:, digit_ids].softmax(-1)
    return (p * torch.arange(10, dtype=torch.float32, device=p.device)).sum(-1) / 9.0


def roc_auc(scores: list[float], positive: list[bool]) -> float | None:
    """ROC AUC (Mann-Whitney U / (n+ n-), ties count 1/2); None without both classes."""
    pos = [s for s, y in zip(scores, positive, strict=True) if y]
    neg = [s for s, y in zip(scores, positive, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return float(wins / (len(pos) * len(neg)))


class WebValueTask(TextGameTask):
    """See the module docstring; keyword arguments are ``WebValueTaskConfig``'s fields."""

    name = "web_value"
    higher_is_better = {"mae": False, "success_accuracy": True, "parsed": True}
    right_or_wrong = frozenset({"success_accuracy", "parsed"})

    def __init__(self, tokenizer, train: str, test: str, max_train=None, max_test=None, gamma=0.8,
                 include_random=True, prompt_style="compact", max_prompt_tokens=None, on_overflow="reduce"):
        self.settings = dict(train=str(train), test=str(test), max_train=max_train, max_test=max_test,
                             gamma=float(gamma), include_random=bool(include_random), prompt_style=prompt_style,
                             max_prompt_tokens=max_prompt_tokens, on_overflow=on_overflow)
        WebValueTaskConfig(**self.settings)  # validates
        self.__dict__.update(self.settings)
        self.max_new_tokens = 1
        self._setup(tokenizer)
        self.digit_ids = digit_token_ids(tokenizer)
        self._digit_of = {t: d for d, t in enumerate(self.digit_ids)}

    # ----- data -------------------------------------------------------------------------------
    def _load(self, path: str, limit: int | None) -> list[AgentStep]:
        return load_states(path, self.gamma, self.include_random, limit)

    def _fit(self, s: AgentStep, count) -> tuple[str, str, int]:
        return fit_tree_prompt(lambda tree: render_value_prompt(s.objective, tree), s.next_observation, count,
                               self.max_prompt_tokens, s.source, reduce=self.on_overflow == "reduce")

    def encode(self, s: AgentStep, index: int = 0, with_target: bool = True) -> dict:
        """One item: prompt ids, the answer (the label's digit, no EOS), the step, ``value``
        (the label) and ``success`` (the task check holds in this state)."""
        _, reduction, ids = self.prompt_text(s)
        value = float(s.value) if with_target else 0.0
        return self.item(index, s, ids, reduction, [self.digit_ids[value_bucket(value)]], value=value,
                         success=bool(s.success))

    def dataset(self, split: str) -> list[dict]:
        """Every state of ``split`` as an item (MLE and evaluation alike)."""
        return self.lm_dataset(split)

    def collate(self, items: list[dict]) -> dict:
        return {**super().collate(items), "value": torch.tensor([it["value"] for it in items]),
                "success": [it["success"] for it in items]}

    # ----- read-out ---------------------------------------------------------------------------
    @torch.no_grad()
    def expected_values(self, model, batch: dict) -> torch.Tensor:
        """(B,) float32 in [0, 1]: :func:`digit_expectation` of ``model``'s logits after each
        (left-padded) prompt of ``batch``; one forward pass, on the model's device."""
        dev = next(model.parameters()).device
        mask = batch["prompt_mask"].to(dev).long()
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = model(input_ids=batch["prompt_ids"].to(dev), attention_mask=mask, position_ids=pos, logits_to_keep=1)
        return digit_expectation(out.logits[:, -1], self.digit_ids).cpu()

    def value_report(self, model, split: str = "test", batch_size: int = 16) -> dict:
        """Expectation read-out on every state of ``split``: ``mae`` (vs the label),
        ``success_accuracy`` (threshold (1 + gamma)/2), ``auc`` (success states vs the rest;
        None without both), ``n``, ``mean_value`` and ``mean_label``."""
        items = self.dataset(split)
        values, labels, succ = [], [], []
        for i in range(0, len(items), batch_size):
            batch = self.collate(items[i : i + batch_size])
            values += self.expected_values(model, batch).tolist()
            labels += batch["value"].tolist()
            succ += batch["success"]
        th = (1 + self.gamma) / 2
        n = len(values)
        return {"n": n, "mae": sum(abs(v - y) for v, y in zip(values, labels, strict=True)) / max(n, 1),
                "success_accuracy": sum((v >= th) == s for v, s in zip(values, succ, strict=True)) / max(n, 1),
                "auc": roc_auc(values, succ), "mean_value": sum(values) / max(n, 1),
                "mean_label": sum(labels) / max(n, 1)}

    # ----- rollouts ---------------------------------------------------------------------------
    def segment(self) -> Segment:
        return Segment("generate", 1, allowed=(min(self.digit_ids), max(self.digit_ids) + 1))

    def rollout_request(self, batch: dict) -> RolloutRequest:
        return RolloutRequest(batch["prompt_ids"], [self.segment()], batch["prompt_mask"], pad_id=self.pad_id)

    def decode(self, batch: dict, output) -> dict:
        """``{"digit": [int | None], "value": (B,) digit/9 (0 when no digit)}``."""
        digits = [self._digit_of.get(int(t)) for t in output.completion_ids[:, 0].cpu().tolist()]
        return {"digit": digits, "value": torch.tensor([0.0 if d is None else d / 9 for d in digits])}

    def reward_items(self, batch: dict) -> dict:
        return {"value": batch["value"].clone(), "success": list(batch["success"]),
                "site": [s.site for s in batch["transition"]]}

    def metrics(self, predictions: dict, items: dict) -> dict[str, torch.Tensor]:
        v, y = predictions["value"].float(), items["value"].float()
        succ = torch.tensor(items["success"], dtype=torch.bool)
        parsed = torch.tensor([d is not None for d in predictions["digit"]], dtype=torch.float32)
        return {"mae": (v - y).abs(), "success_accuracy": ((v >= (1 + self.gamma) / 2) == succ).float(),
                "parsed": parsed}

    def baselines(self, batch: dict) -> dict:
        n = len(batch["transition"])
        return {"zero": {"digit": [0] * n, "value": torch.zeros(n)}}

    def report(self, res: dict) -> tuple[dict, str]:
        """The default table (``Task.report``; the text-game tables do not apply)."""
        return Task.report(self, res)

    def save_examples(self, out_dir, batch, predictions, names):
        """One ``<name>.json`` per row: source, site, objective, label, success, predicted digit."""
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        paths = []
        for i, name in enumerate(names):
            s = batch["transition"][i]
            p = Path(out_dir) / f"{name}.json"
            p.write_text(json.dumps({"source": s.source, "site": s.site, "objective": s.objective,
                                     "label": float(batch["value"][i]), "success": batch["success"][i],
                                     "predicted_digit": predictions["digit"][i]}, indent=1))
            paths.append(str(p))
        return paths

    def predict_request(self, context: list, actions=None, n_samples: int = 1):
        """``context``: B agent states (``web_policy.state_step``; the observation is the state
        valued); ``actions`` is unused. Use :meth:`expected_values` on the batch for the read-out."""
        return predict_states(self, context, n_samples)

    # ----- persistence (to_meta, save_assets, from_meta, for_pretrain: the text-game task's) ----
    config_class = WebValueTaskConfig

    @classmethod
    def load_train(cls, cfg: WebValueTaskConfig) -> list[AgentStep]:
        return load_states(cfg.train, cfg.gamma, cfg.include_random, cfg.max_train)

    @classmethod
    def corpus(cls, train: list[AgentStep], cfg: WebValueTaskConfig) -> list[str]:
        """The distinct prompts of ``train`` and the ten digits (what the BPE is trained on)."""
        texts = dict.fromkeys(render_value_prompt(s.objective, s.next_observation) for s in train)
        return [*texts, *(str(d) for d in range(10))]


def load_states(path, gamma: float, include_random: bool, limit: int | None) -> list[AgentStep]:
    """The steps of ``path`` with their ``value`` label (computed over the whole file's episodes),
    the random agent's only with ``include_random``, the first ``limit`` (None: all)."""
    steps = load_agent_steps(path, VALUE_FIELDS)
    for s, v in zip(steps, value_labels(steps, gamma), strict=True):
        s.value = v
    if not include_random:
        steps = [s for s in steps if s.agent != "random"]
    return steps[:limit] if limit is not None else steps
