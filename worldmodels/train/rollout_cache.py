"""The rollout engine's model stepper: what feeds tokens through the model between two samples.

One :class:`Stepper` serves one :func:`worldmodels.train.rollout.rollout` call. It adds three
things to "call the model with a growing KV cache", none of which changes a sampled token:

- **One prefill per distinct prompt.** With ``group_size`` G > 1 (GRPO rolls out G adjacent
  copies of each prompt: ``task.repeat`` is item-major) and every group's rows identical up to
  the first sampled token (ids and mask), the first forward runs on one row per group and its KV
  cache and last-position logits are expanded to the B rows (transformers'
  ``Cache.batch_repeat_interleave``). A group whose rows differ, or a cache that cannot be
  expanded, falls back to the plain prefill of all B rows (correct, only slower).
- **A static cache.** After the prefill the keys/values move into a transformers
  ``StaticCache``, and the attention mask lives in one preallocated (B, capacity) buffer: every
  decode step writes in place (the dynamic path concatenates every layer's cache and the mask
  at every step). The cache is allocated ``DecodeConfig.static_grow`` positions past what is fed
  and grows by that much when full (up to the whole sequence), so a step attends over about the length
  generated so far, not over ``max_new_tokens`` of mostly empty slots (answers are usually far
  shorter than their cap). A compiled step gets the whole sequence at once (one shape). Models whose
  cache is not plain full-attention layers, or whose class does not declare
  ``_can_compile_fullgraph``, keep transformers' dynamic cache.
- **Compaction**: rows that have stopped leave the decode steps, on the static cache
  (permuted to the front, the cache narrowed) and on a recurrent state (RWKV-7's
  ``RWKV7State``: the fed rows' state is selected with ``batch_select_indices``, the whole
  state parked and merged back with ``batch_index_copy`` when every row is fed again).
- **A compiled decode step** (``DecodeConfig.compile``; ``cuda_graphs``: mode "reduce-overhead",
  i.e. CUDA graphs) for the one-token steps on the static cache.

Position ids are counted per row (real tokens fed so far), which equals
:func:`~worldmodels.train.rollout.positions_from_mask` over the whole mask.
"""

from __future__ import annotations

import copy
import inspect
import warnings
import weakref
from dataclasses import dataclass

import torch
from torch import Tensor

CACHE_MODES = ("auto", "static", "dynamic")
COMPILE_BUCKET = 64  # compiled steps see cache lengths rounded up to a multiple of this


@dataclass(frozen=True)
class DecodeConfig:
    """How the rollout engine runs the model. Speed only: samples do not depend on it (the
    static cache and the compiled step agree with the dynamic path to float rounding).

    share_prefill: prefill each distinct prompt once per group of ``group_size`` adjacent rows
        (``RolloutRequest.group_size``) and share its KV cache; False feeds all B rows (the
        engine's behaviour before sharing; same samples, for comparison).
    cache: "auto" (static where the model supports it, else dynamic) | "static" (ValueError
        where unsupported) | "dynamic" (transformers' growing cache: the original path).
    compact: on the static cache or a recurrent state, leave rows that have stopped out of
        the decode steps once at most half of the rows fed are still running (answers of mixed
        lengths: the batch shrinks as rows stop; their cache rows are kept, so a later segment
        feeds them again). Not with ``compile`` (a new batch size would recompile).
    compile: ``torch.compile`` the one-token decode step on the static cache (ignored on the
        dynamic one). Off by default: on CPU it costs minutes of compilation per model and
        shape for about a quarter off a step (docs/rollout.md).
    cuda_graphs: compile with mode "reduce-overhead" (CUDA graphs replay the whole step);
        needs a CUDA model; implies ``compile``.
    static_grow: positions the eager static cache holds past what has been fed; when full it
        is reallocated ``static_grow`` positions longer (at most the whole sequence). A step
        attends over every allocated position, so this keeps attention near the length
        generated so far when answers stop far short of ``max_new_tokens``. 0: allocate the
        whole sequence at once (the behaviour before growth; what a compiled step always gets).
    """

    share_prefill: bool = True
    cache: str = "auto"
    compact: bool = True
    compile: bool = False
    cuda_graphs: bool = False
    static_grow: int = 32

    def __post_init__(self) -> None:
        if self.cache not in CACHE_MODES:
            raise ValueError(f"DecodeConfig.cache must be one of {CACHE_MODES}, got {self.cache!r}")
        for name in ("share_prefill", "compact", "compile", "cuda_graphs"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"DecodeConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if isinstance(self.static_grow, bool) or not isinstance(self.static_grow, int) or self.static_grow < 0:
            raise ValueError(f"DecodeConfig.static_grow must be an int >= 0, got {self.static_grow!r}")


# ------------------------------------------------------------------------ cache keyword
_CACHE_KEYWORD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _forward_params(module) -> dict:
    try:
        return dict(inspect.signature(type(module).forward).parameters)
    except (TypeError, ValueError, AttributeError):
        return {}


def _unwrap(m):
    """The module a wrapper forwards to (peft, DDP/FSDP, torch.compile), or None."""
    if hasattr(m, "get_base_model"):
        return m.get_base_model()
    for attr in ("module", "_orig_mod"):
        if isinstance(getattr(m, attr, None), torch.nn.Module):
            return getattr(m, attr)
    return None


def cache_keyword(model) -> str:
    """The keyword under which ``model.forward`` takes (and its output returns) the KV cache.

    transformers >= 5.2x names it ``cache`` and deprecates ``past_key_values`` (one
    FutureWarning per forward); earlier versions know only ``past_key_values``. Decided once
    per model from the forward signature, looking through wrappers whose forward takes
    ``**kwargs`` (peft's ``get_base_model()``, DDP/FSDP's ``.module``, ``torch.compile``'s
    ``_orig_mod``); ``past_key_values`` when nothing names either.
    """
    try:
        return _CACHE_KEYWORD[model]
    except (KeyError, TypeError):
        pass
    key, m = "past_key_values", model
    for _ in range(8):
        params = _forward_params(m)
        if "cache" in params:
            key = "cache"
            break
        if "past_key_values" in params or (m := _unwrap(m)) is None:
            break
    try:
        _CACHE_KEYWORD[model] = key
    except TypeError:  # not weak-referenceable: decide again next time
        pass
    return key


def output_cache(out):
    """The cache a forward returned, whichever field holds it: ``cache`` (transformers
    >= 5.2x) or ``past_key_values`` (earlier 5.x, and models written for them). A model's
    forward can take ``cache`` while its output class, from an older transformers, still
    names the field ``past_key_values`` (our RWKV-7 on 5.17), so the two are read apart from
    :func:`cache_keyword`. None when the output holds no cache."""
    cache = getattr(out, "cache", None)
    return getattr(out, "past_key_values", None) if cache is None else cache


def is_recurrent_cache(cache) -> bool:
    """True for a cache of constant size that can be cut from the graph (``detach()``): a
    recurrent state (RWKV-7's), not a KV cache."""
    return cache is not None and callable(getattr(cache, "detach", None))


def _compactable(cache) -> bool:
    """A recurrent state whose rows can be selected and merged back."""
    return is_recurrent_cache(cache) and all(
        callable(getattr(cache, m, None)) for m in ("batch_select_indices", "batch_index_copy"))


# ------------------------------------------------------------------------ static cache
def _static_config(model):
    """The config of the transformers decoder inside ``model`` (looking through wrappers) when
    its class declares ``_can_compile_fullgraph`` (its forward works with compileable caches),
    else None."""
    m = model
    for _ in range(8):
        if getattr(type(m), "_can_compile_fullgraph", False):
            cfg = getattr(m, "config", None)
            if cfg is None or getattr(cfg, "is_encoder_decoder", False):
                return None
            return cfg.get_text_config(decoder=True) if hasattr(cfg, "get_text_config") else cfg
        if (m := _unwrap(m)) is None:
            return None
    return None


_STATIC: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _static_from(model, cfg, cache, capacity: int, reuse: bool = False):
    """A transformers ``StaticCache`` (decoder config ``cfg``) of ``capacity`` positions holding
    ``cache``'s keys and values (a ``DynamicCache`` of full-attention layers), or None where
    that does not apply:
    another cache type, sliding/linear layers, or a transformers whose static layers do not
    count their own write position (``cumulative_length``, transformers >= 5.2x).

    ``reuse``: keep the cache with the model and reuse it (reset) when batch, capacity, dtype
    and device match, so a compiled step sees the same tensors from call to call."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer, StaticCache, StaticLayer
    except ImportError:
        return None
    if type(cache) is not DynamicCache or not all(type(la) is DynamicLayer for la in cache.layers):
        return None
    if not hasattr(StaticLayer(max_cache_len=1), "cumulative_length"):
        return None
    k0 = cache.layers[0].keys
    key = (k0.shape[0], capacity, k0.dtype, k0.device)
    static = _STATIC.get(model, {}).get(key) if reuse else None
    if static is not None:
        static.reset()
    else:
        try:
            static = StaticCache(config=cfg, max_cache_len=capacity)
        except (TypeError, ValueError, AttributeError):
            return None
        if len(static.layers) != len(cache.layers) or not all(type(la) is StaticLayer for la in static.layers):
            return None
        if reuse:
            _STATIC[model] = {key: static}  # one per model: the last shape used
    for i, la in enumerate(cache.layers):
        static.update(la.keys, la.values, i)
    return static


# ------------------------------------------------------------------------ compiled step
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_step(model, cuda_graphs: bool):
    """``torch.compile`` of one decode step, one per model and mode (kept while the model lives)."""
    per_model = _COMPILED.setdefault(model, {})
    if cuda_graphs not in per_model:
        key = cache_keyword(model)

        def step(ids: Tensor, mask: Tensor, pos: Tensor, cache) -> Tensor:
            out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                        logits_to_keep=1, **{key: cache})
            return out.logits[:, -1]

        per_model[cuda_graphs] = torch.compile(
            step, dynamic=False, mode="reduce-overhead" if cuda_graphs else "default")
    return per_model[cuda_graphs]


# ------------------------------------------------------------------------------ stepper
class Stepper:
    """Feeds tokens through ``model`` for a batch of ``batch`` rows and at most ``capacity``
    positions (prompt + completion), with the KV cache and an attention mask when ``masked``.

    ``group_size``: adjacent rows that share one prompt (see the module docstring).
    ``shared_prefill`` / ``static`` tell, after the first :meth:`feed`, what was used;
    ``rows_fed`` counts the rows fed by each call (a compacted step feeds fewer).
    Raises ValueError when ``cfg.cache == "static"`` and the model does not support it, or
    ``cfg.cuda_graphs`` on a non-CUDA device.
    """

    def __init__(self, model, batch: int, capacity: int, masked: bool, group_size: int,
                 cfg: DecodeConfig, device: torch.device):
        if cfg.cuda_graphs and device.type != "cuda":
            raise ValueError(f"DecodeConfig.cuda_graphs needs a CUDA model, got device {device}")
        self.model, self.key, self.cfg = model, cache_keyword(model), cfg
        self.compiled = cfg.compile or cfg.cuda_graphs
        if self.compiled:  # a compiled step is specialised to the cache length: round it up
            capacity = -(-capacity // COMPILE_BUCKET) * COMPILE_BUCKET
        self.B, self.capacity, self.masked = batch, capacity, masked
        self.alloc = capacity  # positions the static cache holds (grows up to capacity)
        self.group = group_size if cfg.share_prefill and group_size > 1 and batch % group_size == 0 else 1
        self.cache = None
        self.static = self.shared_prefill = False
        self.fed = 0
        self.rows_fed: list[int] = []
        # per-row state in *physical* order: the static cache may hold the rows permuted, the
        # ones still fed first (compaction); rows[j] = the request row at physical row j
        self.mask = torch.zeros(batch, capacity, dtype=torch.long, device=device)  # (B, capacity)
        self.count = torch.zeros(batch, dtype=torch.long, device=device)  # real tokens fed per row
        self.rows = torch.arange(batch, device=device)
        self.n = batch  # physical rows [0, n) are fed
        self.permuted = False
        self._full: list[tuple[Tensor, Tensor]] = []  # the static layers' whole (B,...) tensors
        self.recurrent = False  # a recurrent state compacted by row selection (request order)
        self.sub: Tensor | None = None  # the request rows fed (None: all)
        self.parked = None  # the whole state while ``sub`` rows are fed

    def feed(self, ids: Tensor, mask: Tensor, need: Tensor | None = None) -> Tensor:
        """ids (B,n) int64, mask (B,n) int64 (1 = real) -> logits (B,V) at the last position.

        ``need`` (B,) bool: the rows whose logits matter (default all). On the static cache,
        once at most half of the rows fed are needed (and their tokens are all padding,
        mask 0), the rest are left out of later steps (``DecodeConfig.compact``); their logits
        come back as 0. A row with a real token is always fed.
        """
        n = ids.shape[1]
        if self.fed + n > self.capacity:
            raise RuntimeError(f"Stepper capacity {self.capacity} exceeded ({self.fed} + {n})")
        if self.cache is None:
            return self._prefill(ids, self._record(ids, mask))
        if self.recurrent:
            return self._feed_recurrent(ids, mask, need)
        if not self.static:
            pos = self._record(ids, mask)
            if self.masked:
                return self._forward(ids, self.mask[:, :self.fed], pos)
            return self._forward(ids, None, None)
        if self.cfg.compact and not self.compiled:
            self._compact(mask.bool().any(1) if need is None else need | mask.bool().any(1))
        if self.fed + n > self.alloc:
            self._grow(self.fed + n)
        if self.permuted:
            ids, mask = ids[self.rows], mask[self.rows]
        pos = self._record(ids, mask)[:self.n]
        ids, m = ids[:self.n], self.mask[:self.n, :self.alloc]
        self.rows_fed.append(self.n)
        if n == 1 and self.compiled:
            logits = _compiled_step(self.model, self.cfg.cuda_graphs)(ids, m, pos, self.cache)
            logits = logits.clone() if self.cfg.cuda_graphs else logits  # a replay reuses its output
        else:
            logits = self._forward(ids, m, pos)
        if not self.permuted:
            return logits
        out = logits.new_zeros(self.B, logits.shape[-1])
        return out.index_copy_(0, self.rows[:self.n], logits)

    def _record(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Write ``mask`` (physical order) at the next columns; the new tokens' positions (B,n)."""
        n = ids.shape[1]
        self.mask[:, self.fed:self.fed + n] = mask
        pos = (self.count[:, None] + mask.cumsum(1) - 1).clamp(min=0)  # == positions_from_mask
        self.count += mask.sum(1)
        self.fed += n
        return pos

    def _forward(self, ids: Tensor, mask: Tensor | None, pos: Tensor | None) -> Tensor:
        kw = {} if mask is None else {"attention_mask": mask, "position_ids": pos}
        out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1, **{self.key: self.cache}, **kw)
        self.cache = output_cache(out)
        return out.logits[:, -1]

    def _prefill(self, ids: Tensor, pos: Tensor) -> Tensor:
        G = self.group if self.group > 1 and self._groups_identical(ids) else 1
        if self.group > 1 and G == 1:
            warnings.warn(f"rollout: group_size {self.group} given but the rows of a group differ "
                          "before the first sampled token; prefilling every row", stacklevel=4)
        rows = slice(None, None, G)
        self.rows_fed.append(self.B // G)
        logits = self._forward(ids[rows], self.mask[rows, :self.fed] if self.masked else None,
                               pos[rows] if self.masked else None)
        if G > 1:
            if hasattr(self.cache, "batch_repeat_interleave"):
                self.cache.batch_repeat_interleave(G)
                logits = logits.repeat_interleave(G, 0)
                self.shared_prefill = True
            else:  # a cache we cannot expand: feed every row
                self.cache = None
                self.rows_fed.append(self.B)
                logits = self._forward(ids, self.mask[:, :self.fed] if self.masked else None,
                                       pos if self.masked else None)
        if self.cfg.cache != "dynamic":
            cfg = _static_config(self.model)
            grow = 0 if self.compiled else self.cfg.static_grow
            alloc = min(self.capacity, self.fed + grow) if grow else self.capacity
            static = None if cfg is None else _static_from(self.model, cfg, self.cache, alloc,
                                                           self.compiled)
            if static is None and self.cfg.cache == "static":
                raise ValueError(f"DecodeConfig.cache='static': {type(self.model).__name__} with a "
                                 f"{type(self.cache).__name__} does not support transformers' StaticCache")
            if static is not None:
                self.cache, self.static, self.alloc = static, True, alloc
                self._full = [(la.keys, la.values) for la in static.layers]
        self.recurrent = not self.static and self.cfg.compact and self.masked and _compactable(self.cache)
        return logits

    def _groups_identical(self, ids: Tensor) -> bool:
        G, n = self.group, ids.shape[1]
        v, m = ids.view(-1, G, n), self.mask[:, :self.fed].view(-1, G, self.fed)
        return bool((v == v[:, :1]).all()) and bool((m == m[:, :1]).all())

    def _compact(self, need: Tensor) -> None:
        """Keep the physical rows fed to those ``need`` (B,) bool, request order) asks for: widen
        to every row when one outside is needed, narrow to the needed ones (moved first) once
        they are at most half of the rows fed."""
        need_p = need[self.rows] if self.permuted else need
        k = int(need_p[:self.n].sum())
        if k < int(need_p.sum()):  # a needed row is not fed: feed all again
            self._narrow(self.B)
            return
        if k > self.n // 2 or k == 0:
            return
        inside = need_p[:self.n]
        perm = torch.cat([inside.nonzero()[:, 0], (~inside).nonzero()[:, 0]])
        for keys, values in self._full:
            keys[:self.n] = keys[:self.n].index_select(0, perm)
            values[:self.n] = values[:self.n].index_select(0, perm)
        for t in (self.mask, self.count, self.rows):
            t[:self.n] = t[:self.n].index_select(0, perm)
        self.permuted = True
        self._narrow(k)

    def _grow(self, length: int) -> None:
        """Reallocate the static layers to ``length + static_grow`` positions (at most
        ``capacity``), keeping what they hold; every layer's whole (B, ...) tensors are copied."""
        new = min(self.capacity, length + self.cfg.static_grow)

        def widen(t: Tensor) -> Tensor:  # (B, heads, alloc, dim) -> (B, heads, new, dim)
            g = t.new_zeros(t.shape[0], t.shape[1], new, t.shape[3])
            g[:, :, :self.alloc] = t
            return g

        self._full = [(widen(k), widen(v)) for k, v in self._full]
        for la in self.cache.layers:
            la.max_cache_len = new  # what the mask is built for (``get_mask_sizes``)
        self.alloc = new
        self._narrow(self.n)

    def _narrow(self, n: int) -> None:
        self.n = n
        for la, (keys, values) in zip(self.cache.layers, self._full, strict=True):
            la.keys, la.values = keys[:n], values[:n]

    # ------------------------------------------------------------------ recurrent state
    def _feed_recurrent(self, ids: Tensor, mask: Tensor, need: Tensor | None) -> Tensor:
        """:meth:`feed` on a recurrent state: rows kept in request order; stopped rows are left
        out once at most half of the rows fed are needed (their logits come back as 0)."""
        pos = self._record(ids, mask)
        self._compact_recurrent(mask.bool().any(1) if need is None else need | mask.bool().any(1))
        if self.sub is None:
            self.rows_fed.append(self.B)
            return self._forward(ids, self.mask[:, :self.fed], pos)
        sub = self.sub
        self.rows_fed.append(int(sub.numel()))
        logits = self._forward(ids[sub], self.mask[sub, :self.fed], pos[sub])
        return logits.new_zeros(self.B, logits.shape[-1]).index_copy_(0, sub, logits)

    def _compact_recurrent(self, need: Tensor) -> None:
        fed = need.new_ones(self.B) if self.sub is None else need.new_zeros(self.B).index_fill_(0, self.sub, True)
        if bool((need & ~fed).any()):  # a needed row is not fed: feed all again
            self._widen()
            fed = need.new_ones(self.B)
        k, n = int(need.sum()), int(fed.sum())
        if k == 0 or k > n // 2:
            return
        self._widen()
        keep = need.nonzero()[:, 0]
        self.parked, self.cache = self.cache, copy.deepcopy(self.cache)
        self.cache.batch_select_indices(keep)
        self.sub = keep

    def _widen(self) -> None:
        """Merge the fed rows' state back into the parked whole state and feed every row."""
        if self.sub is None:
            return
        self.parked.batch_index_copy(self.sub, self.cache)
        self.cache, self.parked, self.sub = self.parked, None, None
