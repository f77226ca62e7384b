"""Shared pieces of the MLE trainer tests: a video task on fake episodes (fake frame tokenizer,
2-dim actions), the short-run ``MLEConfig`` and the seeded ``test`` backbone."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from wm_fakes import FakeFrameTokenizer, make_episodes  # noqa: E402

from worldmodels.models import build_backbone  # noqa: E402
from worldmodels.tasks.video import VideoSpec, VideoTask  # noqa: E402
from worldmodels.tasks.video_data import ActionCodec  # noqa: E402
from worldmodels.train.mle import MLEConfig, OptimConfig  # noqa: E402


def video_task(root: Path, spec: VideoSpec) -> VideoTask:
    """A video task over 6 fake 8-step episodes written under ``root`` (tokens cached there)."""
    data = make_episodes(root, n=6, T=8)
    return VideoTask(FakeFrameTokenizer(), spec, ActionCodec([-1, -1], [1, 1]),
                     data_root=str(data), cache_dir=str(data / ".cache"))


def cfg(steps, **kw) -> MLEConfig:
    """A short CPU run: batch 4 x 2 micro-batches, eval and save every 3 steps, log every step."""
    base = dict(steps=steps, batch_size=4, grad_accum=2, eval_every=3, eval_batches=2,
                save_every=3, log_every=1, seed=0, device="cpu",
                optim=OptimConfig(lr=3e-3, warmup_steps=2, schedule="cosine"))
    base.update(kw)
    return MLEConfig(**base)


def model_for(task):
    """The 2-layer ``test`` backbone for ``task``'s vocabulary, seeded (same weights each call)."""
    torch.manual_seed(0)
    return build_backbone("test", task.vocab_size, 256)
