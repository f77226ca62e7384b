"""Fixed-length clips and single frames from episode files, as torch datasets.

    files = dataset_split("data/robot", "train")
    ds = ClipDataset(files, clip_len=8)          # item: frames (8,3,H,W) float in [0,1],
                                                 #       actions (8,A) float32 (if present)
    ds = ClipDataset(files, 8, frame_skip=6)     # every 6th frame; actions (8,6*A): the 6
                                                 #   actions executed after each kept frame
    frames = FrameDataset(files)                 # item: (3,H,W) float in [0,1]

Episodes are small (64x64), so they are loaded once and kept in memory as uint8. Before
loading, every file's headers are read (no pixels) and checked to agree: the same frame size,
channel count and action dimension (the most common among the files, or the ``frame_size`` /
``action_dim`` given), one action per frame. Any file that does not fit raises one
:class:`~worldmodels.episodes.EpisodeError` listing each such file with its found and expected
shape, instead of a shape error deep inside a batch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from worldmodels.episodes import Episode, EpisodeError, KeyMap, check_episodes, load_episode


def load_window(path: Path, keymap: KeyMap | None, steps: slice | None) -> Episode:
    """:func:`load_episode`, keeping only the recorded steps ``steps`` (None: all) of every
    per-step array (a temporal split: ``slice(None, -k)`` trains, ``slice(-k, None)`` tests)."""
    ep = load_episode(path, keymap)
    if steps is None:
        return ep
    cut = lambda a: None if a is None else a[steps]  # noqa: E731
    return dataclasses.replace(ep, image=ep.image[steps], action=cut(ep.action),
                               state=cut(ep.state), success=cut(ep.success))


def describe_preprocessing(shapes: list, keymap: KeyMap | None) -> str | None:
    """What loading does to the frames of files with header ``shapes`` (EpisodeShape list):
    e.g. "256x320 -> centre crop 256x256 (offset 0,32) -> resize 64x64 (...)"; None when the
    frames are used as stored."""
    from worldmodels.preprocess import describe

    km = keymap or KeyMap()
    if km.size is None:
        return None
    stored = sorted({(s.image_shape[2], s.image_shape[3]) if km.channels_first
                     else (s.image_shape[1], s.image_shape[2]) for s in shapes})
    lines = [describe(hw, km.size, km.crop) for hw in stored if hw != (km.size, km.size)]
    return "; ".join(lines) or None


def frames_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(T,H,W,3) uint8 -> (T,3,H,W) float32 in [0,1]."""
    return torch.from_numpy(image).permute(0, 3, 1, 2).float().div_(255.0)


def tensor_to_frames(frames: torch.Tensor) -> np.ndarray:
    """(...,3,H,W) float in [0,1] -> (...,H,W,3) uint8 (values are clamped first)."""
    x = frames.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


class ClipDataset(Dataset):
    """All windows of ``clip_len`` kept frames (starts every ``stride`` recorded steps).

    With ``frame_skip = s`` a window keeps frames ``start, start+s, …`` and the actions of kept
    frame i are the s actions ``action[start+i*s : start+(i+1)*s]`` flattened to (s*A,), so
    the step from one kept frame to the next carries every executed action. The last kept
    frame's group can run past the episode's end; it is edge-padded with the final action (no
    world-model layout uses the last frame's actions).
    """

    def __init__(self, files: list[Path], clip_len: int, keymap: KeyMap | None = None,
                 stride: int = 1, require_actions: bool = True, frame_skip: int = 1, *,
                 frame_size: tuple[int, int] | None = None, action_dim: int | None = None,
                 steps: slice | None = None):
        """``frame_size`` (H,W) / ``action_dim``: what every file must have (default: the most
        common among ``files``); a file that differs raises :class:`EpisodeError`. ``steps``:
        the slice of every episode's recorded steps used (None: all; see :func:`load_window`)."""
        if clip_len < 1:
            raise ValueError(f"clip_len must be >= 1, got {clip_len}")
        if stride < 1 or frame_skip < 1:
            raise ValueError(f"stride and frame_skip must be >= 1, got {stride}, {frame_skip}")
        self.clip_len, self.frame_skip, self.steps = clip_len, frame_skip, steps
        self.span = span = (clip_len - 1) * frame_skip + 1  # recorded frames one window covers
        self.keymap = keymap
        self.shapes = check_episodes(list(files), keymap, frame_size=frame_size, action_dim=action_dim)
        self.episodes: list[Episode] = [load_window(f, keymap, steps) for f in files]
        self.index: list[tuple[int, int]] = []
        for e, ep in enumerate(self.episodes):
            if require_actions and ep.action is None:
                key = (keymap or KeyMap()).action_key
                raise EpisodeError(f"{ep.path}: no actions (no array {key!r}), but a world model "
                                   f"needs them; pass --action-key NAME")
            for start in range(0, len(ep) - span + 1, stride):
                self.index.append((e, start))
        if not self.index:
            longest = max((len(ep) for ep in self.episodes), default=0)
            used = "" if steps is None else f" of the steps kept by the split ({steps})"
            raise EpisodeError(
                f"no clip of {clip_len} frames (frame_skip {frame_skip}: {span} recorded steps) "
                f"fits in {len(files)} episode(s) (longest has {longest} steps{used})"
            )

    @classmethod
    def non_overlapping(cls, files: list[Path], clip_len: int, frame_skip: int = 1,
                        **kwargs) -> ClipDataset:
        """Windows that share no recorded frame (held-out evaluation): the stride is the span
        of one window, ``(clip_len - 1) * frame_skip + 1``."""
        return cls(files, clip_len, stride=(clip_len - 1) * frame_skip + 1, frame_skip=frame_skip,
                   **kwargs)

    def preprocessing(self) -> str | None:
        """What loading did to the frames (crop / resize), None when used as stored."""
        return describe_preprocessing(self.shapes, self.keymap)

    def frame_steps(self, start: int) -> np.ndarray:
        """Recorded-frame indices of the window starting at ``start``: (clip_len,)."""
        return start + self.frame_skip * np.arange(self.clip_len)

    def window_actions(self, ep: Episode, start: int) -> np.ndarray:
        """(clip_len, frame_skip*A) float32: each kept frame's group of executed actions."""
        steps = start + np.arange(self.clip_len * self.frame_skip)
        acts = ep.action[np.minimum(steps, len(ep.action) - 1)]  # (clip_len*s, A), edge-padded
        return np.ascontiguousarray(acts.reshape(self.clip_len, -1), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.index)

    def item_source(self, i: int) -> str:
        """Where item ``i`` comes from: ``"<file> steps a..b"`` (for error messages)."""
        e, s = self.index[i]
        return f"{self.episodes[e].path} steps {s}..{s + self.span - 1}"

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        e, s = self.index[i]
        ep = self.episodes[e]
        item = {"frames": frames_to_tensor(ep.image[self.frame_steps(s)])}
        if ep.action is not None:
            item["actions"] = torch.from_numpy(self.window_actions(ep, s))
        return item

    def all_actions(self) -> np.ndarray:
        """Every action of every episode, (N,A): for per-dimension discretisation ranges."""
        acts = [ep.action for ep in self.episodes if ep.action is not None]
        if not acts:
            raise EpisodeError("no episode in this dataset has actions")
        return np.concatenate(acts, 0)


class FrameDataset(Dataset):
    """Every frame of every episode, as (3,H,W) float in [0,1] (for tokenizer training)."""

    def __init__(self, files: list[Path], keymap: KeyMap | None = None, *,
                 frame_size: tuple[int, int] | None = None, steps: slice | None = None):
        """``frame_size`` (H,W): what every file's frames must be (default: the most common
        among ``files``); a file that differs (or is unreadable) raises :class:`EpisodeError`.
        Actions are not used, so their dimension is not compared here. ``steps``: the slice of
        every episode's steps used (None: all)."""
        shape_only = dataclasses.replace(keymap or KeyMap(), action_key=None, require_actions=False)
        self.keymap = shape_only
        self.shapes = check_episodes(list(files), shape_only, frame_size=frame_size)
        self.episodes = [load_window(f, shape_only, steps) for f in files]
        self.index = [(e, t) for e, ep in enumerate(self.episodes) for t in range(len(ep))]
        if not self.index:
            raise EpisodeError("no frames found in the given episode files")

    def __len__(self) -> int:
        return len(self.index)

    def preprocessing(self) -> str | None:
        """What loading did to the frames (crop / resize), None when used as stored."""
        return describe_preprocessing(self.shapes, self.keymap)

    def item_source(self, i: int) -> str:
        """Where item ``i`` comes from: ``"<file> frame t"`` (for error messages)."""
        e, t = self.index[i]
        return f"{self.episodes[e].path} frame {t}"

    def __getitem__(self, i: int) -> torch.Tensor:
        e, t = self.index[i]
        return frames_to_tensor(self.episodes[e].image[t : t + 1])[0]
