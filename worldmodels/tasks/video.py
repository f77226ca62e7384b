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

import os
import shutil
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor

from worldmodels.tasks.base import IGNORE_INDEX, RolloutRequest, Segment, Task
from worldmodels.tasks.video_data import (
    ACTION_BINS,
    ActionCodec,
    encode_compressive,
    encode_frames,
    load_video_tokenizer,
)
from worldmodels.tasks.video_datasets import VideoDataMixin
from worldmodels.tasks.video_metrics import VideoMetricsMixin
from worldmodels.tasks.video_spec import VideoSpec


class VideoTask(VideoDataMixin, VideoMetricsMixin, Task):
    """Frames + actions <-> token sequences, rollout requests, decoding through the tokenizer.

    Predictions (``decode``) are ``{"frames": (B,T,3,H,W) in [0,1], "ids": (B,T,N)}``; frame
    rewards read ``frames``. Metrics, baselines and reports: ``tasks/video_metrics.py``; the
    episode datasets (split, key map, crop/resize, token cache): ``tasks/video_datasets.py``.
    """

    name = "video"

    def __init__(self, tokenizer, spec: VideoSpec, codec: ActionCodec, *, data_root: str | None = None,
                 tokenizer_dir: str | None = None, cache_dir: str | None = None, keymap=None,
                 horizon: int | None = None, episodes=None, pad_id: int | None = None):
        self.tokenizer, self.spec, self.codec = tokenizer, spec, codec
        # frames predicted when evaluating (a single-step model slides over them); default: the layout's
        self.horizon = int(horizon or spec.future_frames)
        self.data_root, self.tokenizer_dir, self.cache_dir = data_root, tokenizer_dir, cache_dir
        # the episodes section (key map, split, crop/resize to the tokenizer's side); None: the
        # rlvr key map and frames as stored (library use)
        self.episodes = episodes
        self.keymap = keymap if keymap is not None or episodes is None else episodes.keymap(
            getattr(tokenizer, "image_size", None))
        self.compressive = hasattr(tokenizer, "context_tokens")
        if spec.mode == "single" and self.compressive:
            raise ValueError("the single-step layout needs a per-frame tokenizer; use mode='multi' "
                             "with a compressive tokenizer")
        self.visual_vocab = int(tokenizer.vocab_size)
        self.action_offset = self.visual_vocab
        self.bos_id = self.visual_vocab + ACTION_BINS
        self.eos_id, self.pad_id = self.bos_id + 1, self.bos_id + 2
        self.vocab_size = self.bos_id + 3
        if pad_id is not None and pad_id != self.pad_id:  # a vocabulary without PAD (RLVR-World's)
            if not 0 <= pad_id <= self.eos_id:
                raise ValueError(f"pad_id={pad_id}: expected an id in [0, {self.eos_id}] (e.g. EOS "
                                 f"{self.eos_id}) or {self.pad_id} (an own PAD token)")
            self.pad_id, self.vocab_size = int(pad_id), self.eos_id + 1
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

    def noise_inputs(self, lm: dict, p: float, generator: torch.Generator) -> dict:
        """Visual-token inputs (ids below ``visual_vocab``: context and teacher-forced frames,
        and a compressive tokenizer's context tokens) replaced with probability ``p`` by uniform
        random visual ids; action and BOS/EOS tokens and all labels untouched. CPU tensors."""
        ids = lm["input_ids"]
        hit = (ids < self.visual_vocab) & (torch.rand(ids.shape, generator=generator) < p)
        noisy = ids.clone()
        noisy[hit] = torch.randint(0, self.visual_vocab, (int(hit.sum()),), generator=generator)
        return {**lm, "input_ids": noisy}

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

    def decode(self, batch: dict, output) -> dict:
        """A ``RolloutOutput`` -> {"frames": (B,T,3,H,W) in [0,1], "ids": (B,T,N)}."""
        ids = self.generated_frame_ids(output.completion_ids, self.spec.future_frames)
        return {"frames": self.decode_ids(ids, batch.get("ctx_ids")), "ids": ids}

    # ----- consumers: predict from raw frames and actions -------------------------------------
    def encode_context(self, context_frames: Tensor, actions: Tensor) -> dict:
        """(B,k,3,H,W) frames in [0,1] + (B,(k-1+N)*s,A) raw actions -> a token batch
        {"frame_ids" (B,k,N), "action_ids" (B,k-1+N,s*A)[, "ctx_ids" (B,Nc)]} (s = frame_skip)."""
        if context_frames.dim() != 5:
            raise ValueError(f"context_frames must be (B,k,3,H,W), got {tuple(context_frames.shape)}")
        B, k = context_frames.shape[:2]
        s = self.frame_skip
        if actions.dim() != 3 or actions.shape[1] % s or actions.shape[1] // s - (k - 1) < 1:
            raise ValueError(f"actions must be (B, (k-1+N)*{s}, A) with N >= 1 (k={k} context "
                             f"frames, frame_skip={s}), got {tuple(actions.shape)}")
        size = getattr(self.tokenizer, "image_size", context_frames.shape[-1])
        if tuple(context_frames.shape[-2:]) != (size, size):
            raise ValueError(f"frames are {tuple(context_frames.shape[-2:])}, the tokenizer expects "
                             f"{size}x{size}")
        frames = context_frames.float()
        slots = actions.float().cpu().reshape(B, -1, self.action_tokens)  # (B,k-1+N,s*A)
        batch = {"action_ids": self.codec.encode_groups(slots)}
        if self.compressive:
            batch["ctx_ids"], batch["frame_ids"] = encode_compressive(self.tokenizer, frames)
        else:
            batch["frame_ids"] = encode_frames(self.tokenizer, frames)
        return batch

    def predict_request(self, context: Tensor, actions: Tensor, n_samples: int = 1) -> tuple[dict, RolloutRequest]:
        """Token batch (each input ``n_samples`` times, item-major) + the request that generates
        all N future frames (multi-step layout; see :meth:`predict` for single-step models)."""
        batch = self.repeat(self.encode_context(context, actions), n_samples)
        n_future = batch["action_ids"].shape[1] - batch["frame_ids"].shape[1] + 1
        prompt, segs = self.prompt_and_segments(batch["frame_ids"], batch["action_ids"], n_future,
                                                batch.get("ctx_ids"))
        batch["n_future"] = n_future
        return batch, RolloutRequest(prompt, segs, pad_id=self.pad_id)

    def predict_ids(self, generate, frame_ids: Tensor, action_ids: Tensor, n_future: int,
                    ctx_ids: Tensor | None = None) -> Tensor:
        """Token-level prediction: context frame ids (B,k,N) + action bins (B,k-1+n_future,s*A)
        -> generated frame ids (B, n_future, N). A single-step model slides its k-frame window
        one generated frame at a time; ``generate(request) -> RolloutOutput``."""
        if self.spec.mode == "multi":
            prompt, segs = self.prompt_and_segments(frame_ids, action_ids, n_future, ctx_ids)
            out = generate(RolloutRequest(prompt, segs, pad_id=self.pad_id))
            return self.generated_frame_ids(out.completion_ids, n_future).cpu()
        k = self.spec.context_frames
        if frame_ids.shape[1] < k:
            raise ValueError(f"this single-step model needs {k} context frames, got {frame_ids.shape[1]}")
        c0 = frame_ids.shape[1]
        frames, preds = frame_ids[:, -k:], []
        for i in range(n_future):
            a = action_ids[:, c0 - k + i : c0 + i]  # actions of the k frames in the window
            prompt, segs = self.prompt_and_segments(frames, a, 1)
            out = generate(RolloutRequest(prompt, segs, pad_id=self.pad_id))
            new = self.generated_frame_ids(out.completion_ids, 1).cpu()
            preds.append(new)
            frames = torch.cat([frames[:, 1:], new], 1)
        return torch.cat(preds, 1)

    def predict(self, generate, context: Tensor, actions: Tensor, n_samples: int = 1) -> Tensor:
        """(B,k,3,H,W) frames + (B,(k-1+N)*s,A) actions -> (B,n_samples,N,3,H,W) predicted
        frames in [0,1] (s = ``frame_skip``; samples of one input adjacent)."""
        B = context.shape[0]
        batch = self.repeat(self.encode_context(context, actions), n_samples)
        n_future = batch["action_ids"].shape[1] - batch["frame_ids"].shape[1] + 1
        ids = self.predict_ids(generate, batch["frame_ids"], batch["action_ids"], n_future,
                               batch.get("ctx_ids"))
        out = self.decode_ids(ids, batch.get("ctx_ids"))  # (B*n,N,3,H,W)
        return out.reshape(B, n_samples, *out.shape[1:]).cpu()

    def sample_predictions(self, generate, batch: dict) -> dict:
        """Predictions for a dataset batch (evaluation): ``horizon`` frames after the
        ground-truth context, through :meth:`predict_ids` (so single-step models slide)."""
        c, F = self.spec.context_frames, self.horizon
        ids = self.predict_ids(generate, batch["frame_ids"][:, :c], batch["action_ids"], F,
                               batch.get("ctx_ids"))
        return {"frames": self.decode_ids(ids, batch.get("ctx_ids")), "ids": ids}

    # ----- persistence ------------------------------------------------------------------------
    def to_meta(self) -> dict:
        """``worldmodel.json`` fields of this task (tokenizer location, layout, data)."""
        return {"tokenizer": "tokenizer", "tokenizer_class": _class_path(self.tokenizer),
                "tokenizer_source": str(self.tokenizer_dir) if self.tokenizer_dir else None,
                "layout": self.layout(), "data_root": str(self.data_root) if self.data_root else None,
                "episodes": self.episodes_record()}

    def save_assets(self, directory: str | Path) -> None:
        """Copy the tokenizer into ``directory/tokenizer`` (once; written aside, then renamed)."""
        d = Path(directory)
        if (d / "tokenizer").exists():
            return
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / ".tmp-tokenizer"
        shutil.rmtree(tmp, ignore_errors=True)
        self.tokenizer.save_pretrained(tmp)
        os.replace(tmp, d / "tokenizer")

    @classmethod
    def from_meta(cls, meta: dict, directory: str | Path, device="cpu", **kw) -> VideoTask:
        """The task saved in world-model ``directory``; ``kw`` (data_root, cache_dir, keymap,
        episodes: an EpisodeConfig whose null fields come from the recorded section) override
        what ``meta`` recorded."""
        d = Path(directory)
        tok_dir = d / meta.get("tokenizer", "tokenizer")
        tok = load_video_tokenizer(tok_dir, meta.get("tokenizer_class"), device)
        lay = meta["layout"]
        codec = ActionCodec(lay["actions"]["low"], lay["actions"]["high"], lay["actions"]["bins"])
        kw.setdefault("data_root", meta.get("data_root"))
        kw.setdefault("tokenizer_dir", str(tok_dir))
        if kw.get("episodes") is not None or meta.get("episodes") is not None:
            from worldmodels.episode_config import EpisodeConfig

            kw["episodes"] = (kw.get("episodes") or EpisodeConfig()).merged(meta.get("episodes"))
        kw.setdefault("pad_id", lay.get("pad_id"))
        return cls(tok, VideoSpec(**lay["spec"]), codec, **kw)

    def to(self, device) -> VideoTask:
        self.tokenizer.to(device)
        return self

    def config_section(self, section):
        """``section`` with the layout actually trained (an init's, not the default's) and the
        episodes section as used (the key map spelled out, the frame size)."""
        from dataclasses import replace

        from worldmodels.episode_config import EpisodeConfig

        if hasattr(section, "layout"):
            section = replace(section, layout=self.spec)
        if hasattr(section, "episodes") and self.episodes is not None:
            section = replace(section, episodes=EpisodeConfig(**self.episodes_record()))
        return section

    def max_length(self) -> int:
        """Tokens in one training sequence (checked against the backbone's max_positions)."""
        return self.seq_len()

    @classmethod
    def for_pretrain(cls, cfg, init: str | None = None, resume_dir=None, device="cpu") -> VideoTask:
        """The task a pretraining run trains on (``tasks/video_build.py``)."""
        from worldmodels.tasks.video_build import build_pretrain_task

        return build_pretrain_task(cfg, init, resume_dir, device)

    def save_samples(self, out_dir, step: int, batch: dict, predictions: dict, rewards: Tensor,
                     num_generations: int) -> None:
        """GRPO sample table: ``samples/step_<n>.png`` with the first prompt's target frames
        (top row) and its ``num_generations`` sampled predictions (one row each, best first)."""
        import imageio.v3 as iio

        tgt = self.reward_items(batch)["target_frames"][0].float().cpu()  # (T,3,H,W)
        preds = predictions["frames"][:num_generations].float().cpu()     # (G,T,3,H,W)
        order = torch.argsort(torch.nan_to_num(rewards[:num_generations], nan=-1e9), descending=True)
        rows = torch.cat([tgt[None], preds[order]], 0)  # (G+1,T,3,H,W)
        grid = rows.permute(0, 3, 1, 4, 2).reshape(rows.shape[0] * rows.shape[3],
                                                   rows.shape[1] * rows.shape[4], 3)
        (Path(out_dir) / "samples").mkdir(parents=True, exist_ok=True)
        iio.imwrite(Path(out_dir) / "samples" / f"step_{step:06d}.png",
                    (grid.clamp(0, 1) * 255).round().byte().numpy())


def _class_path(obj) -> str:
    return f"{type(obj).__module__}:{type(obj).__qualname__}"


__all__ = ["ActionCodec", "VideoSpec", "VideoTask"]
