"""Per-frame tokenizer: a diffusers convolutional autoencoder with an FSQ or VQ bottleneck.

    tok = FrameTokenizer.from_preset("tiny")        # 64x64 frames -> 8x8 = 64 tokens
    ids = tok.encode(frames)                        # (B,T,3,64,64) in [0,1] -> (B,T,8,8) int64
    rec = tok.decode(ids)                           # -> (B,T,3,64,64) in [0,1]

Encoder/decoder are ``diffusers.models.autoencoders.vae.Encoder/Decoder`` (down/up blocks
of ResNet layers, a mid-block with self-attention). ``len(block_out_channels)`` blocks give
``2**(n-1)`` down-sampling (4 blocks: 8x, 5 blocks: 16x).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.models.autoencoders.vae import Decoder, Encoder
from torch import nn

from tokenizers_video.pretrained import PretrainedMixin
from tokenizers_video.quantizers import build_quantizer, check_fsq_levels, check_vq_fields


@dataclass
class FrameTokenizerConfig:
    """Shape of a per-frame tokenizer.

    Attributes:
        image_size: square frame side in pixels (frames must be image_size x image_size).
        block_out_channels: channels of each encoder block (decoder mirrors them); n blocks
            down-sample by 2**(n-1).
        layers_per_block: ResNet layers per encoder block (the decoder uses one more).
        norm_num_groups: GroupNorm groups (must divide every channel count).
        mid_attention: self-attention in the mid-block (at the token grid resolution).
        quantizer: "fsq" or "vq".
        fsq_levels: FSQ levels per code channel; codebook size = prod(levels).
        vq_codebook_size: number of VQ codes.
        vq_dim: VQ code dimension.
        vq_beta: commitment-loss weight.
        vq_ema: update the VQ codebook by EMA (else learned by the codebook loss).
        vq_decay: EMA decay for codebook and usage statistics.
        vq_restart_threshold: re-seed codes whose EMA usage (assignments per batch) falls
            below this; 0 disables restarts.
    """

    image_size: int = 64
    block_out_channels: tuple[int, ...] = (16, 32, 64, 64)
    layers_per_block: int = 1
    norm_num_groups: int = 8
    mid_attention: bool = True
    quantizer: str = "fsq"
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)
    vq_codebook_size: int = 1024
    vq_dim: int = 16
    vq_beta: float = 0.25
    vq_ema: bool = True
    vq_decay: float = 0.99
    vq_restart_threshold: float = 0.01

    def __post_init__(self) -> None:
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        self.fsq_levels = tuple(int(v) for v in self.fsq_levels)
        if not self.block_out_channels or min(self.block_out_channels) < 1:
            raise ValueError(f"block_out_channels: need at least one block, every count >= 1, got "
                             f"{self.block_out_channels}")
        if self.quantizer not in ("fsq", "vq"):
            raise ValueError(f"quantizer: expected 'fsq' or 'vq', got {self.quantizer!r}")
        if self.image_size < 1 or self.norm_num_groups < 1:
            raise ValueError(f"image_size and norm_num_groups must be >= 1, got {self.image_size}, "
                             f"{self.norm_num_groups}")
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError(f"norm_num_groups={self.norm_num_groups} must divide every entry of "
                             f"block_out_channels={self.block_out_channels}")
        if self.image_size % self.downsample:
            raise ValueError(f"image_size={self.image_size} is not divisible by the "
                             f"down-sampling factor {self.downsample}")
        if self.layers_per_block < 1:
            raise ValueError(f"layers_per_block must be >= 1, got {self.layers_per_block}")
        if self.quantizer == "fsq":
            check_fsq_levels(self.fsq_levels)
        else:
            check_vq_fields(self.vq_codebook_size, self.vq_dim, self.vq_beta, self.vq_decay,
                            self.vq_restart_threshold)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def code_dim(self) -> int:
        return len(self.fsq_levels) if self.quantizer == "fsq" else self.vq_dim


FRAME_PRESETS: dict[str, FrameTokenizerConfig] = {
    # 64x64 -> 8x8 = 64 tokens, 1,000 codes; ~1M parameters, CPU-trainable in minutes.
    "tiny": FrameTokenizerConfig(),
    # RLVR-World / iVideoGPT per-frame shape: 16x down-sampling, FSQ [7,5,5,5,5] = 4,375 codes
    # (256x256 -> 16x16 = 256 tokens); GPU-sized channels.
    "rt1": FrameTokenizerConfig(image_size=256, block_out_channels=(128, 128, 256, 256, 512),
                                layers_per_block=2, norm_num_groups=32,
                                fsq_levels=(7, 5, 5, 5, 5)),
    # 256x256 frames (e.g. RT-1's 256x320 after a centre crop) at RLVR-World's token layout,
    # 16x down-sampling -> 16x16 = 256 tokens, FSQ [7,5,5,5,5] = 4,375 codes, with the tiny
    # preset's narrow channels (~3M parameters): trainable and testable on CPU.
    "256": FrameTokenizerConfig(image_size=256, block_out_channels=(16, 32, 64, 64, 128),
                                fsq_levels=(7, 5, 5, 5, 5)),
}
FRAME_PRESETS["64"] = FRAME_PRESETS["tiny"]  # the preset by its frame side


def _quantizer(cfg) -> nn.Module:
    return build_quantizer(cfg.quantizer, cfg.fsq_levels, cfg.vq_codebook_size, cfg.vq_dim,
                           cfg.vq_beta, cfg.vq_ema, cfg.vq_decay, cfg.vq_restart_threshold)


def check_frames(frames: torch.Tensor, image_size: int, ndim: int, name: str = "frames") -> None:
    """Raise a clear error unless ``frames`` is (..., 3, image_size, image_size) with ``ndim`` dims."""
    if frames.ndim != ndim or frames.shape[-3] != 3 or frames.shape[-2:] != (image_size, image_size):
        want = "(B,T,3,H,W)" if ndim == 5 else "(B,3,H,W)"
        raise ValueError(f"{name}: expected {want} with H=W={image_size}, got {tuple(frames.shape)}")


class FrameTokenizer(PretrainedMixin, nn.Module):
    """Frames (B,T,3,H,W) in [0,1] <-> token ids (B,T,h,w) in [0, vocab_size)."""

    kind = "frame"
    config_class = FrameTokenizerConfig
    presets = FRAME_PRESETS

    def __init__(self, config: FrameTokenizerConfig):
        super().__init__()
        self.config = config
        n = len(config.block_out_channels)
        self.encoder = Encoder(in_channels=3, out_channels=config.code_dim,
                               down_block_types=("DownEncoderBlock2D",) * n,
                               block_out_channels=config.block_out_channels,
                               layers_per_block=config.layers_per_block,
                               norm_num_groups=config.norm_num_groups, double_z=False,
                               mid_block_add_attention=config.mid_attention)
        self.decoder = Decoder(in_channels=config.code_dim, out_channels=3,
                               up_block_types=("UpDecoderBlock2D",) * n,
                               block_out_channels=config.block_out_channels,
                               layers_per_block=config.layers_per_block,
                               norm_num_groups=config.norm_num_groups,
                               mid_block_add_attention=config.mid_attention)
        self.quantizer = _quantizer(config)

    # --- facts other code reads -------------------------------------------------------
    @property
    def grid(self) -> tuple[int, int]:
        s = self.config.image_size // self.config.downsample
        return (s, s)

    @property
    def tokens_per_frame(self) -> int:
        return self.grid[0] * self.grid[1]

    # --- building blocks on flat frame batches (N,3,H,W) -------------------------------
    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) in [0,1] -> pre-quantisation latent (N,h,w,D)."""
        return self.encoder(x * 2 - 1).permute(0, 2, 3, 1)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(N,h,w,D) codes -> (N,3,H,W), unclamped (about [0,1])."""
        return (self.decoder(codes.permute(0, 3, 1, 2)) + 1) / 2

    def reconstruct(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Training forward: frames (B,[T,]3,H,W) -> (recon (N,3,H,W), target (N,3,H,W), aux)."""
        x = frames.reshape(-1, *frames.shape[-3:])  # (N,3,H,W)
        zq, ids, aux = self.quantizer(self.encode_latent(x))  # (N,h,w,D), (N,h,w)
        aux["ids"] = ids
        return self.decode_codes(zq), x, aux

    # --- public API --------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B,T,3,H,W) float in [0,1] -> ids (B,T,h,w) int64."""
        check_frames(frames, self.image_size, 5)
        b, t = frames.shape[:2]
        x = frames.reshape(b * t, *frames.shape[2:]).to(self._param_dtype())
        _, ids, _ = self.quantizer(self.encode_latent(x))
        return ids.reshape(b, t, *self.grid).long()

    @torch.no_grad()
    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B,T,h,w) int64 -> frames (B,T,3,H,W) float32 in [0,1]."""
        if ids.ndim != 4 or tuple(ids.shape[2:]) != self.grid:
            raise ValueError(f"ids: expected (B,T,{self.grid[0]},{self.grid[1]}), got {tuple(ids.shape)}")
        b, t = ids.shape[:2]
        ids = ids.clamp(0, self.vocab_size - 1)
        codes = self.quantizer.indices_to_codes(ids.reshape(b * t, *self.grid))
        out = self.decode_codes(codes.to(self._param_dtype()))
        return out.float().clamp(0, 1).reshape(b, t, *out.shape[1:])

    def _param_dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype
