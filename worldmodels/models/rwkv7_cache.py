"""The RWKV-7 recurrent state as a cache object (what ``past_key_values`` holds for RWKV-7).

Per layer: the time-mix token shift ``x_prev`` (B,C), the WKV state (B,H,N,N) float32
(value index first, BlinkDL's layout) and the channel-mix token shift (B,C) — constant in the
sequence length, so rollouts run in constant memory. ``v_first`` is not state: the model
recomputes it per position (BlinkDL and fla alike).

It offers the cache operations the rollout engine uses on transformers' caches
(``get_seq_length``, ``batch_repeat_interleave`` for a shared prefill, ``batch_select_indices``
/ ``reorder_cache`` for row selection), and :meth:`detach` for truncated BPTT. A recurrent
state cannot be rolled back: :meth:`crop` raises below the length seen.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

LayerState = tuple[Tensor, Tensor, Tensor]  # (attn shift (B,C), wkv (B,H,N,N), ffn shift (B,C))


class RWKV7State:
    """Recurrent state of an RWKV-7 model, filled by its forward (``use_cache=True``).

    layers: per layer a (attn shift, wkv state, ffn shift) tuple, or None before the first
        forward. seen: tokens fed so far (padding included, like a KV cache's length).
    """

    is_compileable = False  # not a transformers StaticCache: the rollout engine keeps it dynamic

    def __init__(self, num_layers: int | None = None):
        self.layers: list[LayerState | None] = [None] * (num_layers or 0)
        self.seen = 0

    def __len__(self) -> int:
        return sum(s is not None for s in self.layers)

    def __getitem__(self, layer_idx: int) -> LayerState | None:
        return self.layers[layer_idx] if layer_idx < len(self.layers) else None

    def update(self, layer_idx: int, state: LayerState) -> None:
        """Set layer ``layer_idx``'s state (grows the list as needed)."""
        if layer_idx >= len(self.layers):
            self.layers.extend([None] * (layer_idx + 1 - len(self.layers)))
        self.layers[layer_idx] = state

    def get_seq_length(self, layer_idx: int | None = 0) -> int:
        """Tokens fed so far (the position the next token takes, counting padding)."""
        return self.seen

    def get_max_cache_shape(self, layer_idx: int = 0) -> int:
        return -1  # unbounded: the state does not grow

    @property
    def batch_size(self) -> int | None:
        first = next((s for s in self.layers if s is not None), None)
        return None if first is None else int(first[0].shape[0])

    def _map(self, fn: Callable[[Tensor], Tensor]) -> None:
        self.layers = [None if s is None else tuple(fn(t) for t in s) for s in self.layers]

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Each row repeated ``repeats`` times in place (row i -> rows i*repeats .. +repeats-1)."""
        self._map(lambda t: t.repeat_interleave(repeats, 0))

    def batch_select_indices(self, indices: Tensor) -> None:
        """Keep the rows ``indices`` (in that order), in place."""
        self._map(lambda t: t.index_select(0, indices.to(t.device)))

    def batch_index_copy(self, indices: Tensor, src: RWKV7State) -> None:
        """Rows ``indices`` take ``src``'s rows (in that order), in place; ``seen`` becomes
        ``src.seen`` (the rows not in ``src`` were fed only padding meanwhile). The rollout
        engine's merge of rows it left out of decode steps (``rollout_cache`` compaction)."""
        self.layers = [None if s is None else tuple(t.index_copy(0, indices.to(t.device), u)
                                                   for t, u in zip(s, o, strict=True))
                       for s, o in zip(self.layers, src.layers, strict=True)]
        self.seen = src.seen

    def reorder_cache(self, beam_idx: Tensor) -> None:
        """Rows reordered as ``beam_idx`` (transformers' beam search hook), in place."""
        self.batch_select_indices(beam_idx)

    def detach(self) -> RWKV7State:
        """The state with its autograd history cut (truncated BPTT), in place; returns self."""
        self._map(lambda t: t.detach())
        return self

    def to(self, *args, **kwargs) -> RWKV7State:
        """Move the tensors (keeping the WKV state float32), in place; returns self."""
        self.layers = [None if s is None else (s[0].to(*args, **kwargs),
                                               s[1].to(*args, **kwargs).float(),
                                               s[2].to(*args, **kwargs)) for s in self.layers]
        return self

    def crop(self, max_length: int) -> None:
        """Recurrent states cannot forget tokens: allowed only as a no-op (``max_length`` >= the
        length seen, or -1). Raises ValueError otherwise."""
        if max_length < 0 or max_length >= self.seen:
            return
        raise ValueError(f"RWKV7State.crop({max_length}): a recurrent state cannot drop tokens "
                         f"({self.seen} seen); re-run the prefix instead")

    def reset(self) -> None:
        self.layers = [None] * len(self.layers)
        self.seen = 0


def zeros_like_state(batch: int, hidden: int, heads: int, head_dim: int, num_layers: int,
                     device=None, dtype=torch.float32) -> RWKV7State:
    """A state of zeros for ``batch`` rows (what the model starts from)."""
    st = RWKV7State(num_layers)
    for i in range(num_layers):
        st.layers[i] = (torch.zeros(batch, hidden, device=device, dtype=dtype),
                        torch.zeros(batch, heads, head_dim, head_dim, device=device),
                        torch.zeros(batch, hidden, device=device, dtype=dtype))
    return st
