"""RWKV-7 time-mix ("WKV-7") kernels in pure PyTorch, and the optional fla GPU dispatch.

The recurrence (BlinkDL ``rwkv`` 0.8.32 ``RWKV_x070_TMix_seq``, CPU branch; seeds.md §6), per
batch row and head with a state ``S`` of shape (N_v, N_k) (value index first, as BlinkDL's
``state[h]``)::

    S_t = S_{t-1} diag(w_t) + (S_{t-1} a_t) b_t^T + v_t k_t^T        y_t = S_t r_t

with ``w_t = exp(log_w_t)`` in (0, 1], and RWKV-7's ``a = -kk``, ``b = kk * a_gate``.

Two equal forms:
- :func:`wkv7_recurrent`: the recurrence token by token (decode; the reference).
- :func:`wkv7_chunked`: chunks of ``chunk_size`` tokens; inside a chunk the products are
  matrices (a WY-style form: the pseudo-values ``h_t = S_{t-1} a_t`` solve one unit lower
  triangular system), the float32 state is carried from chunk to chunk. Decays enter as
  ``exp(+-cumulative log decay)`` inside one chunk only, so with ``chunk_size <= 64`` and
  RWKV-7's decay bound (``log w >= -exp(-0.5)``) no factor exceeds ``e^39`` (float32 holds
  ``e^88``); the upper triangles, whose products carry ``e^{>0}``, stay finite and are
  selected away (``tril``), never multiplied by 0.

Masked positions (``mask`` False: padding) must leave the state unchanged: callers pass
``log_w = 0``, ``k = 0``, ``a = b = 0`` there, i.e. the identity transition (both forms are
then exact no-ops for that token).

:func:`wkv7` dispatches: fla's Triton kernels (``chunk_rwkv7`` / ``fused_recurrent_rwkv7``)
on CUDA tensors when ``flash-linear-attention`` is importable and ``use_fla`` (fla keeps its
state as (N_k, N_v): transposed here), else the PyTorch forms. Token shift helpers live here
too (:func:`token_shift`).
"""

from __future__ import annotations

import functools
import inspect
import math

import torch
from torch import Tensor

MAX_CHUNK = 64
LOG_DECAY_SCALE = math.exp(-0.5)  # 0.6065306597...: log w = -exp(-0.5) * sigmoid(.)


def wkv7_recurrent(r: Tensor, log_w: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor,
                   state: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Token-by-token WKV-7. r, log_w, k, v, a, b: (B,T,H,N); state (B,H,N,N) float32 [v, k]
    or None (zeros). Returns y (B,T,H,N) float32 and the final state (B,H,N,N) float32.
    Computed in float32 whatever the input dtype."""
    B, T, H, N = r.shape
    r, w, k, v, a, b = (x.float() for x in (r, log_w.exp(), k, v, a, b))
    S = r.new_zeros(B, H, N, N) if state is None else state.float()
    ys = []
    for t in range(T):
        sa = (S @ a[:, t, :, :, None])  # (B,H,N,1)
        S = (S * w[:, t, :, None, :] + sa @ b[:, t, :, None, :]
             + v[:, t, :, :, None] @ k[:, t, :, None, :])
        ys.append((S @ r[:, t, :, :, None])[..., 0])
    y = torch.stack(ys, 1) if ys else r.new_zeros(B, 0, H, N)
    return y, S


def wkv7_chunked(r: Tensor, log_w: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor,
                 state: Tensor | None = None, chunk_size: int = 32) -> tuple[Tensor, Tensor]:
    """Chunked WKV-7, equal to :func:`wkv7_recurrent` (same arguments and returns).

    Per chunk (per row and head; L tokens; ``g_t`` = inclusive cumulative log decay, ``S0`` the
    state before the chunk)::

        h = (I - A_ab)^{-1} (a~ S0^T + A_ak V)      a~_t = a_t e^{g_{t-1}}, k^_s = k_s e^{-g_s},
        Y = r~ S0^T + B_rb h + B_rk V                b^_s = b_s e^{-g_s},    r~_t = r_t e^{g_t}
        S_L = S0 diag(e^{g_L}) + h^T b- + V^T k-     k-_s = k_s e^{g_L-g_s}, b-_s likewise

    with ``A_ab[t,s] = a~_t.b^_s``, ``A_ak[t,s] = a~_t.k^_s`` for s < t and ``B_rb``, ``B_rk``
    the same with ``r~`` for s <= t. Differentiable (``torch.linalg.solve_triangular``).
    Raises ValueError unless 1 <= chunk_size <= 64.
    """
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise ValueError(f"chunk_size must be in [1, {MAX_CHUNK}], got {chunk_size}")
    B, T, H, N = r.shape
    S = r.new_zeros(B, H, N, N, dtype=torch.float32) if state is None else state.float()
    # (B,H,T,N) float32
    r, log_w, k, v, a, b = (x.float().transpose(1, 2).contiguous() for x in (r, log_w, k, v, a, b))
    ys = []
    for c0 in range(0, T, chunk_size):
        sl = slice(c0, min(c0 + chunk_size, T))
        y, S = _chunk(r[:, :, sl], log_w[:, :, sl], k[:, :, sl], v[:, :, sl], a[:, :, sl],
                      b[:, :, sl], S)
        ys.append(y)
    y = torch.cat(ys, 2) if ys else r.new_zeros(B, H, 0, N)
    return y.transpose(1, 2), S


def _chunk(r, log_w, k, v, a, b, S0):
    """One chunk: inputs (B,H,L,N) float32, S0 (B,H,N,N) -> y (B,H,L,N), S_L."""
    L = r.shape[2]
    g = log_w.cumsum(2)  # inclusive, <= 0, >= -0.61 L
    g_prev = g - log_w
    g_last = g[:, :, -1:]
    r_t, a_t = r * g.exp(), a * g_prev.exp()
    inv = (-g).exp()
    k_h, b_h = k * inv, b * inv
    tail = (g_last - g).exp()
    k_bar, b_bar = k * tail, b * tail
    # the upper triangles hold e^{+g} products (finite for L <= 64): selected away by tril
    A_ab = (a_t @ b_h.transpose(-1, -2)).tril(-1)
    A_ak = (a_t @ k_h.transpose(-1, -2)).tril(-1)
    B_rb = (r_t @ b_h.transpose(-1, -2)).tril()
    B_rk = (r_t @ k_h.transpose(-1, -2)).tril()
    S0T = S0.transpose(-1, -2)  # (B,H,Nk,Nv)
    rhs = a_t @ S0T + A_ak @ v  # (B,H,L,Nv)
    eye = torch.eye(L, dtype=r.dtype, device=r.device)
    h = torch.linalg.solve_triangular(eye - A_ab, rhs, upper=False, unitriangular=True)
    y = r_t @ S0T + B_rb @ h + B_rk @ v
    S = S0 * g_last.exp() + h.transpose(-1, -2) @ b_bar + v.transpose(-1, -2) @ k_bar
    return y, S


# ------------------------------------------------------------------------------ dispatch
@functools.lru_cache(maxsize=1)
def fla_ops():
    """fla's ``(chunk_rwkv7, fused_recurrent_rwkv7)``, or None when fla is not installed."""
    try:
        from fla.ops.rwkv7 import chunk_rwkv7, fused_recurrent_rwkv7
    except Exception:  # not installed, or no Triton/CUDA build
        return None
    return chunk_rwkv7, fused_recurrent_rwkv7


def wkv7(r: Tensor, log_w: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor,
         state: Tensor | None, mode: str = "chunk", chunk_size: int = 32,
         use_fla: bool = True) -> tuple[Tensor, Tensor]:
    """WKV-7 by ``mode``: "chunk" (chunked for T > 1, the recurrence for one token) or
    "recurrent" (token by token always). On CUDA with fla installed and ``use_fla``, fla's
    kernels (``chunk_rwkv7`` for T > 1, ``fused_recurrent_rwkv7`` otherwise; scale 1) run
    instead. Shapes as :func:`wkv7_recurrent`; y float32, state (B,H,N,N) float32 [v, k].
    The PyTorch forms run with autocast off: their products stay float32 under bf16 autocast
    (the chunked form's ``e^{+-g}`` factors need float32's range and precision)."""
    ops = fla_ops() if (use_fla and r.is_cuda) else None
    if ops is not None:
        chunk_rwkv7, fused_recurrent_rwkv7 = ops
        fn = chunk_rwkv7 if (mode == "chunk" and r.shape[1] > 1) else fused_recurrent_rwkv7
        h0 = None if state is None else state.float().transpose(-1, -2).contiguous()  # [k, v]
        # fla >= 0.2: ``w`` is the log decay; some older releases named it ``log_w`` (and
        # meant ``log_w = -exp(w)`` by ``w``)
        decay = "log_w" if "log_w" in inspect.signature(fn).parameters else "w"
        out = fn(r=r.float(), k=k.float(), v=v.float(), a=a.float(), b=b.float(),
                 scale=1.0, initial_state=h0, output_final_state=True, **{decay: log_w.float()})
        y, hT = out[0], out[1]  # some releases append more outputs
        return y.float(), hT.float().transpose(-1, -2)
    with torch.autocast(r.device.type, enabled=False):  # float32 math under bf16 autocast too
        if mode == "chunk" and r.shape[1] > 1:
            return wkv7_chunked(r, log_w, k, v, a, b, state, chunk_size)
        return wkv7_recurrent(r, log_w, k, v, a, b, state)


# ------------------------------------------------------------------------------ token shift
def token_shift(x: Tensor, mask: Tensor | None, prev: Tensor | None) -> tuple[Tensor, Tensor]:
    """The previous token's features for each position, skipping padding.

    x (B,T,C); mask (B,T) bool (True = real token) or None (all real); prev (B,C), the last
    real token before this call (the cache), or None (zeros: the sequence start). Returns
    ``x_prev`` (B,T,C) — for position t the features of the last real position before t
    (``prev`` when none) — and the new cache (B,C): the last real position's features
    (``prev`` for a row with no real token here). Padding is thus invisible: a padded row
    shifts like the unpadded one. Differentiable in ``x`` and ``prev``.
    """
    B, T, C = x.shape
    if prev is None:
        prev = x.new_zeros(B, C)
    src = torch.cat([prev[:, None].to(x.dtype), x], 1)  # (B,T+1,C): index 0 = before the call
    if mask is None:
        return src[:, :-1], x[:, -1]
    pos = torch.arange(1, T + 1, device=x.device).expand(B, T)
    last = torch.where(mask, pos, torch.zeros_like(pos)).cummax(1).values  # last real <= t (0: none)
    before = torch.cat([last.new_zeros(B, 1), last[:, :-1]], 1)  # last real < t
    x_prev = src.gather(1, before[..., None].expand(B, T, C))
    new = src.gather(1, last[:, -1:, None].expand(B, 1, C))[:, 0]
    return x_prev, new
