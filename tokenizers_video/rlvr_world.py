"""RLVR-World's per-frame tokenizer (``CNNFSQModel256``), loaded from a directory its code saved.

    tok = RLVRWorldTokenizer.from_pretrained("rt1-frame-tokenizer")   # their config.json + weights
    ids = tok.encode(frames)            # (B,T,3,H,W) in [0,1] -> (B,T,h,w) int64 in [0, vocab_size)
    rec = tok.decode(ids)               # -> (B,T,3,H,W) float32 in [0,1] (clamped)
    tok.save_pretrained("wm/tokenizer") # config.json (their keys + "kind") + model.safetensors

Their model (RLVR-World ``vid_wm/ivideogpt/ivideogpt/tokenizer/vq_model.py``, a diffusers
``ModelMixin``/``ConfigMixin``): ``encoder`` (diffusers VAE ``Encoder``, ``double_z=False``,
mid-block attention) -> ``quant_linear`` (1x1 conv, latent_channels -> len(levels)) ->
``dynamics_quantize`` (FSQ) -> ``post_quant_linear`` (1x1 conv back) -> ``decoder`` (a mirror of
the encoder, :class:`MirroredDecoder`). Module names equal theirs, so their state dict loads
strictly. Their frames are in [-1, 1]; our tokenizer API takes [0, 1]: :meth:`encode` maps
``x -> 2x - 1`` and :meth:`decode` maps their output ``y -> (y + 1) / 2`` (clamped to [0, 1]);
:meth:`encode_signed` / :meth:`decode_signed` are their ``encode`` / ``decode`` unchanged.

What was reconstructed and how it was checked (their code is not vendored): the decoder layout
from the state-dict keys of a checkpoint their code saved, and the FSQ bound / index order by
reproducing that checkpoint's ``encode`` output exactly (``../shared/data/interop``,
``tests/video_tokenizers/test_rlvr_world.py``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.models.autoencoders.vae import Encoder
from diffusers.models.unets.unet_2d_blocks import UNetMidBlock2D, get_up_block
from torch import nn

from tokenizers_video.frame_tokenizer import check_frames
from tokenizers_video.pretrained import WeightsMismatch, _atomic_write_bytes, load_weights_strict
from tokenizers_video.quantizers import FSQ

KIND = "rlvr_world_cnnfsq"
CLASS_NAME = "CNNFSQModel256"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"  # ours (the token cache keys a tokenizer by this file)
THEIR_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")

#: RLVR-World's ``get_fsq_levels``: an int ``fsq_levels`` in their config names one of these grids.
FSQ_LEVELS = {8: [8, 6, 5], 10: [8, 5, 5, 5], 12: [7, 5, 5, 5, 5], 14: [8, 8, 8, 6, 5],
              16: [8, 8, 8, 5, 5, 5]}


def get_fsq_levels(n: int | list) -> list[int]:
    """RLVR-World's ``get_fsq_levels``: 8 -> [8,6,5], 10 -> [8,5,5,5], 12 -> [7,5,5,5,5],
    14 -> [8,8,8,6,5], 16 -> [8,8,8,5,5,5]; a list is returned as is. Raises ValueError otherwise."""
    if isinstance(n, (list, tuple)):
        return [int(v) for v in n]
    if n not in FSQ_LEVELS:
        raise ValueError(f"fsq_levels: {n!r} is none of RLVR-World's grids {sorted(FSQ_LEVELS)} "
                         f"(or give the levels as a list)")
    return list(FSQ_LEVELS[n])


@dataclass
class CNNFSQConfig:
    """The fields of RLVR-World's ``CNNFSQModel256`` config.json (their names and defaults).

    in_channels: image channels in (must be 3).
    out_channels: image channels out (must be 3).
    down_block_types: encoder blocks (all "DownEncoderBlock2D"); n blocks down-sample 2**(n-1).
    up_block_types: decoder blocks (all "UpDecoderBlock2D"), as many as down blocks.
    block_out_channels: channels of each encoder block (the decoder mirrors them).
    layers_per_block: ResNet layers per block, in the encoder and in the decoder.
    act_fn: activation of the ResNet layers (a diffusers activation name, e.g. "silu").
    latent_channels: channels of the encoder output / decoder input.
    norm_num_groups: GroupNorm groups (must divide every channel count).
    fsq_levels: FSQ levels: an int naming one of their grids (``get_fsq_levels``) or a list.
    norm_type: decoder normalisation; only "group" is supported ("spatial" is refused).
    resolution: frame side in pixels the model was trained at (frames are resolution^2).
    """

    in_channels: int = 3
    out_channels: int = 3
    down_block_types: tuple[str, ...] = ("DownEncoderBlock2D",) * 5
    up_block_types: tuple[str, ...] = ("UpDecoderBlock2D",) * 5
    block_out_channels: tuple[int, ...] = (128, 256, 256, 512, 768)
    layers_per_block: int = 2
    act_fn: str = "silu"
    latent_channels: int = 64
    norm_num_groups: int = 32
    fsq_levels: int | list[int] = 12
    norm_type: str = "group"
    resolution: int = 256

    def __post_init__(self) -> None:
        self.down_block_types = tuple(self.down_block_types)
        self.up_block_types = tuple(self.up_block_types)
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        n = len(self.block_out_channels)
        if self.in_channels != 3 or self.out_channels != 3:
            raise ValueError(f"in_channels/out_channels: expected 3 (RGB), got {self.in_channels}/"
                             f"{self.out_channels}")
        if n < 1 or min(self.block_out_channels) < 1:
            raise ValueError(f"block_out_channels: expected positive channel counts, got "
                             f"{self.block_out_channels}")
        if self.down_block_types != ("DownEncoderBlock2D",) * n:
            raise ValueError(f"down_block_types: expected {n} x 'DownEncoderBlock2D' (one per "
                             f"block_out_channels entry), got {list(self.down_block_types)}")
        if self.up_block_types != ("UpDecoderBlock2D",) * n:
            raise ValueError(f"up_block_types: expected {n} x 'UpDecoderBlock2D', got "
                             f"{list(self.up_block_types)}")
        if self.norm_type != "group":
            raise ValueError(f"norm_type: only 'group' is supported, got {self.norm_type!r}")
        if self.layers_per_block < 1 or self.latent_channels < 1 or self.norm_num_groups < 1:
            raise ValueError("layers_per_block, latent_channels and norm_num_groups must be >= 1")
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError(f"norm_num_groups={self.norm_num_groups} must divide every entry of "
                             f"block_out_channels={self.block_out_channels}")
        if self.resolution < 1 or self.resolution % self.downsample:
            raise ValueError(f"resolution={self.resolution} must be a positive multiple of the "
                             f"down-sampling factor {self.downsample}")
        levels = get_fsq_levels(self.fsq_levels)
        if not levels or min(levels) < 2:
            raise ValueError(f"fsq_levels: expected levels >= 2, got {levels}")

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def levels(self) -> list[int]:
        return get_fsq_levels(self.fsq_levels)

    @classmethod
    def from_json(cls, cfg: dict, source: str | Path) -> CNNFSQConfig:
        """Their config.json (``_``-prefixed diffusers keys and our ``kind`` are skipped);
        ValueError naming ``source`` for another class, an unknown key or a bad value."""
        name = cfg.get("_class_name", CLASS_NAME)
        if name != CLASS_NAME:
            hint = (" (their compressive tokenizer is not readable here yet)"
                    if name == "CompressiveVQModelFSQ" else "")
            raise ValueError(f"{source}: _class_name is {name!r}, expected {CLASS_NAME!r}{hint}")
        fields = {f.name for f in dataclasses.fields(cls)}
        given = {k: v for k, v in cfg.items() if not k.startswith("_") and k != "kind"}
        unknown = sorted(set(given) - fields)
        if unknown:
            raise ValueError(f"{source}: unknown {CLASS_NAME} field(s) {unknown}; known {sorted(fields)}")
        try:
            return cls(**given)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source}: {e}") from e


class RLVRWorldFSQ(FSQ):
    """FSQ exactly as RLVR-World quantises (their ``finite_scalar_quantize.FSQ``, the
    vector-quantize-pytorch formulation of Mentzer et al. 2023): every level is bounded with
    ``half_l = (L - 1)(1 + eps)/2``, ``shift = atanh(offset / half_l)``,
    ``tanh(z + shift) * half_l - offset`` (``offset`` 0.5 for even L), then rounded; an index
    is the mixed-radix number of the digits with the first channel fastest (basis
    ``cumprod([1] + levels[:-1])``). Our own :class:`FSQ` bounds levels > 2 with ``(1 - eps)``
    (unchanged for the tokenizers trained with it); with (1 - eps) 0.3 % of the reference
    sample's indices differ, with (1 + eps) none."""

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        half_l = (self.levels - 1) * (1 + self.eps) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset


class MirroredDecoder(nn.Module):
    """RLVR-World's CNN decoder: the encoder's blocks in reverse (reconstructed from their
    state-dict keys and checked against their decode output).

    ``conv_in`` (latent -> c[-1]), mid-block (2 ResNets + self-attention), then for reversed
    channels ``r = c[::-1]`` up block i maps ``r[i] -> r[i+1]`` (the last one ``r[-1] -> r[-1]``)
    with ``layers_per_block`` ResNets (diffusers' Decoder uses one more) and up-samples after
    them in every block but the first (diffusers: every block but the last); GroupNorm, SiLU,
    ``conv_out``. Input (N, latent, h, w) -> (N, 3, h*2**(n-1), w*2**(n-1)).
    """

    def __init__(self, cfg: CNNFSQConfig):
        super().__init__()
        r, n = list(reversed(cfg.block_out_channels)), len(cfg.block_out_channels)
        g = cfg.norm_num_groups
        self.conv_in = nn.Conv2d(cfg.latent_channels, r[0], 3, padding=1)
        self.mid_block = UNetMidBlock2D(
            in_channels=r[0], resnet_eps=1e-6, resnet_act_fn=cfg.act_fn, output_scale_factor=1,
            resnet_time_scale_shift="default", attention_head_dim=r[0], resnet_groups=g,
            temb_channels=None, add_attention=True)
        self.up_blocks = nn.ModuleList()
        for i in range(n):
            out = r[i + 1] if i < n - 1 else r[-1]
            self.up_blocks.append(get_up_block(
                "UpDecoderBlock2D", num_layers=cfg.layers_per_block, in_channels=r[i],
                out_channels=out, prev_output_channel=None, add_upsample=i > 0, resnet_eps=1e-6,
                resnet_act_fn=cfg.act_fn, resnet_groups=g, attention_head_dim=out,
                temb_channels=None, resnet_time_scale_shift="group"))
        self.conv_norm_out = nn.GroupNorm(num_channels=r[-1], num_groups=g, eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(r[-1], cfg.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(self.conv_act(self.conv_norm_out(x)))


class RLVRWorldTokenizer(nn.Module):
    """RLVR-World's ``CNNFSQModel256`` with our per-frame tokenizer API (see module doc).

    Frames (B,T,3,H,W) in [0,1] (H = W = ``image_size``) <-> ids (B,T,h,w) in [0, vocab_size),
    h = w = H / 2**(n_blocks-1); vocab_size = prod(FSQ levels) (4,375 for their RT-1 model).
    """

    kind = KIND

    def __init__(self, config: CNNFSQConfig, source_meta: dict | None = None):
        super().__init__()
        self.config = config
        self.source_meta = dict(source_meta or {})  # their "_class_name"/"_diffusers_version"
        c = config
        self.encoder = Encoder(
            in_channels=c.in_channels, out_channels=c.latent_channels,
            down_block_types=c.down_block_types, block_out_channels=c.block_out_channels,
            layers_per_block=c.layers_per_block, norm_num_groups=c.norm_num_groups,
            act_fn=c.act_fn, double_z=False, mid_block_add_attention=True)
        dim = len(c.levels)
        self.quant_linear = nn.Conv2d(c.latent_channels, dim, kernel_size=1)
        self.dynamics_quantize = RLVRWorldFSQ(c.levels)
        self.post_quant_linear = nn.Conv2d(dim, c.latent_channels, kernel_size=1)
        self.decoder = MirroredDecoder(c)

    # --- facts the video task reads --------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return math.prod(self.config.levels)

    @property
    def image_size(self) -> int:
        return self.config.resolution

    @property
    def grid(self) -> tuple[int, int]:
        s = self.config.resolution // self.config.downsample
        return (s, s)

    @property
    def tokens_per_frame(self) -> int:
        return self.grid[0] * self.grid[1]

    # --- their encode / decode, frames in [-1, 1] -------------------------------------------
    @torch.no_grad()
    def encode_signed(self, frames: torch.Tensor) -> torch.Tensor:
        """Their ``encode``: frames (B,T,3,H,W) in [-1,1] -> ids (B,T,h,w) int64."""
        check_frames(frames, self.image_size, 5)
        b, t = frames.shape[:2]
        x = frames.reshape(b * t, *frames.shape[2:]).to(self._dtype())
        z = self.quant_linear(self.encoder(x)).permute(0, 2, 3, 1)  # (N,h,w,D)
        _, ids, _ = self.dynamics_quantize(z)
        return ids.reshape(b, t, *ids.shape[-2:]).long()

    @torch.no_grad()
    def decode_signed(self, ids: torch.Tensor) -> torch.Tensor:
        """Their ``decode``: ids (B,T,h,w) -> frames (B,T,3,H,W) float32, about [-1,1],
        unclamped. Ids outside [0, vocab_size) are clamped into it first."""
        if ids.ndim != 4 or tuple(ids.shape[2:]) != self.grid:
            raise ValueError(f"ids: expected (B,T,{self.grid[0]},{self.grid[1]}), got {tuple(ids.shape)}")
        b, t = ids.shape[:2]
        ids = ids.long().clamp(0, self.vocab_size - 1).reshape(b * t, *self.grid)
        codes = self.dynamics_quantize.indices_to_codes(ids).permute(0, 3, 1, 2)  # (N,D,h,w)
        out = self.decoder(self.post_quant_linear(codes.to(self._dtype())))
        return out.float().reshape(b, t, *out.shape[1:])

    # --- our API, frames in [0, 1] ----------------------------------------------------------
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B,T,3,H,W) float in [0,1] -> ids (B,T,h,w) int64 (their encode of 2x-1)."""
        return self.encode_signed(frames.float() * 2 - 1)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B,T,h,w) -> frames (B,T,3,H,W) float32 in [0,1]: (their decode + 1) / 2, clamped."""
        return ((self.decode_signed(ids) + 1) / 2).clamp(0, 1)

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # --- files --------------------------------------------------------------------------------
    def config_json(self) -> dict:
        """config.json: their keys (so their ``from_pretrained`` reads it) plus our ``kind``."""
        cfg = {k: list(v) if isinstance(v, tuple) else v
               for k, v in dataclasses.asdict(self.config).items()}
        meta = {"_class_name": CLASS_NAME, **self.source_meta}
        return {**meta, **cfg, "kind": KIND}

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (their state-dict key names; rename the
        weights to ``diffusion_pytorch_model.safetensors`` to give the directory to their code)."""
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        _atomic_write_bytes(d / WEIGHTS_NAME, lambda p: save_file(state, p))
        text = json.dumps(self.config_json(), indent=2) + "\n"
        _atomic_write_bytes(d / CONFIG_NAME, lambda p: Path(p).write_text(text))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu"
                        ) -> RLVRWorldTokenizer:
        """A directory saved by their code (config.json + diffusion_pytorch_model.safetensors or
        .bin) or by :meth:`save_pretrained`; float32, eval mode, on ``device``. Raises
        FileNotFoundError (no config / weights), ValueError (bad config) or
        :class:`WeightsMismatch` (weights that do not fit the config, keys named)."""
        d = Path(directory)
        cfg_file = d / CONFIG_NAME
        if not cfg_file.is_file():
            raise FileNotFoundError(f"{cfg_file}: missing; expected an RLVR-World {CLASS_NAME} "
                                    f"directory (config.json + diffusion_pytorch_model.safetensors)")
        try:
            raw = json.loads(cfg_file.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{cfg_file}: not valid JSON ({e})") from e
        if not isinstance(raw, dict):
            raise ValueError(f"{cfg_file}: expected a JSON object")
        config = CNNFSQConfig.from_json(raw, cfg_file)
        keep = {k: raw[k] for k in ("_diffusers_version",) if k in raw}
        model = cls(config, keep)
        wfile = next((d / n for n in (WEIGHTS_NAME, *THEIR_WEIGHTS) if (d / n).is_file()), None)
        if wfile is None:
            raise FileNotFoundError(f"{d}: no weights ({WEIGHTS_NAME} or "
                                    f"{' / '.join(THEIR_WEIGHTS)}) next to {CONFIG_NAME}")
        load_weights_strict(model, _read_state(wfile), wfile)
        return model.to(device).eval()


def _read_state(path: Path) -> dict:
    """A state dict from safetensors or a torch ``.bin`` (``weights_only``), floats as float32."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise WeightsMismatch(f"{path}: expected a state dict, got {type(state).__name__}")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


__all__ = ["CNNFSQConfig", "FSQ_LEVELS", "MirroredDecoder", "RLVRWorldFSQ", "RLVRWorldTokenizer",
           "get_fsq_levels"]
