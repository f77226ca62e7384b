"""The ``task:`` config sections of video world models (torch-free, so ``--help`` stays fast).

``VideoTaskConfig`` builds a task for pretraining (``wm pretrain video``); ``VideoTaskOverrides``
is what RLVR may change of a trained model's recorded task (``wm rlvr video``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from worldmodels.episode_config import EpisodeConfig
from worldmodels.tasks.video_spec import VideoSpec


@dataclass
class VideoTaskConfig:
    """What a video world model is trained on.

    root: folder of episode .npz files (e.g. data/robot), or one .npz file.
    tokenizer: a trained video tokenizer directory (e.g. runs/tok_frame).
    layout: sequence layout (mode single|multi, context_frames, future_frames, stride, frame_skip).
        With --init the init's layout is used, except fields set here to other values than
        the defaults, which override it (e.g. frame_skip=6 to fine-tune a 20 Hz model at
        ~3.3 Hz); a note names each override.
    episodes: EpisodeConfig: key map, split and crop/resize of the episode files (null fields:
        what the tokenizer run recorded for the same folder, else the defaults).
    cache_dir: where pre-tokenised ids are cached (null: $WM_CACHE_DIR, else
        ~/.cache/worldmodels/tokens; never the data folder).
    action_ranges: with --init: "auto" keeps the init's action ranges when this data's actions
        have as many dimensions, else fits them to this data's training split; "init" always
        keeps them; "data" always fits them (a foreign robot's actions).
    init_new_tokenizer: with --init, accept a tokenizer other than the init's if its token
        layout is the same (vocabulary, context and per-frame token counts), e.g. the init's
        tokenizer fine-tuned with its context path frozen: the backbone then re-learns what the
        changed ids mean instead of starting from scratch. The new tokenizer is saved with the model.
    check_tokenizer_frame_skip: refuse a compressive tokenizer whose recorded training
        frame_skip differs from layout.frame_skip (it never saw futures that far apart and may
        erase moving parts; docs/tokenizers.md). false: train anyway.
    """

    task_name: ClassVar[str] = "video"

    root: str = "data/robot"
    tokenizer: str = "runs/tok_frame"
    layout: VideoSpec = field(default_factory=VideoSpec)
    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)
    cache_dir: str | None = None
    action_ranges: str = "auto"
    init_new_tokenizer: bool = False
    check_tokenizer_frame_skip: bool = True

    def __post_init__(self) -> None:
        if not self.root or not self.tokenizer:
            raise ValueError("task.root and task.tokenizer must be set")
        if self.action_ranges not in ("auto", "init", "data"):
            raise ValueError(f"task.action_ranges must be auto|init|data, got {self.action_ranges!r}")


@dataclass
class VideoTaskOverrides:
    """What RLVR may change of the world model's recorded video task.

    root: episode folder (null: the one recorded in the world model's worldmodel.json).
    episodes: EpisodeConfig: key map, split, crop/resize (null fields: the world model's record).
    cache_dir: where pre-tokenised ids are cached (null: $WM_CACHE_DIR, else
        ~/.cache/worldmodels/tokens; never the data folder).
    """

    task_name: ClassVar[str] = "video"

    root: str | None = None
    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)
    cache_dir: str | None = None

    def task_kwargs(self) -> dict:
        """Keyword overrides for ``VideoTask.from_meta`` (only what is set; the episodes
        section always, its null fields filled from the world model's record)."""
        out = {"episodes": self.episodes}
        if self.root:
            out["data_root"] = self.root
        if self.cache_dir:
            out["cache_dir"] = self.cache_dir
        return out
