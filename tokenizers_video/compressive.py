"""Compressive, context-conditioned tokenizer (iVideoGPT's design).

    tok = CompressiveTokenizer.from_preset("tiny")     # context 8x8 = 64 tokens, future 4x4 = 16
    ctx_ids, fut_ids = tok.encode(context, future)     # (B,3,64,64), (B,T,3,64,64) -> (B,64), (B,T,16)
    ctx, fut = tok.decode(ctx_ids, fut_ids)            # -> (B,3,64,64), (B,T,3,64,64) in [0,1]

The context frame goes through an ordinary per-frame tokenizer (``self.context``, a
:class:`FrameTokenizer`, so a trained one can be loaded into it). Each future frame goes
through a deeper encoder that down-samples further (fewer tokens) and, at every resolution
the context path also has (up to ``xattn_max_res``), cross-attends to the context encoder's
features; its decoder likewise cross-attends to the context decoder's features. Future frames
therefore only need to encode what differs from the context. Above ``xattn_max_res``
(where attention would be costly) ``context_skip_max_res`` adds spatially aligned skips: the
context feature map of the same resolution is concatenated and fused in by a zero-initialised
conv branch (the camera is static, so pixel (i, j) of the context is pixel (i, j) of the
future). Both paths use the same FSQ grid, so all ids share one space [0, vocab_size).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.models.attention_processor import Attention
from diffusers.models.autoencoders.vae import Decoder, Encoder
from torch import nn
from torch.nn import functional as F

from tokenizers_video.frame_tokenizer import FrameTokenizer, FrameTokenizerConfig, check_frames
from tokenizers_video.pretrained import PretrainedMixin
from tokenizers_video.quantizers import FSQ, check_fsq_levels


@dataclass
class CompressiveTokenizerConfig:
    """Shape of a compressive tokenizer.

    Attributes:
        image_size: square frame side in pixels.
        context_channels: per-block channels of the context (per-frame) tokenizer; n blocks
            down-sample by 2**(n-1).
        future_channels: per-block channels of the future-frame encoder/decoder; must have
            more blocks than ``context_channels`` (each extra block: 4x fewer tokens).
        layers_per_block: ResNet layers per encoder block (decoders use one more).
        norm_num_groups: GroupNorm groups (must divide every channel count).
        fsq_levels: FSQ levels shared by context and future tokens.
        xattn_max_res: cross-attend to context features at resolutions up to this side.
        xattn_heads: attention heads in each cross-attention layer.
        residual: decode a future frame as the decoded context frame plus a decoded change
            (the future decoder's output layer starts at zero, so an untrained tokenizer
            already reproduces "nothing moved"; tokens only have to carry what changed).
        context_skip_max_res: 0 (off) or a resolution side: at every future encoder level
            (incl. the ``conv_in`` stem) and decoder level whose side is > ``xattn_max_res``
            and <= this, fuse the context path's feature map of the same level and side
            (encoder features when encoding, decoder features when decoding) through a
            :class:`ContextFuse` (concat + conv, added residually, output conv zero at init,
            so a warm-started tokenizer is unchanged at step 0). Assumes a static camera.
    """

    image_size: int = 64
    context_channels: tuple[int, ...] = (16, 32, 64, 64)
    future_channels: tuple[int, ...] = (16, 32, 64, 64, 64)
    layers_per_block: int = 1
    norm_num_groups: int = 8
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)
    xattn_max_res: int = 16
    xattn_heads: int = 4
    residual: bool = False
    context_skip_max_res: int = 0

    def __post_init__(self) -> None:
        self.context_channels = tuple(int(c) for c in self.context_channels)
        self.future_channels = tuple(int(c) for c in self.future_channels)
        self.fsq_levels = tuple(int(v) for v in self.fsq_levels)
        check_fsq_levels(self.fsq_levels)
        if not self.context_channels or min(self.context_channels + self.future_channels) < 1:
            raise ValueError(f"context_channels {self.context_channels} and future_channels "
                             f"{self.future_channels}: need at least one block, every count >= 1")
        if min(self.image_size, self.norm_num_groups, self.xattn_heads, self.layers_per_block) < 1:
            raise ValueError(f"image_size, norm_num_groups, xattn_heads and layers_per_block must be "
                             f">= 1, got {self.image_size}, {self.norm_num_groups}, {self.xattn_heads}, "
                             f"{self.layers_per_block}")
        if len(self.future_channels) <= len(self.context_channels):
            raise ValueError(f"future_channels {self.future_channels} must have more blocks than "
                             f"context_channels {self.context_channels} (that is the compression)")
        chans = self.context_channels + self.future_channels
        if any(c % self.norm_num_groups or c % self.xattn_heads for c in chans):
            raise ValueError(f"norm_num_groups={self.norm_num_groups} and xattn_heads="
                             f"{self.xattn_heads} must divide every channel count {chans}")
        if self.image_size % 2 ** (len(self.future_channels) - 1):
            raise ValueError(f"image_size={self.image_size} not divisible by the future "
                             f"down-sampling 2**{len(self.future_channels) - 1}")
        self.context_skip_max_res = int(self.context_skip_max_res)
        if self.context_skip_max_res < 0 or (
                self.context_skip_max_res and (self.context_skip_max_res <= self.xattn_max_res
                                               or self.context_skip_max_res > self.image_size)):
            raise ValueError(f"context_skip_max_res={self.context_skip_max_res}: 0 (off) or a side in "
                             f"(xattn_max_res={self.xattn_max_res}, image_size={self.image_size}]")

    def context_config(self) -> FrameTokenizerConfig:
        return FrameTokenizerConfig(image_size=self.image_size, block_out_channels=self.context_channels,
                                    layers_per_block=self.layers_per_block,
                                    norm_num_groups=self.norm_num_groups, quantizer="fsq",
                                    fsq_levels=self.fsq_levels)


COMPRESSIVE_PRESETS: dict[str, CompressiveTokenizerConfig] = {
    # 64x64: context 8x8 = 64 tokens (= the tiny frame tokenizer), future 4x4 = 16 tokens;
    # aligned context skips at 32x32 and 64x64 (the static background comes from the context).
    "tiny": CompressiveTokenizerConfig(context_skip_max_res=64),
    # iVideoGPT / RLVR-World shape on 256x320 RT-1 frames: context 8x (32x40 = 1,280 tokens),
    # future 32x (8x10 = 80 tokens); here on square 256 frames: 1,024 and 64 tokens.
    "rt1": CompressiveTokenizerConfig(image_size=256, context_channels=(128, 128, 256, 512),
                                      future_channels=(128, 128, 256, 256, 512, 512),
                                      layers_per_block=2, norm_num_groups=32,
                                      fsq_levels=(7, 5, 5, 5, 5), xattn_max_res=32, xattn_heads=8),
    # 256x256 frames (RT-1 after a centre crop) with narrow CPU-sized channels: context 8x
    # (32x32 = 1,024 tokens), future 32x (8x8 = 64 tokens), FSQ [7,5,5,5,5].
    "256": CompressiveTokenizerConfig(image_size=256, context_channels=(16, 32, 64, 64),
                                      future_channels=(16, 32, 64, 64, 128, 128),
                                      fsq_levels=(7, 5, 5, 5, 5)),
}
COMPRESSIVE_PRESETS["64"] = COMPRESSIVE_PRESETS["tiny"]  # the preset by its frame side


class CrossAttend(nn.Module):
    """x + Attention(norm(x) + pos, norm(ctx) + pos) on (N,C,r,r) maps (learned 2-D positions)."""

    def __init__(self, ch: int, ctx_ch: int, res: int, heads: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch)
        self.ctx_norm = nn.LayerNorm(ctx_ch)
        self.pos_q = nn.Parameter(torch.randn(1, res * res, ch) * 0.02)
        self.pos_kv = nn.Parameter(torch.randn(1, res * res, ctx_ch) * 0.02)
        self.attn = Attention(query_dim=ch, cross_attention_dim=ctx_ch, heads=heads,
                              dim_head=ch // heads, bias=True)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.norm(x).flatten(2).transpose(1, 2) + self.pos_q  # (N,r*r,C)
        kv = self.ctx_norm(ctx.flatten(2).transpose(1, 2)) + self.pos_kv  # (N,r*r,Cc)
        out = self.attn(q, encoder_hidden_states=kv)  # (N,r*r,C)
        return x + out.transpose(1, 2).reshape(n, c, h, w)


class ContextFuse(nn.Module):
    """x + out([x, ctx, SiLU(mix([x, ctx]))]) on aligned (N,C,r,r) / (N,Cc,r,r) maps.

    ``out`` (1x1) starts at zero, so the module is the identity at init; its direct
    [x, ctx] inputs can express "copy the context here" linearly, the 3x3 ``mix`` branch
    lets it gate that per pixel (what moved vs what did not).

    A convolution over concatenated channels is the sum of convolutions over each part, so
    the context's share of ``mix`` and ``out`` is computed once per clip and broadcast over
    the clip's ``t`` future frames instead of concatenating a copy of the context map to
    every frame (same parameters and result, ~3x less work in the context channels).
    """

    def __init__(self, ch: int, ctx_ch: int):
        super().__init__()
        self.mix = nn.Conv2d(ch + ctx_ch, ch, 3, padding=1)
        self.out = nn.Conv2d(2 * ch + ctx_ch, ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, t: int = 1) -> torch.Tensor:
        """x (B*t,C,r,r) future features, ctx (B,Cc,r,r) the context features of their clip."""
        c, cc = x.shape[1], ctx.shape[1]
        ctx = ctx.to(x.dtype)
        wm, wo = self.mix.weight, self.out.weight  # (C, C+Cc, 3, 3), (C, 2C+Cc, 1, 1)
        mix = _add_per_clip(F.conv2d(x, wm[:, :c], padding=1),
                            F.conv2d(ctx, wm[:, c:], self.mix.bias, padding=1), t)
        out = F.conv2d(x, wo[:, :c]) + F.conv2d(F.silu(mix), wo[:, c + cc:])
        return x + _add_per_clip(out, F.conv2d(ctx, wo[:, c:c + cc], self.out.bias), t)


def _add_per_clip(frames: torch.Tensor, clip: torch.Tensor, t: int) -> torch.Tensor:
    """frames (B*t,C,r,r) + clip (B,C,r,r) broadcast over each clip's t frames."""
    return (frames.unflatten(0, (-1, t)) + clip.unsqueeze(1)).flatten(0, 1)


def encoder_levels(chans, size):
    """[(res, channels)] after each down block, then the mid-block (diffusers Encoder)."""
    n = len(chans)
    out = [(size // 2 ** min(i + 1, n - 1), c) for i, c in enumerate(chans)]
    return out + [(size // 2 ** (n - 1), chans[-1])]


def decoder_levels(chans, size):
    """[(res, channels)] after the mid-block, then after each up block (diffusers Decoder)."""
    n, rev = len(chans), list(reversed(chans))
    h = size // 2 ** (n - 1)
    return [(h, rev[0])] + [(h * 2 ** min(j + 1, n - 1), c) for j, c in enumerate(rev)]


def run_encoder(enc: Encoder, x: torch.Tensor, hook) -> torch.Tensor:
    """diffusers Encoder forward with ``hook(level, feat) -> feat`` after ``conv_in`` (level -1),
    each block and the mid."""
    h = hook(-1, enc.conv_in(x))
    for i, block in enumerate(enc.down_blocks):
        h = hook(i, block(h))
    h = hook(len(enc.down_blocks), enc.mid_block(h))
    return enc.conv_out(enc.conv_act(enc.conv_norm_out(h)))


def run_decoder(dec: Decoder, z: torch.Tensor, hook) -> torch.Tensor:
    """diffusers Decoder forward with ``hook(level, feat) -> feat`` after the mid and each block."""
    h = hook(0, dec.mid_block(dec.conv_in(z), None))
    for j, block in enumerate(dec.up_blocks):
        h = hook(j + 1, block(h, None))
    return dec.conv_out(dec.conv_act(dec.conv_norm_out(h)))


def _feature_recorder():
    """(feats, hook) for run_encoder/run_decoder: the hook stores each level's feature map as
    feats[("res", side)] (last map of that side, for cross-attention) and feats[("level", i)]
    (for aligned skips) and passes it on unchanged."""
    feats: dict[tuple[str, int], torch.Tensor] = {}

    def rec(i, f):
        feats["res", f.shape[-1]] = feats["level", i] = f
        return f

    return feats, rec


class CompressiveTokenizer(PretrainedMixin, nn.Module):
    """(context (B,3,H,W), future (B,T,3,H,W)) <-> (ctx_ids (B,Nc), fut_ids (B,T,Nf))."""

    kind = "compressive"
    config_class = CompressiveTokenizerConfig
    presets = COMPRESSIVE_PRESETS

    def __init__(self, config: CompressiveTokenizerConfig):
        super().__init__()
        self.config = config
        c, size, n = config, config.image_size, len(config.future_channels)
        self.context = FrameTokenizer(c.context_config())
        self.quantizer = FSQ(c.fsq_levels)
        kw = dict(layers_per_block=c.layers_per_block, norm_num_groups=c.norm_num_groups)
        self.encoder = Encoder(in_channels=3, out_channels=self.quantizer.dim, double_z=False,
                               down_block_types=("DownEncoderBlock2D",) * n,
                               block_out_channels=c.future_channels, **kw)
        self.decoder = Decoder(in_channels=self.quantizer.dim, out_channels=3,
                               up_block_types=("UpDecoderBlock2D",) * n,
                               block_out_channels=c.future_channels, **kw)
        ctx_enc = dict(encoder_levels(c.context_channels, size))  # res -> channels (last wins)
        ctx_dec = dict(decoder_levels(c.context_channels, size))
        self._enc_x = self._cross_layers(encoder_levels(c.future_channels, size), ctx_enc)
        self._dec_x = self._cross_layers(decoder_levels(c.future_channels, size), ctx_dec)
        self.enc_xattn = nn.ModuleDict({str(k): v for k, v in self._enc_x.items()})
        self.dec_xattn = nn.ModuleDict({str(k): v for k, v in self._dec_x.items()})
        # context-skip fusions: future level -> (context level, ContextFuse)
        stem = [(size, c.future_channels[0])], [(size, c.context_channels[0])]
        self._enc_s = self._skip_layers(stem[0] + encoder_levels(c.future_channels, size),
                                        stem[1] + encoder_levels(c.context_channels, size), 0, -1)
        extra = len(c.future_channels) - len(c.context_channels)
        self._dec_s = self._skip_layers(decoder_levels(c.future_channels, size),
                                        decoder_levels(c.context_channels, size), extra, 0)
        self.enc_skip = nn.ModuleDict({str(k): v for k, (_, v) in self._enc_s.items()})
        self.dec_skip = nn.ModuleDict({str(k): v for k, (_, v) in self._dec_s.items()})
        if c.residual:  # start from "future = context"
            nn.init.zeros_(self.decoder.conv_out.weight)
            nn.init.zeros_(self.decoder.conv_out.bias)

    def _cross_layers(self, levels, ctx_levels) -> dict[int, CrossAttend]:
        c = self.config
        return {i: CrossAttend(ch, ctx_levels[r], r, c.xattn_heads, c.norm_num_groups)
                for i, (r, ch) in enumerate(levels) if r <= c.xattn_max_res and r in ctx_levels}

    def _skip_layers(self, levels, ctx_levels, shift: int, first: int):
        """{future level: (context level, ContextFuse)} where level ``i`` (numbered from
        ``first``) meets context level ``i - shift`` at the same side, within the skip range."""
        c, out = self.config, {}
        for k, (r, ch) in enumerate(levels):
            j = k - shift
            if (c.xattn_max_res < r <= c.context_skip_max_res and 0 <= j < len(ctx_levels)
                    and ctx_levels[j][0] == r):
                out[k + first] = (j + first, ContextFuse(ch, ctx_levels[j][1]))
        return out

    @torch.no_grad()
    def init_future_from_context(self) -> int:
        """Warm-start the future encoder/decoder from the context path where shapes agree.

        Encoder tensors match by name; decoder up-block ``j`` of the context path maps to
        future up-block ``j + extra`` (same resolution and channels), ``extra`` being the
        number of additional blocks. Returns how many tensors were copied.
        """
        extra = len(self.config.future_channels) - len(self.config.context_channels)
        copied = 0
        for src, dst, shift in ((self.context.encoder, self.encoder, 0),
                                (self.context.decoder, self.decoder, extra)):
            target = dst.state_dict()
            for name, value in src.state_dict().items():
                if name.startswith("up_blocks."):
                    j, rest = name.split(".", 2)[1:]
                    name = f"up_blocks.{int(j) + shift}.{rest}"
                if self.config.residual and dst is self.decoder and name.startswith("conv_out"):
                    continue  # the residual output layer stays at zero
                if name in target and target[name].shape == value.shape:
                    target[name].copy_(value)
                    copied += 1
        return copied

    @property
    def context_grid(self) -> tuple[int, int]:
        return self.context.grid

    @property
    def future_grid(self) -> tuple[int, int]:
        s = self.config.image_size // 2 ** (len(self.config.future_channels) - 1)
        return (s, s)

    @property
    def context_tokens(self) -> int:
        return self.context.tokens_per_frame

    @property
    def tokens_per_future_frame(self) -> int:
        return self.future_grid[0] * self.future_grid[1]

    # --- feature plumbing ----------------------------------------------------------------
    def _context_encode(self, ctx: torch.Tensor):
        """(B,3,H,W) -> (latent (B,h,w,D), feats): feats[("res", r)] is the last feature map
        of side r (for cross-attention), feats[("level", i)] the one after level i (skips)."""
        feats, rec = _feature_recorder()
        lat = run_encoder(self.context.encoder, ctx * 2 - 1, rec)
        return lat.permute(0, 2, 3, 1), feats

    def _context_decode(self, codes: torch.Tensor):
        """(B,h,w,D) codes -> (frames (B,3,H,W) unclamped, feats as in ``_context_encode``)."""
        feats, rec = _feature_recorder()
        out = run_decoder(self.context.decoder, codes.permute(0, 3, 1, 2), rec)
        return (out + 1) / 2, feats

    def _with_context(self, layers: dict[int, CrossAttend], skips, feats, t: int):
        def hook(i, f):
            if i in layers:
                ctx = feats["res", f.shape[-1]].repeat_interleave(t, dim=0)  # (B*T,Cc,r,r)
                f = layers[i](f, ctx)
            if i in skips:
                j, fuse = skips[i]
                f = fuse(f, feats["level", j], t)
            return f

        return hook

    def _future_latent(self, fut: torch.Tensor, enc_feats, t: int) -> torch.Tensor:
        """(B*T,3,H,W) -> (B*T,hf,wf,D)."""
        lat = run_encoder(self.encoder, fut * 2 - 1,
                          self._with_context(self._enc_x, self._enc_s, enc_feats, t))
        return lat.permute(0, 2, 3, 1)

    def _future_decode(self, codes: torch.Tensor, dec_feats, t: int,
                       ctx_rec: torch.Tensor) -> torch.Tensor:
        """(B*T,hf,wf,D) codes, decoded context (B,3,H,W) -> (B*T,3,H,W) unclamped."""
        out = run_decoder(self.decoder, codes.permute(0, 3, 1, 2),
                          self._with_context(self._dec_x, self._dec_s, dec_feats, t))
        if self.config.residual:
            return ctx_rec.repeat_interleave(t, dim=0) + out
        return (out + 1) / 2

    # --- training forward ---------------------------------------------------------------
    def reconstruct(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """frames (B,T,3,H,W), frame 0 the context -> (recon, target) both (B*T,3,H,W) ordered
        [all contexts (B), then future frames (B*(T-1)) item-major], and aux."""
        check_frames(frames, self.image_size, 5)
        b, t = frames.shape[:2]
        if t < 2:
            raise ValueError(f"frames: need a context and at least one future frame, got T={t}")
        ctx, fut = frames[:, 0], frames[:, 1:].reshape(b * (t - 1), *frames.shape[2:])
        lat, enc_feats = self._context_encode(ctx)
        cq, cids, caux = self.quantizer(lat)
        ctx_rec, dec_feats = self._context_decode(cq)
        fq, fids, faux = self.quantizer(self._future_latent(fut, enc_feats, t - 1))
        fut_rec = self._future_decode(fq, dec_feats, t - 1, ctx_rec)
        aux = {"loss": caux["loss"] + faux["loss"], "usage": faux["usage"],
               "perplexity": faux["perplexity"], "context_usage": caux["usage"],
               "ids": torch.cat([cids.flatten(), fids.flatten()])}
        return torch.cat([ctx_rec, fut_rec]), torch.cat([ctx, fut]), aux

    @staticmethod
    def target_contexts(frames: torch.Tensor) -> torch.Tensor:
        """frames (B,T,3,H,W) -> (B*T,3,H,W): the context frame of each row of
        ``reconstruct(frames)``'s target, in the same order (a context is its own context)."""
        ctx, t = frames[:, 0], frames.shape[1]
        return torch.cat([ctx, ctx.repeat_interleave(t - 1, dim=0)])

    # --- public API -----------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, context: torch.Tensor, future: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """context (B,3,H,W), future (B,T,3,H,W) in [0,1] -> ctx_ids (B,Nc), fut_ids (B,T,Nf)."""
        check_frames(context, self.image_size, 4, "context")
        check_frames(future, self.image_size, 5, "future")
        b, t = future.shape[:2]
        lat, enc_feats = self._context_encode(context)
        _, cids, _ = self.quantizer(lat)
        _, fids, _ = self.quantizer(self._future_latent(future.reshape(b * t, *future.shape[2:]),
                                                        enc_feats, t))
        return cids.reshape(b, -1).long(), fids.reshape(b, t, -1).long()

    @torch.no_grad()
    def decode(self, ctx_ids: torch.Tensor, fut_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ctx_ids (B,Nc), fut_ids (B,T,Nf) -> context (B,3,H,W), future (B,T,3,H,W) in [0,1]."""
        if ctx_ids.ndim != 2 or ctx_ids.shape[1] != self.context_tokens:
            raise ValueError(f"ctx_ids: expected (B,{self.context_tokens}), got {tuple(ctx_ids.shape)}")
        if fut_ids.ndim != 3 or fut_ids.shape[2] != self.tokens_per_future_frame:
            raise ValueError(f"fut_ids: expected (B,T,{self.tokens_per_future_frame}), "
                             f"got {tuple(fut_ids.shape)}")
        b, t = fut_ids.shape[:2]
        v = self.vocab_size - 1
        ccodes = self.quantizer.indices_to_codes(ctx_ids.clamp(0, v).reshape(b, *self.context_grid))
        ctx_rec, dec_feats = self._context_decode(ccodes)
        fcodes = self.quantizer.indices_to_codes(fut_ids.clamp(0, v).reshape(b * t, *self.future_grid))
        fut_rec = self._future_decode(fcodes, dec_feats, t, ctx_rec)
        return (ctx_rec.clamp(0, 1).float(),
                fut_rec.clamp(0, 1).float().reshape(b, t, *fut_rec.shape[1:]))
