"""The data side of :class:`~worldmodels.tasks.video.VideoTask`: episode files of a split (the
``episodes`` section's rule), clip datasets read through its key map (crop/resize to the
tokenizer's side), token ids cached outside the data folder, and the section as recorded.

A mixin: it reads the task's ``data_root``, ``episodes`` (an ``EpisodeConfig`` or None),
``keymap``, ``spec``, ``horizon``, ``tokenizer``, ``tokenizer_dir``, ``codec`` and ``cache_dir``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from worldmodels.tasks.video_data import TokenClipDataset

log = logging.getLogger(__name__)


class VideoDataMixin:
    """Datasets of a video task (see the module docstring)."""

    def episodes_record(self) -> dict:
        """The episodes section as used (key map spelled out, frame size), for outputs."""
        from worldmodels.episode_config import EpisodeConfig

        return (self.episodes or EpisodeConfig()).resolved(getattr(self.tokenizer, "image_size", None))

    def _split(self, split: str) -> tuple[list, slice | None]:
        """(files, steps) of ``split`` under the episodes section's rule (see EpisodeConfig.split)."""
        from worldmodels.episode_config import EpisodeConfig

        if self.data_root is None:
            raise ValueError("this video task has no episode folder (data_root): pass --data")
        if not Path(self.data_root).exists():
            raise FileNotFoundError(f"episode folder {self.data_root!r} not found: pass --data "
                                    f"(e.g. data/robot, built by `wm data build robot`)")
        return (self.episodes or EpisodeConfig()).split(self.data_root, split)

    def _files(self, split: str) -> list:
        return self._split(split)[0]

    def split_files(self, split: str) -> list[str]:
        """The episode files of ``split`` ("train" | "test"), relative to the data folder, sorted
        (what `wm eval video` records so `wm eval pool` can tell folds apart)."""
        import os

        return sorted(os.path.relpath(f, self.data_root) for f in self._files(split))

    def _token_dataset(self, clips, files, with_frames: bool, progress: bool, split: str
                       ) -> TokenClipDataset:
        """Token ids of ``clips``, cached under ``cache_dir`` (else the user cache directory,
        ``video_data.default_cache_dir``: never the data folder)."""
        import sys

        from worldmodels.tasks.video_data import default_cache_dir

        note = clips.preprocessing()
        if note and note not in self._notes:
            self._notes.add(note)
            print(f"episodes {self.data_root}: frames {note}", file=sys.stderr)
        cache = self.cache_dir if self.cache_dir is not None else default_cache_dir()
        ds = TokenClipDataset(clips, self.tokenizer, self.codec, tokenizer_dir=self.tokenizer_dir,
                              cache_dir=cache, files=files, with_frames=with_frames,
                              progress=progress)
        if split == "test":
            from worldmodels.episode_config import SMALL_TEST_SET

            if len(ds) < SMALL_TEST_SET:
                log.warning("only %d held-out clips in %s: their 95%% intervals are wide (fewer "
                            "than %d; hold out more with --test-every / --held-out)", len(ds),
                            self.data_root, SMALL_TEST_SET)
        return ds

    @property
    def _notes(self) -> set:
        if not hasattr(self, "_notes_seen"):
            self._notes_seen = set()
        return self._notes_seen

    def dataset(self, split: str, with_frames: bool = True, progress: bool = True) -> TokenClipDataset:
        """Clips of ``split`` every ``spec.stride`` recorded steps (frames and token ids)."""
        from worldmodels.clips import ClipDataset

        files, steps = self._split(split)
        clips = ClipDataset(files, self.spec.clip_len, keymap=self.keymap, stride=self.spec.stride,
                            frame_skip=self.spec.frame_skip, steps=steps)
        return self._token_dataset(clips, files, with_frames, progress, split)

    def lm_dataset(self, split: str, progress: bool = True) -> TokenClipDataset:
        """Token ids only (MLE needs no pixels)."""
        return self.dataset(split, with_frames=False, progress=progress)

    def eval_dataset(self, split: str = "test", progress: bool = True) -> TokenClipDataset:
        """Non-overlapping windows of ``context + horizon`` kept frames (``wm eval video``)."""
        from worldmodels.clips import ClipDataset

        files, steps = self._split(split)
        clips = ClipDataset.non_overlapping(files, self.spec.context_frames + self.horizon,
                                            self.spec.frame_skip, keymap=self.keymap, steps=steps)
        return self._token_dataset(clips, files, True, progress, split="eval")
