"""The text-game world model task: predict the state change of a text game after an action.

    task = TextGameTask.for_pretrain(TextGameTaskConfig(train=..., test=...))   # trains a BPE
    batch = task.collate(task.dataset("test")[:4])
    lm = task.lm_batch(batch)               # chat prompt + answer + EOS, loss on answer + EOS
    req = task.rollout_request(batch)       # one generate segment ending at EOS / end of turn
    preds = task.decode(batch, rollout(model, req))   # {"text", "diff", "state", ...}
    task.metrics(preds, task.reward_items(batch))     # accuracy, task_specific, parsed, ...

Data: GPT-simulator transitions (``text_game_data``); prompt styles ``rlvr_world`` / ``compact``
and the prompt reduction (``text_game_prompt``); the target is the diff against the next
state (``text_game_parse.make_diff``), after "The final answer is: " in the ``rlvr_world``
style; answers are parsed (never evaluated) and scored by the rewards ``binary`` and
``task_specific`` (``text_game_rewards``, registered on import of this module). RLVR's training
prompts follow RLVR-World's sampling when ``rl_sampling`` is on (``dataset("train")``; MLE's
``lm_dataset("train")`` always has every record). The tokenizer (``text_tokenizer``) is saved
as ``tokenizer/`` next to the backbone.

Evaluation: ``metrics`` gives per-sample ``accuracy`` (binary reward), ``task_specific``,
``parsed``, ``changed_share`` and ``correct_changed_share`` (accuracy on changed records =
the latter / the former); with ``eval_rows`` set to a list, it also records one row per
sample so that ``report`` adds the per-split, per-game and per-verb tables and the prompt-length
distribution (``text_game_metrics``). Baseline: ``no_change``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from worldmodels.tasks.base import IGNORE_INDEX, RolloutRequest, Segment, Task
from worldmodels.tasks.text_game_config import TextGameTaskConfig, check_task_fields
from worldmodels.tasks.text_game_data import Transition, load_transitions, rl_sample
from worldmodels.tasks.text_game_metrics import accuracy_tables, tables_markdown
from worldmodels.tasks.text_game_parse import EMPTY_DIFF, apply_diff, make_diff, parse_diff
from worldmodels.tasks.text_game_prompt import (
    fit_prompt,
    load_rules,
    load_shots,
    prompt_parts,
    render_answer,
)
from worldmodels.tasks.text_game_rewards import score_cards
from worldmodels.tasks.text_tokenizer import (
    chat_prompt_ids,
    load_text_tokenizer,
    pad_id,
    save_tokenizer,
    stop_ids,
    train_bpe_tokenizer,
)

TOKENIZER_DIR = "tokenizer"
_ITEM_LISTS = ("index", "prompt", "answer", "transition", "prompt_tokens", "reduction")


class TextGameTask(Task):
    """See the module docstring; keyword arguments are ``TextGameTaskConfig``'s fields."""

    name = "text_game"
    # changed_share (does the record change the state) describes the records, not the model
    higher_is_better = {"accuracy": True, "task_specific": True, "parsed": True, "changed_share": None,
                        "correct_changed_share": True}
    right_or_wrong = frozenset({"accuracy", "parsed", "correct_changed_share"})

    def __init__(self, tokenizer, train: str, test: str, max_train=None, max_test=None, mode="full",
                 prompt_style="compact", state_format=None, rules=None, examples=None,
                 max_prompt_tokens=None, on_overflow="error", max_new_tokens=512,
                 compat_rlvr_world=False, rl_sampling=False, rl_unchanged_ratio=0.05,
                 rl_split="gold", rl_seed=0):
        self.settings = dict(train=str(train), test=str(test), max_train=max_train, max_test=max_test,
                             mode=mode, prompt_style=prompt_style, state_format=state_format,
                             rules=rules, examples=examples, max_prompt_tokens=max_prompt_tokens,
                             on_overflow=on_overflow, max_new_tokens=max_new_tokens,
                             compat_rlvr_world=bool(compat_rlvr_world), rl_sampling=bool(rl_sampling),
                             rl_unchanged_ratio=rl_unchanged_ratio, rl_split=rl_split, rl_seed=rl_seed)
        check_task_fields(TextGameTaskConfig(**self.settings))
        self.__dict__.update(self.settings)
        self._setup(tokenizer)
        self.rules_data = load_rules(rules) if rules else None
        self.shots = load_shots(examples, mode) if examples else None

    def _setup(self, tokenizer) -> None:
        """The tokenizer and what follows from it; empty caches (shared with the web task)."""
        self.tokenizer = tokenizer
        self.pad_id, self.eos_id = pad_id(tokenizer), tokenizer.eos_token_id
        self.stop_ids = stop_ids(tokenizer)
        self.vocab_size = len(tokenizer)
        self._transitions: dict[str, list] = {}
        self._items: dict[str, list[dict]] = {}
        self.eval_rows: list[dict] | None = None  # set to [] to record rows for ``report``

    # ----- data -----------------------------------------------------------------------------
    def transitions(self, split: str) -> list[Transition]:
        """The transitions of ``split`` ("train" | "test"), loaded once."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if split not in self._transitions:
            path, limit = (self.train, self.max_train) if split == "train" else (self.test, self.max_test)
            self._transitions[split] = self._load(path, limit)
        return self._transitions[split]

    def _load(self, path: str, limit: int | None) -> list:
        """The first ``limit`` transitions of ``path`` (None: all)."""
        return load_transitions(path, self.mode, limit)

    def prompt_text(self, t: Transition) -> tuple[str, str, list[int]]:
        """(user message, reduction, prompt ids under the chat template) of ``t``."""
        last: dict = {}

        def count(text: str) -> int:
            last["ids"] = chat_prompt_ids(self.tokenizer, text)
            return len(last["ids"])

        text, reduction, _ = self._fit(t, count)
        return text, reduction, last["ids"]

    def _fit(self, t, count) -> tuple[str, str, int]:
        """``text_game_prompt.fit_prompt`` of ``t`` with this task's settings."""
        return fit_prompt(t, self.prompt_style, self.rules_data, self.shots, count, self.max_prompt_tokens,
                          self.state_format, reduce=self.on_overflow == "reduce")

    def encode(self, t: Transition, index: int = 0) -> dict:
        """One item: prompt ids, answer ids (the gold diff's text + EOS) and the transition."""
        _, reduction, ids = self.prompt_text(t)
        diff = make_diff(t.current, t.next, t.current_score, t.next_score)
        answer = self.tokenizer(render_answer(diff, self.prompt_style), add_special_tokens=False)["input_ids"]
        return self.item(index, t, ids, reduction, [*answer, self.eos_id])

    @staticmethod
    def item(index: int, source, prompt_ids: list[int], reduction: str, answer_ids: list[int], **extra) -> dict:
        """The item every chat task of this family builds: ``prompt`` / ``answer`` int32 ids, the
        ``transition`` it came from, ``prompt_tokens``, the prompt ``reduction``, plus ``extra``."""
        return {"index": index, "prompt": torch.tensor(prompt_ids, dtype=torch.int32),
                "answer": torch.tensor(answer_ids, dtype=torch.int32), "transition": source,
                "prompt_tokens": len(prompt_ids), "reduction": reduction, **extra}

    def lm_dataset(self, split: str) -> list[dict]:
        """Every record of ``split`` as an item (MLE)."""
        if split not in self._items:
            self._items[split] = [self.encode(t, i) for i, t in enumerate(self.transitions(split))]
        return self._items[split]

    def dataset(self, split: str) -> list[dict]:
        """``lm_dataset(split)``; for "train" with ``rl_sampling`` RLVR-World's sample: every
        changed record plus ``rl_unchanged_ratio`` unchanged ones each, with replacement."""
        items = self.lm_dataset(split)
        if split != "train" or not self.rl_sampling:
            return items
        index = {id(it["transition"]): it for it in items}
        picked = rl_sample([it["transition"] for it in items], self.rl_unchanged_ratio,
                           self.rl_seed, self.rl_split)
        return [index[id(t)] for t in picked]

    def collate(self, items: list[dict]) -> dict:
        """Lists per field; ``prompt_ids`` (B,P) int64 left-padded, ``prompt_mask`` (B,P) bool."""
        P = max(len(it["prompt"]) for it in items)
        ids = torch.full((len(items), P), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(items), P, dtype=torch.bool)
        for i, it in enumerate(items):
            n = len(it["prompt"])
            ids[i, P - n:], mask[i, P - n:] = it["prompt"].long(), True
        batch = {k: [it.get(k) for it in items] for k in _ITEM_LISTS}
        return {**batch, "prompt_ids": ids, "prompt_mask": mask}

    def lm_batch(self, batch: dict) -> dict:
        """prompt + answer + EOS per row, left-padded; labels on the answer and EOS only."""
        rows = [torch.cat([p, a]).long() for p, a in zip(batch["prompt"], batch["answer"], strict=True)]
        L = max(len(r) for r in rows)
        ids = torch.full((len(rows), L), self.pad_id, dtype=torch.long)
        labels = torch.full_like(ids, IGNORE_INDEX)
        mask = torch.zeros_like(ids)
        for i, (r, a) in enumerate(zip(rows, batch["answer"], strict=True)):
            ids[i, L - len(r):], mask[i, L - len(r):] = r, 1
            labels[i, L - len(a):] = a.long()
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    def max_length(self) -> int:
        """Longest prompt + the longer of the longest answer and ``max_new_tokens``."""
        items = self.lm_dataset("train") + self.lm_dataset("test")
        return max(len(it["prompt"]) for it in items) + max(
            self.max_new_tokens, max(len(it["answer"]) for it in items))

    # ----- rollouts -------------------------------------------------------------------------
    def segment(self) -> Segment:
        lo = 1 if self.pad_id == 0 and 0 not in self.stop_ids else 0  # never emit <pad>
        return Segment("generate", self.max_new_tokens, allowed=(lo, self.vocab_size), stop_ids=self.stop_ids)

    def rollout_request(self, batch: dict) -> RolloutRequest:
        return RolloutRequest(batch["prompt_ids"], [self.segment()], batch["prompt_mask"], pad_id=self.pad_id)

    def decode(self, batch: dict, output) -> dict:
        """``{"text": [str], "diff": [dict | None], "state": [(objects, score) | None],
        "compat": bool, "stopped": (B,), "lengths": (B,)}``: each row's text up to its stop
        token, its parsed diff and the state it predicts (None when unparseable)."""
        ids, lengths, stopped = output.completion_ids.cpu(), output.lengths.cpu(), output.stopped.cpu()
        texts = []
        for r in range(ids.shape[0]):
            row = ids[r, : int(lengths[r])].tolist()
            texts.append(self.tokenizer.decode(row[:-1] if stopped[r] else row, skip_special_tokens=True))
        diffs = [parse_diff(t, self.compat_rlvr_world) for t in texts]
        return {"text": texts, "diff": diffs, "state": self._states(batch, diffs),
                "compat": self.compat_rlvr_world, "stopped": stopped, "lengths": lengths}

    def _states(self, batch: dict, diffs: list) -> list:
        out = []
        for t, d in zip(batch["transition"], diffs, strict=True):
            try:
                out.append(None if d is None else apply_diff(t.current, t.current_score, d, self.compat_rlvr_world))
            except Exception:  # compat: a malformed diff the original would also fail on
                out.append(None)
        return out

    def reward_items(self, batch: dict) -> dict:
        ts = batch["transition"]
        return {"current": [t.current for t in ts], "current_score": [t.current_score for t in ts],
                "target": [t.next for t in ts], "target_score": [t.next_score for t in ts],
                "changed": [t.changed for t in ts], "game": [t.game for t in ts],
                "verb": [t.verb for t in ts], "prompt_tokens": list(batch["prompt_tokens"]),
                "reduction": list(batch["reduction"]), "compat": self.compat_rlvr_world}

    def metrics(self, predictions: dict, items: dict) -> dict[str, torch.Tensor]:
        cards = score_cards(predictions, items)
        correct = [0.0 if c is None else c.binary for c in cards]
        ts = [0.0 if c is None else c.task_specific for c in cards]
        parsed = [float(c is not None) for c in cards]
        changed = [float(x) for x in items["changed"]]
        if self.eval_rows is not None:
            source = predictions.get("source", "model")
            for i in range(len(cards)):
                self.eval_rows.append({"source": source, "game": items["game"][i], "verb": items["verb"][i],
                                       "changed": bool(changed[i]), "correct": correct[i],
                                       "task_specific": ts[i], "parsed": parsed[i],
                                       "prompt_tokens": items["prompt_tokens"][i],
                                       "reduction": items["reduction"][i]})
        both = [a * b for a, b in zip(correct, changed, strict=True)]
        return {k: torch.tensor(v, dtype=torch.float32) for k, v in (
            ("accuracy", correct), ("task_specific", ts), ("parsed", parsed), ("changed_share", changed),
            ("correct_changed_share", both))}

    def baselines(self, batch: dict) -> dict:
        n = len(batch["transition"])
        return {"no_change": {"text": [json.dumps(EMPTY_DIFF)] * n, "source": "no_change"}}

    def report(self, res: dict) -> tuple[dict, str]:
        """The default table, plus (when ``eval_rows`` were recorded) the accuracy tables."""
        data, md = super().report(res)
        if self.eval_rows:
            tables = accuracy_tables(self.eval_rows)
            data = {**data, "accuracy_tables": tables}
            md = md + "\n" + tables_markdown(tables)
        return data, md

    def save_examples(self, out_dir, batch, predictions, names):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, name in enumerate(names):
            t = batch["transition"][i]
            gold = make_diff(t.current, t.next, t.current_score, t.next_score)
            p = out / f"{name}.json"
            p.write_text(json.dumps({"source": t.source, "game": t.game, "action": t.action,
                                     "changed": t.changed, "gold_diff": gold,
                                     "predicted_text": predictions["text"][i],
                                     "predicted_diff": predictions["diff"][i]}, indent=1, default=str))
            paths.append(str(p))
        return paths

    def predict_request(self, context: list[dict], actions: list[str], n_samples: int = 1):
        """``context``: B states, each ``{"objects": [...], "max_UUID": int, "taskDesc": str,
        "game": str[, "score": {...}]}`` (a GPT-simulator state plus its game and score);
        ``actions``: B strings. ``decode`` then gives each sample's diff and predicted state."""
        if isinstance(actions, str) or len(context) != len(actions):
            raise ValueError(f"predict needs lists of states and actions of the same length, got "
                             f"{len(context)} and {1 if isinstance(actions, str) else len(actions)}")
        items = []
        for i, (s, a) in enumerate(zip(context, actions, strict=True)):
            missing = [k for k in ("objects", "max_UUID") if k not in s]
            if missing:
                raise ValueError(f"predict: state {i} lacks {missing}")
            score = s.get("score") if self.mode == "full" else None
            t = Transition(s.get("game", ""), i, a, s.get("taskDesc", ""), s["max_UUID"], s["objects"],
                           s["objects"], score, score, source=f"predict[{i}]")
            items.append(self.encode(t, i))
        batch = self.repeat(self.collate(items), n_samples)
        return batch, self.rollout_request(batch)

    # ----- persistence ----------------------------------------------------------------------
    def to_meta(self) -> dict:
        return {"tokenizer": TOKENIZER_DIR, **self.settings}

    def save_assets(self, directory) -> None:
        if not (Path(directory) / TOKENIZER_DIR / "tokenizer.json").is_file():
            save_tokenizer(self.tokenizer, Path(directory) / TOKENIZER_DIR)

    config_class = TextGameTaskConfig  # the pretraining ``task:`` section (``from_meta`` reads its fields)

    @classmethod
    def load_train(cls, cfg) -> list:
        """The training transitions of ``cfg`` (``for_pretrain`` trains the BPE on them)."""
        return load_transitions(cfg.train, cfg.mode, cfg.max_train)

    @classmethod
    def corpus(cls, train: list, cfg) -> list[str]:
        """The texts the BPE is trained on (:func:`corpus_texts`)."""
        return corpus_texts(train, cfg)

    @classmethod
    def from_meta(cls, meta: dict, directory, device="cpu", **kw) -> TextGameTask:
        tok_dir = Path(directory) / meta.get("tokenizer", TOKENIZER_DIR)
        settings = {k: meta[k] for k in cls.config_class().task_kwargs() if k in meta}
        return cls(load_text_tokenizer(tok_dir), **{**settings, **kw})

    @classmethod
    def for_pretrain(cls, cfg: TextGameTaskConfig, init=None, resume_dir=None, device="cpu") -> TextGameTask:
        """Resuming: the run's recorded task; ``init``: its tokenizer with ``cfg``'s data;
        ``cfg.tokenizer``: that tokenizer; otherwise a BPE trained now on the training texts."""
        from worldmodels.meta import WM_FILE, read_world_model_meta

        if resume_dir is not None and (Path(resume_dir) / WM_FILE).is_file():
            return cls.from_meta(read_world_model_meta(resume_dir), resume_dir)
        if init:
            return cls.from_meta(read_world_model_meta(init), init, **cfg.task_kwargs())
        if cfg.tokenizer:
            return cls(load_text_tokenizer(cfg.tokenizer), **cfg.task_kwargs())
        train = cls.load_train(cfg)
        tok = train_bpe_tokenizer(cls.corpus(train, cfg), cfg.bpe_vocab_size, split_words=cfg.bpe_split_words)
        task = cls(tok, **cfg.task_kwargs())
        task._transitions["train"] = train
        return task


def corpus_texts(transitions: list[Transition], cfg: TextGameTaskConfig) -> list[str]:
    """The distinct prompt pieces (shots and rules once) and answers of ``transitions``: what
    the BPE tokenizer is trained on."""
    rules = load_rules(cfg.rules) if cfg.rules else None
    shots = load_shots(cfg.examples, cfg.mode) if cfg.examples else None
    texts: dict[str, None] = {}
    for t in transitions:
        for part in prompt_parts(t, cfg.prompt_style, rules, shots, state_format=cfg.state_format):
            texts[part] = None
        texts[render_answer(make_diff(t.current, t.next, t.current_score, t.next_score), cfg.prompt_style)] = None
    return list(texts)

