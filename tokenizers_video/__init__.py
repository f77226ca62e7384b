"""Video tokenizers: per-frame FSQ/VQ autoencoder and the compressive context-conditioned one.

    from tokenizers_video import FrameTokenizer, load_tokenizer
    tok = FrameTokenizer.from_preset("tiny")          # 64x64 -> 8x8 = 64 tokens / frame
    ids = tok.encode(frames)                          # (B,T,3,64,64) in [0,1] -> (B,T,8,8)
    tok = load_tokenizer("runs/tok_frame")            # whichever kind the directory holds

Stands alone: imports torch, diffusers, safetensors and ``kernels`` only (never ``worldmodels``).
"""

from __future__ import annotations

from pathlib import Path

from tokenizers_video.compressive import (
    COMPRESSIVE_PRESETS,
    CompressiveTokenizer,
    CompressiveTokenizerConfig,
)
from tokenizers_video.frame_tokenizer import FRAME_PRESETS, FrameTokenizer, FrameTokenizerConfig
from tokenizers_video.pretrained import WeightsMismatch, read_config
from tokenizers_video.quantizers import FSQ, VQ
from tokenizers_video.rlvr_world import RLVRWorldTokenizer
from tokenizers_video.train import TrainConfig, train

KINDS = {"frame": FrameTokenizer, "compressive": CompressiveTokenizer,
         RLVRWorldTokenizer.kind: RLVRWorldTokenizer}  # RLVR-World's CNNFSQModel256 (imported)


def load_tokenizer(directory: str | Path, device: str = "cpu"
                   ) -> FrameTokenizer | CompressiveTokenizer | RLVRWorldTokenizer:
    """Load a saved tokenizer of either kind (reads ``config.json`` "kind"); eval mode.

    Strict: weights that do not fit the config raise :class:`WeightsMismatch` naming the file."""
    kind = read_config(directory)["kind"]
    if kind not in KINDS:
        raise ValueError(f"{Path(directory) / 'config.json'}: unknown kind {kind!r}; known {sorted(KINDS)}")
    return KINDS[kind].from_pretrained(directory, device=device)


__all__ = [
    "COMPRESSIVE_PRESETS", "FRAME_PRESETS", "FSQ", "VQ", "CompressiveTokenizer",
    "CompressiveTokenizerConfig", "FrameTokenizer", "FrameTokenizerConfig", "KINDS",
    "RLVRWorldTokenizer", "TrainConfig", "WeightsMismatch", "load_tokenizer", "train",
]
