"""A toy text world-model task for the pipeline tests (not a test module).

The world: 1..3 objects, each in one of two states ("box closed, lamp off"); an action ("open
box", "turn on lamp", "wait") gives the next state, often unchanged. The model reads a chat
prompt and answers with the next state, ending at EOS::

    <|user|> state: box closed, lamp off. action: open box. <|eot|> <|assistant|>   (prompt)
    box open , lamp off </s>                                                          (answer)

The tokenizer is a real ``PreTrainedTokenizerFast``: a ``tokenizers`` WordLevel model trained in
the process on the world's words (nothing downloaded), with pad / EOS / end-of-turn special
tokens and a Jinja chat template. Prompts differ in length (left-padded in ``lm_batch`` and
``rollout_request``), answers too (3, 6 or 9 tokens with EOS). Metrics: ``exact_match`` and
``state_f1`` (F1 over "object value" pairs); baseline ``no_change`` (the current state).
Rewards for RLVR by dotted path: ``toy_text:state_f1_reward``, ``toy_text:exact_match_reward``.

Importing this module registers the task as ``toy_text`` (``worldmodels.tasks.TASKS``).
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from worldmodels.tasks import register_task
from worldmodels.tasks.base import IGNORE_INDEX, RolloutRequest, Segment, Task

OBJECTS = {"box": ("open", "closed"), "door": ("open", "closed"), "lamp": ("on", "off"),
           "tap": ("on", "off"), "radio": ("on", "off")}
PAD, EOS, EOT, UNK = "<pad>", "</s>", "<|eot|>", "<unk>"
SPECIAL = [PAD, EOS, EOT, "<|user|>", "<|assistant|>", UNK]  # ids 0..5, in this order
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|eot|> {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


# ----------------------------------------------------------------------------------- world
def actions_for(obj: str) -> list[str]:
    a, b = OBJECTS[obj]
    return [f"open {obj}", f"close {obj}"] if a == "open" else [f"turn on {obj}", f"turn off {obj}"]


def step(state: dict[str, str], action: str) -> dict[str, str]:
    """The next state: ``open/close X`` and ``turn on/off X`` set X; anything else changes nothing."""
    words, nxt = action.split(), dict(state)
    if len(words) >= 2 and words[-1] in nxt:
        value = {"open": "open", "close": "closed", "on": "on", "off": "off"}[words[-2]]
        nxt[words[-1]] = value
    return nxt


def state_text(state: dict[str, str]) -> str:
    return ", ".join(f"{o} {v}" for o, v in state.items())


def state_pairs(text: str) -> list[tuple[str, ...]]:
    """"box open, lamp off" -> [("box", "open"), ("lamp", "off")] (malformed parts kept as they are)."""
    return [tuple(p.split()) for p in text.split(",") if p.strip()]


def make_items(n: int, seed: int, max_objects: int = 3) -> list[dict]:
    """``n`` random (state, action, next) triples; about a fifth of the actions are "wait"."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        objs = sorted(rng.sample(sorted(OBJECTS), rng.randint(1, max_objects)), key=list(OBJECTS).index)
        state = {o: rng.choice(OBJECTS[o]) for o in objs}
        action = "wait" if rng.random() < 0.2 else rng.choice(actions_for(rng.choice(objs)))
        out.append({"state": state_text(state), "action": action, "next": state_text(step(state, action))})
    return out


def prompt_messages(state: str, action: str) -> list[dict]:
    return [{"role": "user", "content": f"state: {state}. action: {action}."}]


# ------------------------------------------------------------------------------- tokenizer
def build_tokenizer():
    """A ``PreTrainedTokenizerFast`` with a WordLevel model trained here on the world's words."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [f"state: {o} {v}, {o} {v}. action: {a}." for o in OBJECTS for v in OBJECTS[o]
              for a in [*actions_for(o), "wait"]]
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # words and punctuation apart
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                 additional_special_tokens=[EOT, "<|user|>", "<|assistant|>"])
    hf.chat_template = CHAT_TEMPLATE
    return hf


def detokenize(text: str) -> str:
    """WordLevel decodes with a space between every token: "box open , lamp off" -> "box open, lamp off"."""
    return " ".join(text.split()).replace(" ,", ",").replace(" .", ".")


# ---------------------------------------------------------------------------------- configs
@dataclass
class ToyTextConfig:
    """The toy text task (``task:`` section of a PretrainConfig).

    n_train / n_test: items per split. seed: data seed (the test split uses seed + 1).
    max_objects: most objects in a state (1..5). max_new_tokens: answer limit, EOS included.
    """

    task_name: ClassVar[str] = "toy_text"

    n_train: int = 256
    n_test: int = 64
    seed: int = 0
    max_objects: int = 3
    max_new_tokens: int = 10

    def __post_init__(self) -> None:
        if self.n_train < 1 or self.n_test < 1 or not 1 <= self.max_objects <= len(OBJECTS) \
                or self.max_new_tokens < 1:
            raise ValueError(f"task: n_train, n_test, max_new_tokens >= 1 and max_objects in "
                             f"1..{len(OBJECTS)} required, got {self}")

    def task_kwargs(self) -> dict:
        return {"n_train": self.n_train, "n_test": self.n_test, "seed": self.seed,
                "max_objects": self.max_objects, "max_new_tokens": self.max_new_tokens}


@dataclass
class ToyTextOverrides:
    """What RLVR may change of the recorded toy task. n_test: held-out items (null: recorded)."""

    task_name: ClassVar[str] = "toy_text"

    n_test: int | None = None

    def task_kwargs(self) -> dict:
        return {} if self.n_test is None else {"n_test": self.n_test}


# ------------------------------------------------------------------------------------- task
class ToyTextTask(Task):
    """Chat prompt -> next-state answer (see the module docstring). Predictions (``decode``):
    ``{"text": [str] (B), "stopped": (B,) bool, "lengths": (B,) int64}``."""

    name = "toy_text"
    higher_is_better = {"exact_match": True, "state_f1": True}

    def __init__(self, tokenizer, n_train: int = 256, n_test: int = 64, seed: int = 0,
                 max_objects: int = 3, max_new_tokens: int = 10):
        self.tokenizer = tokenizer
        self.n_train, self.n_test, self.seed = n_train, n_test, seed
        self.max_objects, self.max_new_tokens = max_objects, max_new_tokens
        self.pad_id, self.eos_id = tokenizer.pad_token_id, tokenizer.eos_token_id
        self.eot_id = tokenizer.convert_tokens_to_ids(EOT)
        if self.pad_id != 0 or self.eos_id is None or self.eot_id in (None, tokenizer.unk_token_id):
            raise ValueError(f"toy tokenizer: needs pad id 0, an EOS and {EOT!r}; got pad "
                             f"{self.pad_id}, eos {self.eos_id}, eot {self.eot_id}")
        self.vocab_size = len(tokenizer)
        self._data: dict[str, list[dict]] = {}

    # ----- data -----------------------------------------------------------------------------
    def encode_item(self, state: str, action: str, nxt: str | None = None) -> dict:
        """One item: texts, prompt ids (chat template) and answer ids (+ EOS) when ``nxt`` is given."""
        tok = self.tokenizer
        for words, what in ((state, "state"), (action, "action")):
            unknown = [w for w in words.replace(",", " ").split() if w not in tok.get_vocab()]
            if unknown:
                raise ValueError(f"{what} {words!r}: word(s) {unknown} not in the toy vocabulary")
        prompt = tok.apply_chat_template(prompt_messages(state, action), add_generation_prompt=True,
                                         tokenize=True, return_dict=True)["input_ids"]
        item = {"state": state, "action": action, "next": nxt, "prompt": torch.tensor(prompt)}
        if nxt is not None:
            ids = tok(nxt, add_special_tokens=False)["input_ids"] + [self.eos_id]
            item["answer"] = torch.tensor(ids)
        return item

    def dataset(self, split: str) -> list[dict]:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if split not in self._data:
            n, seed = (self.n_train, self.seed) if split == "train" else (self.n_test, self.seed + 1)
            self._data[split] = [self.encode_item(it["state"], it["action"], it["next"])
                                 for it in make_items(n, seed, self.max_objects)]
        return self._data[split]

    def collate(self, items: list[dict]) -> dict:
        """Texts and id lists as lists; ``prompt_ids`` (B,P) left-padded, ``prompt_mask`` (B,P) bool."""
        P = max(len(it["prompt"]) for it in items)
        ids = torch.full((len(items), P), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(items), P, dtype=torch.bool)
        for i, it in enumerate(items):
            n = len(it["prompt"])
            ids[i, P - n:], mask[i, P - n:] = it["prompt"], True
        batch = {k: [it[k] for it in items] for k in ("state", "action", "next", "prompt")}
        if all("answer" in it for it in items):
            batch["answer"] = [it["answer"] for it in items]
        return {**batch, "prompt_ids": ids, "prompt_mask": mask}

    def lm_batch(self, batch: dict) -> dict:
        """prompt + answer + EOS per row, left-padded; labels on the answer and EOS only."""
        rows = [torch.cat([p, a]) for p, a in zip(batch["prompt"], batch["answer"], strict=True)]
        L = max(len(r) for r in rows)
        ids = torch.full((len(rows), L), self.pad_id, dtype=torch.long)
        labels = torch.full_like(ids, IGNORE_INDEX)
        mask = torch.zeros_like(ids)
        for i, (r, a) in enumerate(zip(rows, batch["answer"], strict=True)):
            ids[i, L - len(r):], mask[i, L - len(r):] = r, 1
            labels[i, L - len(a):] = a
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    def max_length(self) -> int:
        return max(len(it["prompt"]) + len(it["answer"]) for s in ("train", "test") for it in self.dataset(s))

    # ----- rollouts -------------------------------------------------------------------------
    def segment(self) -> Segment:
        return Segment("generate", self.max_new_tokens, allowed=(1, self.vocab_size),  # never PAD
                       stop_ids=(self.eos_id, self.eot_id))

    def rollout_request(self, batch: dict) -> RolloutRequest:
        return RolloutRequest(batch["prompt_ids"], [self.segment()], batch["prompt_mask"], pad_id=self.pad_id)

    def decode(self, batch: dict, output) -> dict:
        """The text of each row up to (not including) its stop token."""
        ids, lengths, stopped = output.completion_ids.cpu(), output.lengths.cpu(), output.stopped.cpu()
        texts = []
        for r in range(ids.shape[0]):
            row = ids[r, : int(lengths[r])].tolist()
            if stopped[r]:
                row = row[:-1]
            texts.append(detokenize(self.tokenizer.decode(row, skip_special_tokens=True)))
        return {"text": texts, "stopped": stopped, "lengths": lengths}

    def reward_items(self, batch: dict) -> dict:
        return {"next": list(batch["next"]), "state": list(batch["state"])}

    def metrics(self, predictions: dict, items: dict) -> dict[str, torch.Tensor]:
        return {"exact_match": exact_match_reward(predictions, items),
                "state_f1": state_f1_reward(predictions, items)}

    def baselines(self, batch: dict) -> dict:
        return {"no_change": {"text": list(batch["state"])}}

    def predict_request(self, context: list[str], actions: list[str], n_samples: int = 1):
        """States ``context`` (B strings) and ``actions`` (B strings) -> batch + request."""
        if isinstance(context, str) or isinstance(actions, str) or len(context) != len(actions):
            raise ValueError(f"predict needs lists of states and actions of the same length, got "
                             f"{type(context).__name__} and {type(actions).__name__}")
        batch = self.collate([self.encode_item(s, a) for s, a in zip(context, actions, strict=True)])
        batch = self.repeat(batch, n_samples)
        return batch, self.rollout_request(batch)

    def save_examples(self, out_dir, batch, predictions, names):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, name in enumerate(names):
            p = out / f"{name}.txt"
            p.write_text(f"state: {batch['state'][i]}\naction: {batch['action'][i]}\n"
                         f"target: {batch['next'][i]}\npredicted: {predictions['text'][i]}\n")
            paths.append(str(p))
        return paths

    # ----- persistence ----------------------------------------------------------------------
    def to_meta(self) -> dict:
        return {"tokenizer": "tokenizer", "n_train": self.n_train, "n_test": self.n_test,
                "seed": self.seed, "max_objects": self.max_objects, "max_new_tokens": self.max_new_tokens}

    def save_assets(self, directory) -> None:
        d = Path(directory)
        if (d / "tokenizer").exists():
            return
        tmp = d / ".tmp-tokenizer"
        shutil.rmtree(tmp, ignore_errors=True)
        self.tokenizer.save_pretrained(tmp)
        os.replace(tmp, d / "tokenizer")

    @classmethod
    def from_meta(cls, meta: dict, directory, device="cpu", **kw) -> ToyTextTask:
        from transformers import PreTrainedTokenizerFast

        tok_dir = Path(directory) / meta.get("tokenizer", "tokenizer")
        if not (tok_dir / "tokenizer.json").is_file():
            raise FileNotFoundError(f"{tok_dir}: no tokenizer.json (the toy task's tokenizer)")
        args = {k: meta[k] for k in ("n_train", "n_test", "seed", "max_objects", "max_new_tokens")}
        return cls(PreTrainedTokenizerFast.from_pretrained(tok_dir), **{**args, **kw})

    @classmethod
    def for_pretrain(cls, cfg: ToyTextConfig, init=None, resume_dir=None, device="cpu") -> ToyTextTask:
        """Resuming: the run's recorded task; ``init``: its tokenizer with ``cfg``'s data;
        otherwise a tokenizer trained now."""
        from worldmodels.world_model import WM_FILE, read_world_model_meta

        if resume_dir is not None and (Path(resume_dir) / WM_FILE).is_file():
            return cls.from_meta(read_world_model_meta(resume_dir), resume_dir)
        if init:
            return cls.from_meta(read_world_model_meta(init), init, **cfg.task_kwargs())
        return cls(build_tokenizer(), **cfg.task_kwargs())


# ---------------------------------------------------------------------------------- rewards
def exact_match_reward(predictions: dict, items: dict, **ctx) -> torch.Tensor:
    """(B,) 1.0 where the predicted state has exactly the target's object-value pairs."""
    return torch.tensor([float(sorted(state_pairs(p)) == sorted(state_pairs(t)))
                         for p, t in zip(predictions["text"], items["next"], strict=True)])


def pair_f1(pred: str, target: str) -> float:
    """F1 of the predicted "object value" pairs against the target's (0 when either has none)."""
    p, t = set(state_pairs(pred)), set(state_pairs(target))
    hit = len(p & t)
    return 0.0 if not hit else 2 * hit / (len(p) + len(t))


def state_f1_reward(predictions: dict, items: dict, **ctx) -> torch.Tensor:
    """(B,) ``pair_f1`` of each prediction."""
    return torch.tensor([pair_f1(p, t) for p, t in zip(predictions["text"], items["next"], strict=True)])


# ------------------------------------------------------------------------- test run configs
PRETRAIN_STEPS = 200  # full fine-tuning: loss ~2.3 -> ~0.13 nats/token (test preset)


def pretrain_config(out, steps: int = PRETRAIN_STEPS, lora=None, seed: int = 0):
    """A ``PretrainConfig`` for the toy task: llama preset ``test``, batch 16, CPU, fp32."""
    from worldmodels.models.config import BackboneConfig, LoRAConfig
    from worldmodels.pipelines import PretrainConfig
    from worldmodels.train.mle_config import MLEConfig, OptimConfig

    return PretrainConfig(
        out=str(out), task=ToyTextConfig(),
        model=BackboneConfig(preset="test", max_positions=64, lora=lora or LoRAConfig()),
        train=MLEConfig(steps=steps, batch_size=16, optim=OptimConfig(lr=3e-3, warmup_steps=10),
                        eval_every=0, save_every=0, log_every=max(1, steps // 4), eval_batches=4,
                        device="cpu", tensorboard=False, precision="fp32", seed=seed))


register_task("toy_text", "toy_text:ToyTextTask")
