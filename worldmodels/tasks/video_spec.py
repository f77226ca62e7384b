"""The video sequence layout (torch-free, so configs can import it cheaply)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class VideoSpec:
    """Sequence layout of a video world model (saved in ``worldmodel.json``).

    mode: "single" (k frames -> next frame, BOS/EOS) or "multi" (interleaved, interact rollouts).
    context_frames: frames given as context (single: k; multi: c >= 1).
    future_frames: frames predicted (single: must be 1; multi: >= 1).
    stride: step between clip starts when slicing episodes into training clips.
    """

    mode: Literal["single", "multi"] = "multi"
    context_frames: int = 1
    future_frames: int = 7
    stride: int = 1

    def __post_init__(self) -> None:
        if self.mode not in ("single", "multi"):
            raise ValueError(f"video layout mode must be 'single' or 'multi', got {self.mode!r}")
        if self.context_frames < 1 or self.future_frames < 1 or self.stride < 1:
            raise ValueError(f"context_frames, future_frames, stride must be >= 1, got {self}")
        if self.mode == "single" and self.future_frames != 1:
            raise ValueError("single-step layout predicts exactly one frame: set future_frames=1")

    @property
    def clip_len(self) -> int:
        return self.context_frames + self.future_frames
