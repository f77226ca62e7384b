"""Action-conditioned video as token sequences (RLVR-World / iVideoGPT formulation).

Vocabulary (one shared block of 256 action ids, as RLVR-World; the dimension an action token
belongs to is given by its position)::

    [0, V)            visual tokens (V = tokenizer.vocab_size)
    [V, V+256)        action bins;   BOS = V+256, EOS = V+257, PAD = V+258

Layouts (N = tokens per frame, A = action dims, d_i = tokens of clip frame i-1; with
``frame_skip = s`` every action slot ``a_i`` holds the s actions executed between two kept
frames, s*A tokens):
- ``single`` (k context frames, clip of k+1):  ``[f0 a0]…[f_{k-1} a_{k-1}] BOS f_k EOS``;
  labels on BOS, f_k, EOS only.
- ``multi`` (clip of T frames, c given):  ``[ctx] [d1 a1]…[d_{T-1} a_{T-1}] d_T``; ``ctx`` = the
  compressive tokenizer's context tokens (absent with a per-frame tokenizer); d1..d_c given,
  labels on d_{c+1}..d_T; actions never in the loss. The paper's trailing action a_T is dropped
  (nothing follows it). Rollouts "interact": generate a frame, force its action, continue.

    task = VideoTask(tokenizer, VideoSpec(mode="multi", context_frames=1, future_frames=7), codec)
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor

from worldmodels.tasks.base import IGNORE_INDEX, RolloutRequest, Segment, Task
from worldmodels.tasks.video_data import ACTION_BINS, ActionCodec, TokenClipDataset
from worldmodels.tasks.video_spec import VideoSpec


class VideoTask(Task):
    """Frames + actions <-> token sequences, rollout requests, decoding through the tokenizer."""

    name = "video"

    def __init__(self, tokenizer, spec: VideoSpec, codec: ActionCodec, *, data_root: str | None = None,
                 tokenizer_dir: str | None = None, cache_dir: str | None = None, keymap=None):
        self.tokenizer, self.spec, self.codec = tokenizer, spec, codec
        self.data_root, self.tokenizer_dir, self.cache_dir, self.keymap = (
            data_root, tokenizer_dir, cache_dir, keymap)
        self.compressive = hasattr(tokenizer, "context_tokens")
        if spec.mode == "single" and self.compressive:
            raise ValueError("the single-step layout needs a per-frame tokenizer; use mode='multi' "
                             "with a compressive tokenizer")
        self.visual_vocab = int(tokenizer.vocab_size)
        self.action_offset = self.visual_vocab
        self.bos_id = self.visual_vocab + ACTION_BINS
        self.eos_id, self.pad_id = self.bos_id + 1, self.bos_id + 2
        self.vocab_size = self.bos_id + 3
        self.frame_tokens = int(tokenizer.tokens_per_future_frame if self.compressive
                                else tokenizer.tokens_per_frame)
        self.context_tokens = int(tokenizer.context_tokens) if self.compressive else 0
        self.action_dim = codec.dim  # A: dimensions of one environment action
        self.frame_skip = spec.frame_skip
        self.action_tokens = spec.frame_skip * codec.dim  # tokens in one action slot

    # ----- layout ---------------------------------------------------------------------------
    def layout(self) -> dict:
        """Everything needed to rebuild this task's sequences (goes into ``worldmodel.json``)."""
        return {"spec": asdict(self.spec), "actions": self.codec.to_json(),
                "visual_vocab": self.visual_vocab, "action_offset": self.action_offset,
                "action_bins": ACTION_BINS, "bos_id": self.bos_id, "eos_id": self.eos_id,
                "pad_id": self.pad_id, "vocab_size": self.vocab_size,
                "frame_tokens": self.frame_tokens, "context_tokens": self.context_tokens}

    def seq_len(self) -> int:
        s, N, A = self.spec, self.frame_tokens, self.action_tokens
        if s.mode == "single":
            return s.context_frames * (N + A) + N + 2
        T = s.clip_len
        return self.context_tokens + T * N + (T - 1) * A

    def _interleave(self, frame_ids: Tensor, action_ids: Tensor, n_actions: int) -> list[Tensor]:
        """[d_0, a_0, d_1, a_1, ...]: frames (B,T,N), actions (B,>=n_actions,s*A) bins."""
        parts = []
        for t in range(frame_ids.shape[1]):
            parts.append(frame_ids[:, t])
            if t < n_actions:
                parts.append(action_ids[:, t] + self.action_offset)
        return parts

    def build_sequence(self, frame_ids: Tensor, action_ids: Tensor, ctx_ids: Tensor | None = None
                       ) -> tuple[Tensor, Tensor]:
        """frame_ids (B,T,N), action_ids (B,T,s*A) bins [, ctx_ids (B,Nc)] -> input_ids, labels (B,L)."""
        s, B = self.spec, frame_ids.shape[0]
        if frame_ids.shape[1] < s.clip_len:
            raise ValueError(f"need {s.clip_len} frames per clip, got {frame_ids.shape[1]}")
        frame_ids = frame_ids[:, : s.clip_len].long()
        ign = lambda x: torch.full_like(x, IGNORE_INDEX)  # noqa: E731
        if s.mode == "single":
            k = s.context_frames
            bos = frame_ids.new_full((B, 1), self.bos_id)
            eos = frame_ids.new_full((B, 1), self.eos_id)
            prefix = torch.cat(self._interleave(frame_ids[:, :k], action_ids, k), 1)
            target = torch.cat([bos, frame_ids[:, k], eos], 1)
            return torch.cat([prefix, target], 1), torch.cat([ign(prefix), target], 1)
        ids, labels = [], []
        if self.compressive:
            if ctx_ids is None:
                raise ValueError("a compressive tokenizer's sequences need ctx_ids")
            ids.append(ctx_ids.long())
            labels.append(ign(ctx_ids.long()))
        T, c = s.clip_len, s.context_frames
        for t in range(T):
            ids.append(frame_ids[:, t])
            labels.append(frame_ids[:, t] if t >= c else ign(frame_ids[:, t]))
            if t < T - 1:
                a = action_ids[:, t].long() + self.action_offset
                ids.append(a)
                labels.append(ign(a))
        return torch.cat(ids, 1), torch.cat(labels, 1)

    def lm_batch(self, batch: dict) -> dict:
        input_ids, labels = self.build_sequence(batch["frame_ids"], batch["action_ids"],
                                                batch.get("ctx_ids"))
        return {"input_ids": input_ids, "labels": labels}

    # ----- rollouts -------------------------------------------------------------------------
    def prompt_and_segments(self, frame_ids: Tensor, action_ids: Tensor, n_future: int,
                            ctx_ids: Tensor | None = None) -> tuple[Tensor, list[Segment]]:
        """Given frames (B,c,N) and actions (B,c-1+n_future,s*A) bins: prompt (B,P) + segments that
        generate ``n_future`` frames (multi: forcing the action after each generated frame)."""
        c = frame_ids.shape[1]
        vis = (0, self.visual_vocab)
        if self.spec.mode == "single":
            if n_future != 1:
                raise ValueError("single-step layout generates one frame per rollout")
            parts = self._interleave(frame_ids, action_ids, c)
            parts.append(frame_ids.new_full((frame_ids.shape[0], 1), self.bos_id))
            return torch.cat(parts, 1).long(), [Segment("generate", self.frame_tokens, allowed=vis)]
        parts = ([ctx_ids.long()] if self.compressive else []) + self._interleave(frame_ids, action_ids, c)
        segs = []
        for i in range(n_future):
            segs.append(Segment("generate", self.frame_tokens, allowed=vis))
            if i < n_future - 1:
                segs.append(Segment("force", self.action_tokens,
                                    tokens=action_ids[:, c + i].long() + self.action_offset))
        return torch.cat(parts, 1).long(), segs

    def rollout_request(self, batch: dict) -> RolloutRequest:
        c = self.spec.context_frames
        prompt, segs = self.prompt_and_segments(batch["frame_ids"][:, :c], batch["action_ids"],
                                                self.spec.future_frames, batch.get("ctx_ids"))
        return RolloutRequest(prompt, segs, pad_id=self.pad_id)

    def generated_frame_ids(self, completion_ids: Tensor, n_future: int) -> Tensor:
        """completion (B,L) -> generated frame ids (B,n_future,N), clamped to the visual range."""
        N = self.frame_tokens
        step = N + (self.action_tokens if self.spec.mode == "multi" else 0)
        frames = [completion_ids[:, i * step : i * step + N] for i in range(n_future)]
        return torch.stack(frames, 1).clamp(0, self.visual_vocab - 1)

    def decode_ids(self, frame_ids: Tensor, ctx_ids: Tensor | None = None) -> Tensor:
        """(B,T,N) ids -> (B,T,3,H,W) frames in [0,1] through the tokenizer."""
        dev = next(iter(self.tokenizer.parameters()), torch.empty(0)).device
        with torch.no_grad():
            if self.compressive:
                _, fut = self.tokenizer.decode(ctx_ids.to(dev), frame_ids.to(dev))
                return fut.float().clamp(0, 1)
            B, T, N = frame_ids.shape
            h, w = self.tokenizer.grid
            return self.tokenizer.decode(frame_ids.reshape(B, T, h, w).to(dev)).float().clamp(0, 1)

    def decode(self, batch: dict, output) -> Tensor:
        """A ``RolloutOutput`` -> predicted frames (B,T,3,H,W) in [0,1]."""
        ids = self.generated_frame_ids(output.completion_ids, self.spec.future_frames)
        return self.decode_ids(ids, batch.get("ctx_ids"))

    def reward_items(self, batch: dict) -> dict:
        c = self.spec.context_frames
        return {"target_frames": batch["frames"][:, c : c + self.spec.future_frames]}

    # ----- data -----------------------------------------------------------------------------
    def dataset(self, split: str, with_frames: bool = True, progress: bool = True) -> TokenClipDataset:
        from worldmodels.clips import ClipDataset
        from worldmodels.episodes import dataset_split

        if self.data_root is None:
            raise ValueError("VideoTask.dataset needs data_root (a folder of episode .npz files)")
        files = dataset_split(self.data_root, split)
        clips = ClipDataset(files, self.spec.clip_len, keymap=self.keymap, stride=self.spec.stride,
                            frame_skip=self.spec.frame_skip)
        cache = self.cache_dir if self.cache_dir is not None else Path(self.data_root) / ".token_cache"
        return TokenClipDataset(clips, self.tokenizer, self.codec, tokenizer_dir=self.tokenizer_dir,
                                cache_dir=cache, files=files, with_frames=with_frames,
                                progress=progress)

__all__ = ["ActionCodec", "VideoSpec", "VideoTask"]
