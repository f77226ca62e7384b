"""RWKV-7 layers (time-mix, channel-mix, block) with fla's module and parameter names.

Names follow fla's ``RWKV7Attention`` / ``RWKV7FeedForward`` / ``RWKV7Block`` (seeds.md §6), so
an fla Hugging Face checkpoint loads as it is and a BlinkDL ``.pth`` needs only the renaming in
``models/rwkv7_convert.py``. The formulas are BlinkDL's (``rwkv`` 0.8.32,
``RWKV_x070_TMix_seq`` / ``RWKV_x070_CMix_seq``). Layers are functional in their recurrent
state: they take the previous state and return the new one (the model writes it to the cache),
so gradient checkpointing may replay them.

Padding (``mask`` False) is invisible: token shift skips it and the WKV state is left
unchanged there (identity transition), so a left-padded row gives the unpadded row's outputs
at its real positions, and a row that stopped inside a decode batch keeps its state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worldmodels.models.rwkv7_ops import LOG_DECAY_SCALE, token_shift, wkv7

try:  # transformers >= 4.5x: blocks that ``gradient_checkpointing_enable`` switches
    from transformers.modeling_layers import GradientCheckpointingLayer
except ImportError:  # pragma: no cover
    GradientCheckpointingLayer = nn.Module


class LoRA(nn.Module):
    """fla's low-rank MLP ``lora = Sequential(Linear(C,D,no bias), act, Linear(D,out,bias))``:
    RWKV-7's ``w1/w2/w0`` (tanh), ``a1/a2/a0`` and ``v1/v2/v0`` (no activation), ``g1/g2``
    (sigmoid, no bias). x (...,C) -> (...,out)."""

    def __init__(self, dim: int, out: int, rank: int, activation: str | None, bias: bool = True):
        super().__init__()
        act = {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), None: nn.Identity()}[activation]
        self.lora = nn.Sequential(nn.Linear(dim, rank, bias=False), act, nn.Linear(rank, out, bias=bias))

    def forward(self, x: Tensor) -> Tensor:
        return self.lora(x)


class RWKV7Attention(nn.Module):
    """The RWKV-7 time-mix of layer ``layer_idx``. forward(x (B,T,C), mask (B,T) bool | None,
    state (shift (B,C), wkv (B,H,N,N) float32) | None, v_first (B,T,C) | None) ->
    (out (B,T,C), v_first, new state). Layer 0 produces ``v_first`` (its own v, per position);
    the other layers mix towards it (``v = lerp(v, v_first, sigmoid(v_lora(x_v)))``)."""

    def __init__(self, config, layer_idx: int):
        super().__init__()
        C, H, N = config.hidden_size, config.num_heads, config.head_dim
        self.layer_idx, self.num_heads, self.head_dim = layer_idx, H, N
        self.mode, self.chunk_size, self.use_fla = config.attn_mode, config.chunk_size, config.use_fla
        for name in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g"):
            setattr(self, name, nn.Parameter(torch.zeros(1, 1, C)))
        self.k_k = nn.Parameter(torch.zeros(C))
        self.k_a = nn.Parameter(torch.zeros(C))
        self.r_k = nn.Parameter(torch.zeros(H, N))
        self.r_proj = nn.Linear(C, C, bias=False)
        self.k_proj = nn.Linear(C, C, bias=False)
        self.v_proj = nn.Linear(C, C, bias=False)
        self.o_proj = nn.Linear(C, C, bias=False)
        self.w_lora = LoRA(C, C, config.decay_low_rank_dim, "tanh")
        if layer_idx != 0:
            self.v_lora = LoRA(C, C, config.v_low_rank_dim, None)
        self.a_lora = LoRA(C, C, config.a_low_rank_dim, None)
        self.g_lora = LoRA(C, C, config.gate_low_rank_dim, "sigmoid", bias=False)
        self.g_norm = nn.GroupNorm(H, C, eps=config.g_norm_eps)

    def forward(self, x: Tensor, mask: Tensor | None, state, v_first: Tensor | None):
        B, T, C = x.shape
        H, N = self.num_heads, self.head_dim
        shift, S = (None, None) if state is None else state
        prev, shift = token_shift(x, mask, shift)
        xx = prev - x
        xr, xw, xk = x + xx * self.x_r, x + xx * self.x_w, x + xx * self.x_k
        xv, xa, xg = x + xx * self.x_v, x + xx * self.x_a, x + xx * self.x_g
        r = self.r_proj(xr)
        log_w = -LOG_DECAY_SCALE * torch.sigmoid(self.w_lora(xw).float())
        k = self.k_proj(xk)
        v = self.v_proj(xv)
        if self.layer_idx == 0:
            v_first = v
        else:
            v = v + (v_first - v) * torch.sigmoid(self.v_lora(xv))
        a = torch.sigmoid(self.a_lora(xa))
        g = self.g_lora(xg)
        kk = F.normalize((k * self.k_k).view(B, T, H, N), dim=-1, p=2.0)
        k = k * (1 + (a - 1) * self.k_a)
        if mask is not None:  # padding: identity transition (no decay, no write)
            m = mask[..., None].to(k.dtype)
            log_w, k, kk = log_w * m, k * m, kk * m[..., None]
        heads = (B, T, H, N)
        y, S = wkv7(r.view(heads), log_w.view(heads), k.view(heads), v.view(heads), -kk,
                    kk * a.view(heads), S, self.mode, self.chunk_size, self.use_fla)
        y = self.g_norm(y.reshape(B * T, C).to(x.dtype)).view(B, T, C)
        bonus = (r * k * self.r_k.flatten()).view(heads).sum(-1, keepdim=True) * v.view(heads)
        out = self.o_proj((y + bonus.view(B, T, C)) * g)
        return out, v_first, (shift, S)


class RWKV7FeedForward(nn.Module):
    """RWKV-7 channel-mix: ``value(relu(key(x + (x_prev - x) * x_k))^2)``. forward(x (B,T,C),
    mask, shift (B,C) | None) -> (out (B,T,C), new shift (B,C))."""

    def __init__(self, config, layer_idx: int):
        super().__init__()
        C = config.hidden_size
        self.layer_idx = layer_idx
        self.x_k = nn.Parameter(torch.zeros(C))
        self.key = nn.Linear(C, config.intermediate_size, bias=False)
        self.value = nn.Linear(config.intermediate_size, C, bias=False)

    def forward(self, x: Tensor, mask: Tensor | None, shift: Tensor | None):
        prev, shift = token_shift(x, mask, shift)
        h = torch.relu(self.key(x + (prev - x) * self.x_k)) ** 2
        return self.value(h), shift


class RWKV7Block(GradientCheckpointingLayer):
    """One layer: ``x = x + attn(attn_norm(x)); x = x + ffn(ffn_norm(x))``, layer 0 first
    applying ``pre_norm`` to the embeddings (BlinkDL's ``ln0``). forward(hidden (B,T,C), mask,
    state (attn shift, wkv, ffn shift) | None, v_first) -> (hidden, v_first, new state)."""

    def __init__(self, config, layer_idx: int):
        super().__init__()
        C, eps, bias = config.hidden_size, config.norm_eps, config.norm_bias
        self.layer_idx = layer_idx
        if layer_idx == 0:
            self.pre_norm = nn.LayerNorm(C, eps=eps, bias=bias)
        self.attn_norm = nn.LayerNorm(C, eps=eps, bias=bias)
        self.attn = RWKV7Attention(config, layer_idx)
        self.ffn_norm = nn.LayerNorm(C, eps=eps, bias=bias)
        self.ffn = RWKV7FeedForward(config, layer_idx)

    def forward(self, hidden: Tensor, mask: Tensor | None, state, v_first: Tensor | None):
        if self.layer_idx == 0:
            hidden = self.pre_norm(hidden)
        att_state, ffn_state = (None, None) if state is None else (state[:2], state[2])
        out, v_first, (shift, S) = self.attn(self.attn_norm(hidden), mask, att_state, v_first)
        hidden = hidden + out
        out, ffn_shift = self.ffn(self.ffn_norm(hidden), mask, ffn_state)
        return hidden + out, v_first, (shift, S, ffn_shift)
