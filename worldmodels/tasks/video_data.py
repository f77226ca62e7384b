"""Video clips as token ids: action discretisation and a pre-tokenised, cached clip dataset.

Tokenising frames is the slow part on CPU, so every frame of every episode is encoded once and
the ids are cached on disk (``<cache_dir>/tokens-<key>.pt``, key = tokenizer weights + episode
files + how they are read: key map, crop/resize, the split's steps); items are then cheap slices.
The default cache directory is the user's (:func:`default_cache_dir`), never the data folder. A cache file that cannot be read or does not match the
episodes (counts, shapes, id range) is reported with a warning naming it and rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from worldmodels.atomic import atomic_write
from worldmodels.clips import ClipDataset, frames_to_tensor
from worldmodels.episodes import problems_error

log = logging.getLogger(__name__)

ACTION_BINS = 256


class ActionCodec:
    """Per-dimension 256-bin discretisation (RLVR-World): ``floor(clip((a-lo)/(hi-lo+1e-8),0,1)*256)``
    clipped to 0..255; decoding returns bin centres. ``low``/``high`` (A,) come from training data."""

    def __init__(self, low, high, bins: int = ACTION_BINS):
        self.low = torch.as_tensor(np.asarray(low, dtype=np.float32))
        self.high = torch.as_tensor(np.asarray(high, dtype=np.float32))
        if self.low.dim() != 1 or self.low.shape != self.high.shape:
            raise ValueError(f"action ranges must be two (A,) vectors, got {tuple(self.low.shape)} "
                             f"and {tuple(self.high.shape)}")
        if bool((self.high < self.low).any()):
            raise ValueError(f"action_high < action_low in some dimension: {self.low} {self.high}")
        self.bins = bins

    @classmethod
    def fit(cls, actions: np.ndarray, bins: int = ACTION_BINS) -> ActionCodec:
        """Ranges = per-dimension min / max of ``actions`` (N,A)."""
        return cls(actions.min(0), actions.max(0), bins)

    @property
    def dim(self) -> int:
        return int(self.low.shape[0])

    def encode(self, actions: Tensor) -> Tensor:
        """(..., A) float -> (..., A) int64 bins in [0, bins)."""
        a = torch.as_tensor(actions, dtype=torch.float32)
        if a.shape[-1] != self.dim:
            raise ValueError(f"actions have {a.shape[-1]} dimensions, this model expects {self.dim}")
        lo, hi = self.low.to(a.device), self.high.to(a.device)
        x = ((a - lo) / (hi - lo + 1e-8)).clamp(0, 1)
        return (x * self.bins).floor().long().clamp(0, self.bins - 1)

    def encode_groups(self, actions: Tensor) -> Tensor:
        """(..., G*A) float, G actions of A dims flattened per slot -> (..., G*A) int64 bins."""
        a = torch.as_tensor(actions, dtype=torch.float32)
        if a.shape[-1] % self.dim:
            raise ValueError(f"action slots have {a.shape[-1]} values, not a multiple of this "
                             f"model's {self.dim} action dimensions")
        return self.encode(a.reshape(*a.shape[:-1], -1, self.dim)).reshape(a.shape)

    def decode(self, bins: Tensor) -> Tensor:
        """(..., A) int bins -> (..., A) float32 bin centres."""
        lo, hi = self.low.to(bins.device), self.high.to(bins.device)
        return lo + (bins.float() + 0.5) / self.bins * (hi - lo + 1e-8)

    def to_json(self) -> dict:
        return {"low": self.low.tolist(), "high": self.high.tolist(), "bins": self.bins}


def load_video_tokenizer(directory: str | Path, class_path: str | None = None, device="cpu"):
    """A video tokenizer saved in ``directory``: ``tokenizers_video.load_tokenizer``, or the
    class ``class_path`` ("module:Class", also read from the tokenizer's config.json key
    "class") for tokenizers from elsewhere, or RLVR-World's ``CNNFSQModel256`` for a directory
    their code saved (``tokenizers_video.rlvr_world``). Returned in eval mode on ``device``."""
    import importlib
    import json

    cfg_file = Path(directory) / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{directory}: no video tokenizer here (no config.json; train one "
                                f"with `wm tokenizer train`)")
    try:
        cfg = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{cfg_file}: not valid JSON ({e})") from e
    if class_path is None:
        class_path = cfg.get("class")
    if class_path is None and "kind" not in cfg and cfg.get("_class_name") == "CNNFSQModel256":
        from tokenizers_video.rlvr_world import RLVRWorldTokenizer  # a directory RLVR-World saved

        return RLVRWorldTokenizer.from_pretrained(directory).to(device).eval()
    if class_path and not class_path.startswith("tokenizers_video"):
        mod, cls = class_path.split(":")
        tok = getattr(importlib.import_module(mod), cls).from_pretrained(directory)
    else:
        from tokenizers_video import load_tokenizer

        tok = load_tokenizer(directory)
    return tok.to(device).eval()


def tokenizer_is_compressive(tokenizer) -> bool:
    return hasattr(tokenizer, "context_tokens")


@torch.no_grad()
def encode_frames(tokenizer, frames: Tensor, chunk: int = 64) -> Tensor:
    """Per-frame tokenizer: (B,T,3,H,W) -> (B,T,N) ids, in chunks of frames."""
    B, T = frames.shape[:2]
    flat = frames.reshape(B * T, 1, *frames.shape[2:])
    dev = next(iter(tokenizer.parameters()), torch.empty(0)).device
    out = [tokenizer.encode(flat[i : i + chunk].to(dev)).reshape(min(chunk, B * T - i), -1).cpu()
           for i in range(0, B * T, chunk)]
    return torch.cat(out).reshape(B, T, -1).long()


@torch.no_grad()
def encode_compressive(tokenizer, frames: Tensor) -> tuple[Tensor, Tensor]:
    """Compressive tokenizer: clip (B,T,3,H,W) -> ctx (B,Nc) of frame 0, fut (B,T,Nf) of every
    frame (d_i = future tokens of frame i-1, so d1 encodes the context frame itself)."""
    dev = next(iter(tokenizer.parameters()), torch.empty(0)).device
    ctx, fut = tokenizer.encode(frames[:, 0].to(dev), frames.to(dev))
    return ctx.reshape(frames.shape[0], -1).long().cpu(), fut.reshape(*frames.shape[:2], -1).long().cpu()


def _cache_key(tokenizer_dir: str | None, files: list[Path], extra: str) -> str:
    """Key of one token cache: the tokenizer's *content* and the episode files' size/mtime.

    The tokenizer is keyed by the bytes of its config and weights, not by path or mtime, so a
    world model's copy of a tokenizer (``<wm>/tokenizer``) reuses the cache its training run
    wrote instead of tokenising the whole dataset again.
    """
    h = hashlib.sha1(extra.encode())
    if tokenizer_dir:
        for name in ("config.json", "model.safetensors", "diffusion_pytorch_model.safetensors"):
            p = Path(tokenizer_dir) / name
            if p.is_file():
                h.update(name.encode())
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 22), b""):
                        h.update(chunk)
    for f in files:
        st = Path(f).stat()
        h.update(f"{Path(f).name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    """Where token ids are cached when no cache_dir is given: ``$WM_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/worldmodels/tokens``, else ``~/.cache/worldmodels/tokens``."""
    import os

    if os.environ.get("WM_CACHE_DIR"):
        return Path(os.environ["WM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "worldmodels" / "tokens"


def _atomic_torch_save(obj, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def check_clips_fit(clips: ClipDataset, image_size: int | None, action_dim: int) -> None:
    """Raise an :class:`~worldmodels.episodes.EpisodeError` naming every episode of ``clips``
    whose frames are not ``image_size`` x ``image_size`` (the tokenizer's; None: not checked)
    or whose actions are not ``action_dim``-dimensional (the model's action codec)."""
    problems = []
    for ep in clips.episodes:
        T, H, W, C = ep.image.shape
        if image_size is not None and (H, W) != (image_size, image_size):
            km = getattr(clips, "keymap", None)
            hint = ("" if km is None else f"; frames are brought to {km.size}x{km.size} (--size {km.size}); "
                    f"pass --size {image_size}" if km.size else "; pass --resize to centre-crop "
                    "and resize them")
            problems.append(f"{ep.path}: frames (H,W,C) = {(H, W, C)}, expected "
                            f"{(image_size, image_size, C)} (the tokenizer's image_size){hint}")
        if ep.action is not None and ep.action.shape[1] != action_dim:
            problems.append(f"{ep.path}: actions (T,A) = {ep.action.shape}, expected "
                            f"({T}, {action_dim}) (the action dimensions of the model's codec)")
    if problems:
        raise problems_error(problems, len(clips.episodes))


def cache_problem(tokens, clips: ClipDataset, compressive: bool, vocab: int | None) -> str | None:
    """Why cached ``tokens`` do not fit ``clips`` (None when they do).

    Per-frame caches hold ``{"episodes": [(T_e, N) int64 per episode]}``; compressive ones
    ``{"ctx": (n_clips, Nc), "fut": (n_clips, clip_len, Nf)}`` int64; ids lie in [0, vocab).
    """
    keys = ("ctx", "fut") if compressive else ("episodes",)
    if not isinstance(tokens, dict) or any(k not in tokens for k in keys):
        return f"expected a dict with keys {list(keys)}"
    if compressive:
        ctx, fut = tokens["ctx"], tokens["fut"]
        if not (isinstance(ctx, Tensor) and isinstance(fut, Tensor)):
            return "'ctx' and 'fut' must be tensors"
        want = (len(clips), clips.clip_len)
        if ctx.dim() != 2 or fut.dim() != 3 or ctx.shape[0] != want[0] or tuple(fut.shape[:2]) != want:
            return (f"ctx {tuple(ctx.shape)} / fut {tuple(fut.shape)}, expected ({want[0]}, Nc) / "
                    f"({want[0]}, {want[1]}, Nf) for {len(clips)} clips of {clips.clip_len} frames")
        arrays = [ctx, fut]
    else:
        eps = tokens["episodes"]
        if not isinstance(eps, list) or len(eps) != len(clips.episodes):
            n = len(eps) if isinstance(eps, list) else type(eps).__name__
            return f"{n} episodes of ids, expected {len(clips.episodes)}"
        n_tokens = {int(ids.shape[1]) for ids in eps if isinstance(ids, Tensor) and ids.dim() == 2}
        for ids, ep in zip(eps, clips.episodes, strict=True):
            if (not isinstance(ids, Tensor) or ids.dim() != 2 or ids.shape[0] != len(ep)
                    or len(n_tokens) != 1):
                shape = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
                return f"ids of {ep.path} are {shape}, expected ({len(ep)}, N) with one N for all"
        arrays = eps
    for a in arrays:
        if a.dtype != torch.int64:
            return f"ids have dtype {a.dtype}, expected torch.int64"
        if a.numel() and (int(a.min()) < 0 or (vocab is not None and int(a.max()) >= vocab)):
            return f"ids outside [0, {vocab}) (found {int(a.min())}..{int(a.max())})"
    return None


class TokenClipDataset(Dataset):
    """Clips of ``clip_len`` steps with their token ids, from a pre-tokenised episode set.

    Item: ``frame_ids`` (T,N) int64 (compressive: ``ctx_ids`` (Nc,) + ``frame_ids`` (T,Nf)),
    ``action_ids`` (T,s*A) int64 bins, and when ``with_frames``: ``frames`` (T,3,H,W) in [0,1],
    ``actions`` (T,s*A) float32 (s = the clips' ``frame_skip``; T kept frames).
    """

    def __init__(self, clips: ClipDataset, tokenizer, codec: ActionCodec, *,
                 tokenizer_dir: str | None = None, cache_dir: str | Path | None = None,
                 files: list[Path] = (), with_frames: bool = True, progress: bool = True):
        self.clips, self.codec, self.with_frames = clips, codec, with_frames
        self.compressive = tokenizer_is_compressive(tokenizer)
        check_clips_fit(clips, getattr(tokenizer, "image_size", None), codec.dim)
        # per-frame tokens are per episode (independent of the clip layout); compressive tokens
        # are per clip, so the clip layout is part of their key
        extra = (f"{type(tokenizer).__name__}:{clips.clip_len}:{len(clips)}:{clips.frame_skip}:"
                 f"{self.compressive}" if self.compressive else f"{type(tokenizer).__name__}:frames")
        read = (getattr(clips, "keymap", None), getattr(clips, "steps", None))
        if read != (None, None):  # frames read another way (key map, crop/resize, split steps)
            extra += f":{read[0]!r}:{read[1]!r}"
        path = None
        if cache_dir is not None and files:
            path = Path(cache_dir) / f"tokens-{_cache_key(tokenizer_dir, list(files), extra)}.pt"
        self.tokens = None
        if path is not None and path.is_file():
            self.tokens = self._read_cache(path, getattr(tokenizer, "vocab_size", None))
        if self.tokens is None:
            self.tokens = self._tokenise(tokenizer, progress)
            if path is not None:
                try:
                    _atomic_torch_save(self.tokens, path)
                except OSError as e:
                    log.warning("could not write token cache %s: %s", path, e)

    def _read_cache(self, path: Path, vocab: int | None) -> dict | None:
        """The cached ids at ``path``, or None (with a warning naming it) when they cannot be
        read or do not fit these clips, so that they are tokenised again."""
        try:
            tokens = torch.load(path, weights_only=True)
        except Exception as e:  # any unreadable cache (truncated, not a torch file): rebuild it
            log.warning("token cache %s: unreadable (%s: %s); tokenising again", path,
                        type(e).__name__, e)
            return None
        problem = cache_problem(tokens, self.clips, self.compressive, vocab)
        if problem:
            log.warning("token cache %s: %s; tokenising again", path, problem)
            return None
        return tokens

    def _tokenise(self, tokenizer, progress: bool) -> dict:
        from tqdm import tqdm

        if not self.compressive:  # every frame of every episode once
            eps = self.clips.episodes
            it = tqdm(eps, desc="tokenising episodes", disable=not progress, leave=False)
            return {"episodes": [encode_frames(tokenizer, frames_to_tensor(ep.image)[None])[0]
                                 for ep in it]}
        ctx, fut = [], []  # compressive: context-dependent, so per clip (in batches of clips)
        batch = 16
        it = tqdm(range(0, len(self.clips), batch), desc="tokenising clips", disable=not progress,
                  leave=False)
        for i in it:
            frames = torch.stack([self.clips[j]["frames"] for j in range(i, min(i + batch, len(self.clips)))])
            c, f = encode_compressive(tokenizer, frames)  # (b,Nc), (b,T,Nf)
            ctx.append(c)
            fut.append(f)
        return {"ctx": torch.cat(ctx), "fut": torch.cat(fut)}

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        e, s = self.clips.index[i]
        ep = self.clips.episodes[e]
        steps = self.clips.frame_steps(s)
        actions = torch.from_numpy(self.clips.window_actions(ep, s))  # (L, skip*A)
        item = {"action_ids": self.codec.encode_groups(actions)}
        if self.compressive:
            item["ctx_ids"] = self.tokens["ctx"][i]
            item["frame_ids"] = self.tokens["fut"][i]
        else:
            item["frame_ids"] = self.tokens["episodes"][e][torch.from_numpy(steps)]
        if self.with_frames:
            item["frames"] = frames_to_tensor(ep.image[steps])
            item["actions"] = actions
        return item
