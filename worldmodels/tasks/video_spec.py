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
    stride: step (in recorded frames) between clip starts when slicing episodes into clips.
    frame_skip: recorded frames per model step. With ``frame_skip = s`` a clip keeps every s-th
        frame and the model step between two kept frames carries all s actions executed in
        between (s x A action tokens, in execution order), so no action is lost. ``s = 6`` turns
        the built-in 20 Hz robot data into ~3.3 Hz steps, close to RT-1's 3 Hz, where frames
        differ by more than the tokenizer's own reconstruction error.
    """

    mode: Literal["single", "multi"] = "multi"
    context_frames: int = 1
    future_frames: int = 7
    stride: int = 1
    frame_skip: int = 1

    def __post_init__(self) -> None:
        if self.mode not in ("single", "multi"):
            raise ValueError(f"video layout mode must be 'single' or 'multi', got {self.mode!r}")
        if min(self.context_frames, self.future_frames, self.stride, self.frame_skip) < 1:
            raise ValueError(f"context_frames, future_frames, stride, frame_skip must be >= 1, "
                             f"got {self}")
        if self.mode == "single" and self.future_frames != 1:
            raise ValueError("single-step layout predicts exactly one frame: set future_frames=1")

    @property
    def clip_len(self) -> int:
        """Kept frames per clip (model steps + 1)."""
        return self.context_frames + self.future_frames

    @property
    def clip_span(self) -> int:
        """Recorded frames one clip covers: (clip_len - 1) * frame_skip + 1."""
        return (self.clip_len - 1) * self.frame_skip + 1
