"""Shared fixtures of the T-BPTT tests: a small RWKV-7 with non-trivial weights and a task of
random token sequences (left-padded, a few unlabelled "prompt" tokens per row)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from rwkv7_toys import random_model  # noqa: E402

from worldmodels.tasks.base import IGNORE_INDEX  # noqa: E402

V = 50


def rwkv(seed: int = 0):
    """A 2-layer RWKV-7 (C=32, 2 heads, chunk 4) in training mode, float32."""
    return random_model(seed, C=32, H=2, L=2, vocab=V, D=8, F=64, chunk_size=4).train()


class SeqTask:
    """Duck-typed Task for ``train_mle``: items are random sequences of ``lengths`` tokens;
    ``collate`` left-pads them (mask 0, label IGNORE_INDEX) and leaves the first ``prompt``
    tokens of every row unlabelled."""

    vocab_size = V

    def __init__(self, n: int = 12, lengths=(17, 23, 30), prompt: int = 3, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.items = [{"ids": torch.randint(0, V, (lengths[i % len(lengths)],), generator=g)}
                      for i in range(n)]
        self.prompt = prompt

    def dataset(self, split: str) -> list[dict]:
        return self.items if split == "train" else self.items[:4]

    def collate(self, items: list[dict]) -> dict:
        T = max(len(it["ids"]) for it in items)
        ids = torch.zeros(len(items), T, dtype=torch.long)
        mask = torch.zeros(len(items), T, dtype=torch.long)
        labels = torch.full((len(items), T), IGNORE_INDEX, dtype=torch.long)
        for r, it in enumerate(items):
            n = len(it["ids"])
            ids[r, T - n:], mask[r, T - n:] = it["ids"], 1
            labels[r, T - n + self.prompt:] = it["ids"][self.prompt:]
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def lm_batch(self, batch: dict) -> dict:
        return batch

    def tokens_in(self, lm: dict) -> int:
        return int(lm["attention_mask"].sum())
