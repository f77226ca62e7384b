"""Tiny stand-in video tokenizers with the API of ``tokenizers_video`` (encode = avg-pool + quantise), and
a synthetic episode folder, for world-model tests that must not depend on a trained tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

LEVELS = 3  # per channel -> 27 codes


def _quant(x):  # (...,3,h,w) in [0,1] -> (...,h,w) codes
    q = (x.clamp(0, 1) * (LEVELS - 1)).round().long()
    return q[..., 0, :, :] * LEVELS * LEVELS + q[..., 1, :, :] * LEVELS + q[..., 2, :, :]


def _dequant(ids):  # (...,h,w) -> (...,3,h,w)
    r, g, b = ids // (LEVELS * LEVELS), (ids // LEVELS) % LEVELS, ids % LEVELS
    return torch.stack([r, g, b], -3).float() / (LEVELS - 1)


class FakeFrameTokenizer(nn.Module):
    """image 16x16 -> 4x4 grid of 27 codes."""

    def __init__(self, image_size=16, grid=4):
        super().__init__()
        self.image_size, self.grid = image_size, (grid, grid)
        self.vocab_size, self.tokens_per_frame = LEVELS ** 3, grid * grid
        self.dummy = nn.Parameter(torch.zeros(1))

    def encode(self, frames):  # (B,T,3,H,W) -> (B,T,h,w)
        B, T = frames.shape[:2]
        x = nn.functional.adaptive_avg_pool2d(frames.reshape(B * T, *frames.shape[2:]), self.grid)
        return _quant(x).reshape(B, T, *self.grid)

    def decode(self, ids):  # (B,T,h,w) -> (B,T,3,H,W)
        x = _dequant(ids)
        return x.repeat_interleave(self.image_size // self.grid[0], -2).repeat_interleave(
            self.image_size // self.grid[1], -1)

    def save_pretrained(self, d):
        Path(d).mkdir(parents=True, exist_ok=True)
        Path(d, "config.json").write_text(json.dumps({"kind": "fake", "class": "wm_fakes:FakeFrameTokenizer", "image_size": self.image_size,
                                                      "grid": self.grid[0]}))

    @classmethod
    def from_pretrained(cls, d, device="cpu"):
        cfg = json.loads(Path(d, "config.json").read_text())
        return cls(cfg["image_size"], cfg["grid"])


class FakeCompressiveTokenizer(nn.Module):
    """context 16x16 -> 4x4 codes (16 tokens); each future frame -> 2x2 codes (4 tokens)."""

    def __init__(self):
        super().__init__()
        self.vocab_size, self.context_tokens, self.tokens_per_future_frame = LEVELS ** 3, 16, 4
        self.image_size = 16
        self.dummy = nn.Parameter(torch.zeros(1))

    def encode(self, context, future):
        B, T = future.shape[:2]
        ctx = _quant(nn.functional.adaptive_avg_pool2d(context, 4)).reshape(B, -1)
        fut = _quant(nn.functional.adaptive_avg_pool2d(future.reshape(B * T, 3, 16, 16), 2))
        return ctx, fut.reshape(B, T, 4)

    def decode(self, ctx_ids, fut_ids):
        B, T = fut_ids.shape[:2]
        ctx = _dequant(ctx_ids.reshape(B, 4, 4)).repeat_interleave(4, -2).repeat_interleave(4, -1)
        fut = _dequant(fut_ids.reshape(B, T, 2, 2)).repeat_interleave(8, -2).repeat_interleave(8, -1)
        return ctx, fut

    def save_pretrained(self, d):
        Path(d).mkdir(parents=True, exist_ok=True)
        Path(d, "config.json").write_text(json.dumps({"kind": "fake_compressive", "class": "wm_fakes:FakeCompressiveTokenizer"}))

    @classmethod
    def from_pretrained(cls, d, device="cpu"):
        return cls()


def make_episodes(root: Path, n=6, T=10, size=16, A=2, seed=0, test_every=3) -> Path:
    """Synthetic episodes: a bright square moved by the (2-D) action, on a dark background."""
    from worldmodels.episodes import save_episode

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for e in range(n):
        pos = rng.integers(2, size - 6, 2).astype(float)
        imgs, acts = [], []
        for _ in range(T):
            img = np.full((size, size, 3), 30, np.uint8)
            y, x = pos.astype(int)
            img[y : y + 4, x : x + 4] = (230, 200, 40)
            a = rng.uniform(-1, 1, A).astype(np.float32)
            imgs.append(img)
            acts.append(a)
            pos = np.clip(pos + 2 * a[:2], 0, size - 4)
        save_episode(root / f"ep_{e:03d}.npz", np.stack(imgs), np.stack(acts))
    (root / "meta.json").write_text(json.dumps({"test_every": test_every}))
    return root
