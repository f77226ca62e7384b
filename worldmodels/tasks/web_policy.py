"""The MPC web agent's policy as a task: behaviour cloning of the built-in sites' agents.

    task = WebPolicyTask.for_pretrain(WebPolicyTaskConfig(train=..., test=...))   # trains a BPE
    batch = task.collate(task.dataset("test")[:4])
    lm = task.lm_batch(batch)               # chat prompt + action + EOS, loss on action + EOS
    req = task.rollout_request(batch)       # one generate segment ending at EOS / end of turn
    preds = task.decode(batch, rollout(model, req))   # {"text", "verb", ...}
    task.metrics(preds, task.reward_items(batch))     # exact, action_type, parsed

Data: ``wm data build web`` episode records (``web_agent_data``); the scripted agent's steps,
its noisy ones included (the demonstrations are noisy on purpose, so the cloned policy is
imperfect), and the random agent's with ``include_random``. Prompt (one user message):
``OBJECTIVE``, ``URL``, ``PREVIOUS ACTIONS`` (the last ``max_previous_actions``) and
``OBSERVATION`` (the tree, last); ``instruct`` puts a role sentence and WebArena's action grammar
(``web_prompt.ACTIONS``) first. A prompt over ``max_prompt_tokens`` loses the tree's last lines
(``web_agent_data.fit_tree_prompt``), never the objective or the previous actions. The target
is the action string + EOS.

Metrics per sample: ``exact`` (the stripped action equals the demonstration's), ``action_type``
(same verb; 0 when unparseable), ``parsed`` (one WebArena action: ``web_agent_data.action_verb``).
Baseline ``repeat_last``: the step's last previous action (``scroll [down]`` when none).

The tokenized-chat machinery (collate, lm_batch, max_length, the rollout segment, the tokenizer
saved as ``tokenizer/``, ``for_pretrain`` / ``from_meta``) is the text-game task's.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from worldmodels.tasks.base import Task
from worldmodels.tasks.text_game import TextGameTask
from worldmodels.tasks.web_agent_config import WebPolicyTaskConfig
from worldmodels.tasks.web_agent_data import (
    POLICY_FIELDS,
    AgentStep,
    action_verb,
    fit_tree_prompt,
    load_agent_steps,
)
from worldmodels.tasks.web_prompt import ACTIONS

METRICS = ("exact", "action_type", "parsed")
INSTRUCTIONS = ("You are an agent that completes tasks on web pages. Given the objective, the page's "
                "URL, your previous actions and the page's accessibility tree, answer with the next "
                f"action and nothing else, in this grammar:\n{ACTIONS}\n\n")


def render_policy_prompt(s: AgentStep, style: str, tree: str, max_previous: int | None = None) -> str:
    """The user message of step ``s`` with ``tree`` as the observation (the tree goes last)."""
    prev = s.previous_actions[-max_previous:] if max_previous else s.previous_actions
    fields = (f"OBJECTIVE: {s.objective}\nURL: {s.url}\nPREVIOUS ACTIONS:\n{chr(10).join(prev) or 'None'}\n"
              f"OBSERVATION:\n{tree}\n")
    return (INSTRUCTIONS + fields) if style == "instruct" else fields


def state_step(state, index: int = 0) -> AgentStep:
    """An :class:`AgentStep` of an agent state (any object or dict with ``objective``, ``url``,
    ``observation`` and optional ``previous_actions``, ``site``, ``family``); ValueError naming
    the missing field."""
    get = state.get if isinstance(state, dict) else (lambda k, d=None: getattr(state, k, d))
    for k in ("objective", "url", "observation"):
        if not isinstance(get(k), str):
            raise ValueError(f"state {index}: needs a str '{k}', got {type(get(k)).__name__}")
    prev = [str(a) for a in (get("previous_actions") or ()) if str(a) not in ("", "None")]
    return AgentStep(get("objective"), get("url"), prev, get("observation"), "", get("observation"),
                     str(get("site", "") or ""), str(get("family", "") or ""), "", f"state[{index}]")


def predict_states(task, context: list, n_samples: int = 1):
    """``(batch, RolloutRequest)`` of ``task`` (the policy or value task) on B agent states
    (``state_step``), each repeated ``n_samples`` times. ValueError when ``context`` is empty."""
    items = [task.encode(state_step(st, i), i, with_target=False) for i, st in enumerate(context)]
    if not items:
        raise ValueError("predict needs at least one state")
    batch = task.repeat(task.collate(items), n_samples)
    return batch, task.rollout_request(batch)


class WebPolicyTask(TextGameTask):
    """See the module docstring; keyword arguments are ``WebPolicyTaskConfig``'s fields."""

    name = "web_policy"
    higher_is_better = {m: True for m in METRICS}
    right_or_wrong = frozenset(METRICS)

    def __init__(self, tokenizer, train: str, test: str, max_train=None, max_test=None, include_random=False,
                 prompt_style="compact", max_previous_actions=8, max_prompt_tokens=None, on_overflow="reduce",
                 max_new_tokens=48):
        self.settings = dict(train=str(train), test=str(test), max_train=max_train, max_test=max_test,
                             include_random=bool(include_random), prompt_style=prompt_style,
                             max_previous_actions=max_previous_actions, max_prompt_tokens=max_prompt_tokens,
                             on_overflow=on_overflow, max_new_tokens=max_new_tokens)
        WebPolicyTaskConfig(**self.settings)  # validates
        self.__dict__.update(self.settings)
        self._setup(tokenizer)

    # ----- data -------------------------------------------------------------------------------
    def _load(self, path: str, limit: int | None) -> list[AgentStep]:
        return load_steps(path, self.include_random, limit)

    def _fit(self, s: AgentStep, count) -> tuple[str, str, int]:
        def render(tree: str) -> str:
            return render_policy_prompt(s, self.prompt_style, tree, self.max_previous_actions)

        return fit_tree_prompt(render, s.observation, count, self.max_prompt_tokens, s.source,
                               reduce=self.on_overflow == "reduce")

    def encode(self, s: AgentStep, index: int = 0, with_target: bool = True) -> dict:
        """One item: prompt ids, answer ids (the action + EOS), the step and ``gold`` (the action)."""
        _, reduction, ids = self.prompt_text(s)
        gold = s.action.strip() if with_target else ""
        answer = self.tokenizer(gold, add_special_tokens=False)["input_ids"]
        return self.item(index, s, ids, reduction, [*answer, self.eos_id], gold=gold)

    def dataset(self, split: str) -> list[dict]:
        """Every step of ``split`` as an item (MLE and evaluation alike)."""
        return self.lm_dataset(split)

    def collate(self, items: list[dict]) -> dict:
        return {**super().collate(items), "gold": [it["gold"] for it in items]}

    # ----- rollouts -------------------------------------------------------------------------
    def decode(self, batch: dict, output) -> dict:
        """``{"text": [str], "verb": [str | None], "stopped": (B,), "lengths": (B,)}``: each
        row's action text up to its stop token (special tokens dropped) and its verb."""
        ids, lengths, stopped = output.completion_ids.cpu(), output.lengths.cpu(), output.stopped.cpu()
        texts = []
        for r in range(ids.shape[0]):
            row = ids[r, : int(lengths[r])].tolist()
            texts.append(self.tokenizer.decode(row[:-1] if stopped[r] else row, skip_special_tokens=True).strip())
        return {"text": texts, "verb": [action_verb(t) for t in texts], "stopped": stopped, "lengths": lengths}

    def reward_items(self, batch: dict) -> dict:
        steps = batch["transition"]
        return {"gold": list(batch["gold"]), "site": [s.site for s in steps], "family": [s.family for s in steps],
                "prompt_tokens": list(batch["prompt_tokens"]), "reduction": list(batch["reduction"])}

    def metrics(self, predictions: dict, items: dict) -> dict[str, torch.Tensor]:
        rows = [action_metrics(t, g) for t, g in zip(predictions["text"], items["gold"], strict=True)]
        if self.eval_rows is not None:
            for i, m in enumerate(rows):
                self.eval_rows.append({**m, "source": predictions.get("source", "model"),
                                       "site": items["site"][i], "reduction": items["reduction"][i]})
        return {k: torch.tensor([r[k] for r in rows], dtype=torch.float32) for k in METRICS}

    def baselines(self, batch: dict) -> dict:
        last = [(s.previous_actions[-1] if s.previous_actions else "scroll [down]") for s in batch["transition"]]
        return {"repeat_last": {"text": last, "source": "repeat_last"}}

    def report(self, res: dict) -> tuple[dict, str]:
        """The default table (``Task.report``; the text-game tables do not apply)."""
        return Task.report(self, res)

    def save_examples(self, out_dir, batch, predictions, names):
        """One ``<name>.json`` per row: source, site, objective, URL, gold and predicted action."""
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        paths = []
        for i, name in enumerate(names):
            s, text = batch["transition"][i], predictions["text"][i]
            p = Path(out_dir) / f"{name}.json"
            p.write_text(json.dumps({"source": s.source, "site": s.site, "objective": s.objective, "url": s.url,
                                     "gold_action": batch["gold"][i], "predicted_action": text,
                                     **action_metrics(text, batch["gold"][i])}, indent=1))
            paths.append(str(p))
        return paths

    def predict_request(self, context: list, actions=None, n_samples: int = 1):
        """``context``: B agent states (``state_step``); ``actions`` is unused (a policy proposes
        them). ``decode`` then gives each of the ``n_samples`` samples' action text, item-major."""
        return predict_states(self, context, n_samples)

    # ----- persistence (to_meta, save_assets, from_meta, for_pretrain: the text-game task's) ----
    config_class = WebPolicyTaskConfig

    @classmethod
    def load_train(cls, cfg: WebPolicyTaskConfig) -> list[AgentStep]:
        return load_steps(cfg.train, cfg.include_random, cfg.max_train)

    @classmethod
    def corpus(cls, train: list[AgentStep], cfg: WebPolicyTaskConfig) -> list[str]:
        """The distinct prompts and actions of ``train`` (what the BPE is trained on)."""
        texts: dict[str, None] = {}
        for s in train:
            texts[render_policy_prompt(s, cfg.prompt_style, s.observation, cfg.max_previous_actions)] = None
            texts[s.action.strip()] = None
        return list(texts)


def load_steps(path, include_random: bool, limit: int | None) -> list[AgentStep]:
    """The cloned steps of ``path``: the scripted agent's (and the random one's with
    ``include_random``), the first ``limit`` (None: all)."""
    return load_agent_steps(path, POLICY_FIELDS, None if include_random else ("scripted",), limit)


def action_metrics(predicted, gold: str) -> dict[str, float]:
    """``exact`` / ``action_type`` / ``parsed`` of one predicted action string against ``gold``
    (0 for anything that is not a string)."""
    verb = action_verb(predicted)
    exact = isinstance(predicted, str) and predicted.strip() == gold.strip()
    return {"exact": float(exact), "action_type": float(verb is not None and verb == action_verb(gold)),
            "parsed": float(verb is not None)}
