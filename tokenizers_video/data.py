"""Dataset adapters for tokenizer training (no file I/O here; the CLI builds the base datasets).

    clips = ClipDataset(files, clip_len=9, require_actions=False)   # worldmodels.clips
    ds = ContextFutureDataset(clips, future_per_clip=2)             # item (1+2,3,H,W)
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class ContextFutureDataset(Dataset):
    """Clip windows -> [context frame, ``future_per_clip`` later frames of the same window].

    Item ``i`` of the base dataset (frames (T,3,H,W), or a dict with ``"frames"``) gives
    frame 0 plus ``future_per_clip`` distinct frames from 1..T-1, chosen by a generator seeded
    with ``i`` (deterministic, so training order and resume stay exact), in time order.
    """

    def __init__(self, clips: Dataset, future_per_clip: int):
        self.clips = clips
        self.future_per_clip = int(future_per_clip)
        if self.future_per_clip < 1:
            raise ValueError(f"future_per_clip must be >= 1, got {future_per_clip}")

    def __len__(self) -> int:
        return len(self.clips)

    def item_source(self, i: int) -> str:
        """Where item ``i`` comes from (the base dataset's ``item_source``, else its index)."""
        fn = getattr(self.clips, "item_source", None)
        return fn(i) if callable(fn) else f"clip {i}"

    def __getitem__(self, i: int) -> torch.Tensor:
        item = self.clips[i]
        frames = item["frames"] if isinstance(item, dict) else item  # (T,3,H,W)
        t = frames.shape[0]
        if t - 1 < self.future_per_clip:
            raise ValueError(f"clip of {t} frames cannot give {self.future_per_clip} future frames")
        pick = np.sort(np.random.default_rng(i).choice(np.arange(1, t), self.future_per_clip,
                                                       replace=False))
        return torch.cat([frames[:1], frames[torch.from_numpy(pick)]])  # (1+F,3,H,W)
