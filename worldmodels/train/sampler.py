"""A batch sampler whose position can be saved and restored (exact resume), rank-aware.

Epoch ``e`` visits a permutation seeded by ``seed + e``; each global batch of
``batch_size * world_size`` indices is split into contiguous per-rank slices, so one process
with batch ``2b`` sees exactly what two processes with batch ``b`` see together.
The trainer calls ``consumed(1)`` after each batch it takes; ``state_dict`` then records
(epoch, position) and a restored sampler continues from the next unseen batch.
"""

from __future__ import annotations

import torch


class ResumableBatchSampler:
    def __init__(self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1):
        if n < 1:
            raise ValueError("the dataset is empty")
        self.n, self.bs, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.rank, self.world = rank, world_size
        self.epoch, self.position = 0, 0
        glob = batch_size * world_size
        # training drops the ragged last batch; evaluation (no shuffle) keeps it
        self.num_batches = n // glob if shuffle else -(-n // glob)
        if self.num_batches < 1:
            raise ValueError(f"dataset of {n} items is smaller than one global batch of {glob} "
                             f"(batch_size {batch_size} x {world_size} ranks)")

    def _order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))

    def __iter__(self):
        order, glob = self._order(), self.bs * self.world
        for b in range(self.position, self.num_batches):
            chunk = order[b * glob : (b + 1) * glob]
            mine = chunk[self.rank * self.bs : (self.rank + 1) * self.bs].tolist()
            if mine:
                yield mine

    def __len__(self) -> int:
        return self.num_batches - self.position

    def consumed(self, k: int = 1) -> None:
        self.position += k
        while self.position >= self.num_batches:
            self.position -= self.num_batches
            self.epoch += 1

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "n": self.n}

    def load_state_dict(self, s: dict) -> None:
        if s.get("n", self.n) != self.n:
            raise ValueError(f"resume: the dataset now has {self.n} items, the checkpoint saw {s['n']}")
        self.epoch, self.position = int(s["epoch"]), int(s["position"])
