"""Small stand-ins shared by the GRPO knob / LoRA / checkpointing tests (not a test module).

``StopTask``: left-padded prompts of 2..5 tokens, one generate segment of at most 6 tokens that
ends at EOS or EOT, so a rollout batch mixes prompt lengths, early stops and truncated rows.
``LMTask``: fixed-length random sequences for MLE.
"""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from worldmodels.tasks.base import RolloutRequest, Segment, Task

V = 24
PAD, EOS, EOT = 0, 1, 2
ANSWER = 6  # most tokens an answer may take
ALLOWED = (1, V)


def tiny_model(seed: int = 0, vocab: int = V) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=False)
    return LlamaForCausalLM(cfg)


class StopTask(Task):
    """Prompt: 2..5 tokens in [3, 12), left-padded with PAD. Answer: up to ANSWER tokens in
    [1, V), ending at EOS or EOT. Target token: 3 + (first prompt token % 8)."""

    name = "stop_toy"
    vocab_size = V
    pad_id = PAD

    def __init__(self, n: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        lens = torch.randint(2, 6, (n,), generator=g)
        self.prompts = [torch.randint(3, 12, (int(k),), generator=g) for k in lens]

    def dataset(self, split):
        return [{"prompt": p, "target": 3 + int(p[0]) % 8} for p in self.prompts]

    def collate(self, items):
        P = max(len(it["prompt"]) for it in items)
        ids = torch.full((len(items), P), PAD, dtype=torch.long)
        mask = torch.zeros(len(items), P, dtype=torch.bool)
        for i, it in enumerate(items):
            n = len(it["prompt"])
            ids[i, P - n:], mask[i, P - n:] = it["prompt"], True
        return {"prompt_ids": ids, "prompt_mask": mask,
                "target": torch.tensor([it["target"] for it in items])}

    def rollout_request(self, batch):
        return RolloutRequest(batch["prompt_ids"], [self.segment()], batch["prompt_mask"], pad_id=PAD)

    @staticmethod
    def segment(length: int = ANSWER) -> Segment:
        return Segment("generate", length, allowed=ALLOWED, stop_ids=(EOS, EOT))

    def decode(self, batch, output):
        return {"ids": output.completion_ids, "lengths": output.lengths}

    def reward_items(self, batch):
        return {"target": batch["target"]}


class StopReward:
    """Hits of the target token minus a length penalty: varied rewards within a group."""

    def __call__(self, predictions, items):
        ids, lengths = predictions["ids"], predictions["lengths"]
        hits = (ids == items["target"].to(ids.device)[:, None]).float().sum(1)
        total = hits - 0.1 * lengths.float()
        return total, {"hits": hits}


class LMTask(Task):
    """MLE: 32 random sequences of 10 tokens; every token after the first is on the loss."""

    name = "lm_toy"
    vocab_size = V

    def __init__(self, n: int = 32, seed: int = 0):
        self.seqs = torch.randint(3, V, (n, 10), generator=torch.Generator().manual_seed(seed))

    def dataset(self, split):
        return [{"ids": s} for s in self.seqs]

    def lm_batch(self, batch):
        return {"input_ids": batch["ids"], "labels": batch["ids"].clone()}
