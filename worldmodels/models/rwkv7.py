"""The ``rwkv7`` family: an RWKV-7 ("Goose") causal LM with the Hugging Face interface the
engines use, running on CPU (pure PyTorch) and, when fla is installed, on fla's GPU kernels.

    from worldmodels.models import BackboneConfig, make_backbone
    model = make_backbone(BackboneConfig(family="rwkv7", preset="tiny"), vocab_size=4700)
    model = make_backbone(BackboneConfig(family="rwkv7", path="RWKV-x070-World-0.1B.pth"), 65536)
    out = model(input_ids, attention_mask=mask, use_cache=True)  # .logits (B,T,V), .past_key_values
    out = model(next_ids, attention_mask=mask_so_far, past_key_values=out.past_key_values)

- Config (:class:`RWKV7Config`, ``model_type="wm_rwkv7"``): field names as fla's
  ``RWKV7Config`` (seeds.md §6). Modules and parameters carry fla's names (``model.embeddings``,
  ``model.layers.i.attn.{r,k,v,o}_proj``, ``*_lora.lora.{0,2}``, ``g_norm``, ``pre_norm`` /
  ``attn_norm`` / ``ffn_norm``, ``model.norm``, ``lm_head``), so fla checkpoints load directly
  and LoRA targets ``r_proj, k_proj, v_proj, o_proj`` by default; BlinkDL ``.pth`` files are
  renamed on load (``models/rwkv7_convert.py``).
- The cache is the recurrent state (:class:`~worldmodels.models.rwkv7_cache.RWKV7State`,
  constant size). ``attention_mask`` (B, past+T) marks padding; padding never changes the
  state (left padding = the unpadded row). ``position_ids`` are accepted and ignored (RWKV has
  no positions).
- Time-mix: ``attn_mode="chunk"`` runs sequences in chunks of ``chunk_size`` (matrix form,
  float32 state carried) and single tokens by the recurrence; ``"recurrent"`` steps token by
  token always (the reference). Both equal BlinkDL's ``rwkv`` CPU inference (tests).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from worldmodels.models.rwkv7_cache import RWKV7State
from worldmodels.models.rwkv7_layers import LoRA, RWKV7Attention, RWKV7Block, RWKV7FeedForward
from worldmodels.models.rwkv7_ops import MAX_CHUNK
from worldmodels.models.rwkv7_presets import PRESETS, Preset

MODEL_TYPE = "wm_rwkv7"
#: the output field holding the cache: transformers >= 5.2x renamed past_key_values to cache
_OUT_CACHE = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"
LORA_TARGETS = ["r_proj", "k_proj", "v_proj", "o_proj"]


def _low_rank(scale: float, hidden: int, head_dim: int, by_head: bool = True) -> int:
    """fla's default low-rank width: ``max(32, round(scale * sqrt(C) * (N/64 if by_head) / 32) * 32)``."""
    factor = head_dim / 64 if by_head else 1.0
    return max(32, int(round(scale * hidden ** 0.5 * factor / 32) * 32))


class RWKV7Config(PreTrainedConfig):
    """RWKV-7 hyper-parameters (fla ``RWKV7Config`` names; a transformers config dataclass).

    vocab_size: token ids read and predicted.
    hidden_size: model width C (BlinkDL ``n_embd``).
    num_hidden_layers: blocks (BlinkDL ``n_layer``).
    head_dim: channels per head N (BlinkDL ``head_size``); C must be a multiple of it.
    num_heads: heads H = C / head_dim (derived when null; must agree when given).
    decay_low_rank_dim / a_low_rank_dim / v_low_rank_dim / gate_low_rank_dim: widths of the
        w / a / v / g low-rank MLPs (BlinkDL ``w1``, ``a1``, ``v1``, ``g1`` columns); null =
        fla's default ``max(32, round(k * sqrt(C) * N/64 / 32) * 32)`` with k = 2.5, 2.5, 1.7
        (and 5 without the N/64 factor for the gate).
    hidden_ratio: channel-mix width as a multiple of C when ``intermediate_size`` is null
        (rounded up to a multiple of 32, as fla).
    intermediate_size: channel-mix width (BlinkDL ``ffn.key`` rows).
    hidden_act: channel-mix activation; only "sqrelu" (``relu(x)^2``).
    norm_bias: the LayerNorms have biases (BlinkDL: yes).
    norm_eps: LayerNorm epsilon (BlinkDL: 1e-5).
    g_norm_eps: the per-head GroupNorm's epsilon; null = ``head_dim * norm_eps`` (fla).
        BlinkDL's ``rwkv`` uses 64e-5 whatever the head size (its ``ln_x``); the BlinkDL loader
        sets that.
    attn_mode: "chunk" (chunked time-mix for T > 1, recurrence for one token) | "recurrent"
        (token by token always; the slow reference).
    chunk_size: tokens per chunk of the chunked time-mix, 1..64 (numerics: see
        ``models/rwkv7_ops.py``).
    use_fla: on CUDA, use fla's Triton kernels when ``flash-linear-attention`` is installed.
    initializer_range: unused by RWKV-7's own initialisation (kept for transformers).
    tie_word_embeddings: share the input embedding with the output head (fla default: False).
    """

    model_type = MODEL_TYPE

    vocab_size: int = 65536
    hidden_size: int = 768
    num_hidden_layers: int = 12
    head_dim: int = 64
    num_heads: int | None = None
    decay_low_rank_dim: int | None = None
    a_low_rank_dim: int | None = None
    v_low_rank_dim: int | None = None
    gate_low_rank_dim: int | None = None
    hidden_ratio: float = 4.0
    intermediate_size: int | None = None
    hidden_act: str = "sqrelu"
    norm_bias: bool = True
    norm_eps: float = 1e-5
    g_norm_eps: float | None = None
    attn_mode: str = "chunk"
    chunk_size: int = 32
    use_fla: bool = True
    initializer_range: float = 0.02
    use_cache: bool = True
    tie_word_embeddings: bool = False
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | None = None

    def __post_init__(self, **kwargs):
        C, N = self.hidden_size, self.head_dim
        if C < 1 or N < 1 or C % N:
            raise ValueError(f"RWKV7Config: hidden_size ({C}) must be a positive multiple of "
                             f"head_dim ({N})")
        if self.num_heads is not None and self.num_heads * N != C:
            raise ValueError(f"RWKV7Config: num_heads {self.num_heads} * head_dim {N} != "
                             f"hidden_size {C}")
        self.num_heads = C // N
        self.decay_low_rank_dim = self.decay_low_rank_dim or _low_rank(2.5, C, N)
        self.a_low_rank_dim = self.a_low_rank_dim or _low_rank(2.5, C, N)
        self.v_low_rank_dim = self.v_low_rank_dim or _low_rank(1.7, C, N)
        self.gate_low_rank_dim = self.gate_low_rank_dim or _low_rank(5, C, N, by_head=False)
        if self.intermediate_size is None:
            self.intermediate_size = 32 * math.ceil(int(C * self.hidden_ratio) / 32)
        if self.g_norm_eps is None:
            self.g_norm_eps = N * self.norm_eps
        if self.hidden_act != "sqrelu":
            raise ValueError(f"RWKV7Config: hidden_act must be 'sqrelu', got {self.hidden_act!r}")
        if self.attn_mode not in ("chunk", "recurrent"):
            raise ValueError(f"RWKV7Config: attn_mode must be 'chunk' or 'recurrent', got "
                             f"{self.attn_mode!r}")
        if not 1 <= self.chunk_size <= MAX_CHUNK:
            raise ValueError(f"RWKV7Config: chunk_size must be in [1, {MAX_CHUNK}], got "
                             f"{self.chunk_size}")
        for name in ("vocab_size", "num_hidden_layers", "intermediate_size", "decay_low_rank_dim",
                     "a_low_rank_dim", "v_low_rank_dim", "gate_low_rank_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"RWKV7Config: {name} must be >= 1, got {getattr(self, name)}")
        super().__post_init__(**kwargs)


# ------------------------------------------------------------------------------ init
def _ortho(w: Tensor, gain: float) -> None:
    from transformers import initialization as init

    init.orthogonal_(w, gain=gain)


class RWKV7PreTrainedModel(PreTrainedModel):
    config_class = RWKV7Config
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["RWKV7Block"]
    _can_compile_fullgraph = False  # the rollout engine keeps the dynamic (recurrent) cache

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """RWKV-LM's x070 initialisation (as fla's): token-shift mixes by channel and depth,
        decay / a / v biases, orthogonal r/k/v, zero output projections and low-rank first
        layers, embeddings uniform +-1e-4, an orthogonal head. Loaded parameters are left alone
        (transformers.initialization skips them)."""
        from transformers import initialization as init

        cfg = self.config
        if isinstance(module, RWKV7Attention):
            _init_attention(module, cfg)
        elif isinstance(module, RWKV7FeedForward):
            C, depth = cfg.hidden_size, 1.0 - module.layer_idx / cfg.num_hidden_layers
            ddd = torch.arange(C, dtype=torch.float32) / C
            init.copy_(module.x_k, 1.0 - ddd.pow(depth ** 4))
            init.uniform_(module.key.weight, -0.5 / C ** 0.5, 0.5 / C ** 0.5)
            init.zeros_(module.value.weight)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.uniform_(module.weight, -1e-4, 1e-4)
        elif isinstance(module, RWKV7ForCausalLM) and not cfg.tie_word_embeddings:
            V, C = cfg.vocab_size, cfg.hidden_size
            _ortho(module.lm_head.weight, 0.5 * math.sqrt(V / C) if V > C else 0.5)


def _init_attention(m: RWKV7Attention, cfg) -> None:
    from transformers import initialization as init

    C, N, L, i = cfg.hidden_size, cfg.head_dim, cfg.num_hidden_layers, m.layer_idx
    r01 = i / max(L - 1, 1)
    r10 = 1.0 - i / L
    n = torch.arange(C, dtype=torch.float32)
    ddd = n / C
    linear = n / max(C - 1, 1) - 0.5
    zz = ((n % N) - (N - 1) / 2) / max((N - 1) / 2, 1e-9)
    zigzag = zz * zz.abs()
    www = -6 + 6 * (n / max(C - 1, 1)) ** (1 + r01 ** 0.3)
    for name, p in (("x_r", 0.2), ("x_w", 0.9), ("x_k", 0.7), ("x_v", 0.7), ("x_a", 0.9), ("x_g", 0.2)):
        init.copy_(getattr(m, name), (1.0 - ddd.pow(p * r10)).view(1, 1, C))
    init.copy_(m.k_k, 0.71 - linear * 0.1)
    init.constant_(m.k_a, 1.02)
    init.constant_(m.r_k, -0.04)
    biases = {"w_lora": www + 0.5 + zigzag * 2.5, "a_lora": -0.19 + zigzag * 0.3 + linear * 0.4}
    if i != 0:
        biases["v_lora"] = 0.73 - linear * 0.4
    for name in ("w_lora", "a_lora", "v_lora", "g_lora"):
        lora = getattr(m, name, None)
        if lora is None:
            continue
        init.zeros_(lora.lora[0].weight)
        _ortho(lora.lora[2].weight, 0.1)
        if name in biases:
            init.copy_(lora.lora[2].bias, biases[name])
    init.constant_(m.g_norm.weight, ((i + 1) / L) ** 0.7)
    init.zeros_(m.g_norm.bias)
    _ortho(m.r_proj.weight, 1.0)
    _ortho(m.k_proj.weight, 0.1)
    _ortho(m.v_proj.weight, 1.0)
    init.zeros_(m.o_proj.weight)


# ------------------------------------------------------------------------------ model
class RWKV7Model(RWKV7PreTrainedModel):
    """Embeddings, blocks and the final norm. forward(input_ids (B,T) | inputs_embeds
    (B,T,C), attention_mask (B,past+T) | None, state | None) -> (hidden (B,T,C), state)."""

    def __init__(self, config: RWKV7Config):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(RWKV7Block(config, i) for i in range(config.num_hidden_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings

    def set_input_embeddings(self, value):
        self.embeddings = value

    def forward(self, input_ids=None, attention_mask=None, state: RWKV7State | None = None,
                inputs_embeds=None):
        x = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        T = x.shape[1]
        mask = None
        if attention_mask is not None:
            if attention_mask.dim() != 2 or attention_mask.shape[1] < T:
                raise ValueError(f"RWKV-7 attention_mask must be (B, past+T) 0/1 with T={T}, got "
                                 f"shape {tuple(attention_mask.shape)}")
            mask = attention_mask[:, -T:].bool()
            mask = None if bool(mask.all()) else mask
        v_first = None
        for i, layer in enumerate(self.layers):
            x, v_first, new = layer(x, mask, None if state is None else state[i], v_first)
            if state is not None:
                state.update(i, new)
        if state is not None:
            state.seen += T
        return self.norm(x), state


class RWKV7ForCausalLM(RWKV7PreTrainedModel, GenerationMixin):
    """RWKV-7 with an output head. forward(input_ids (B,T), attention_mask (B,past+T) | None,
    position_ids (ignored), cache or past_key_values (an RWKV7State) | None, use_cache,
    labels (B,T) | None (HF: shifted inside, -100 ignored), logits_to_keep) ->
    CausalLMOutputWithPast with ``logits`` (B,T',V) in the model dtype and the state (updated
    in place) as its cache (``.cache`` on transformers >= 5.2x, which keeps
    ``.past_key_values`` as a deprecated alias; ``.past_key_values`` before) when ``use_cache``
    or a state was passed. ``use_cache`` defaults to ``config.use_cache`` in eval mode, False
    in training mode. Raises TypeError for a cache that is not an RWKV7State."""

    _tied_weights_keys = {"lm_head.weight": "model.embeddings.weight"}

    def __init__(self, config: RWKV7Config):
        super().__init__(config)
        self.model = RWKV7Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embeddings

    def set_input_embeddings(self, value):
        self.model.embeddings = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new):
        self.lm_head = new

    def forward(self, input_ids=None, attention_mask=None, position_ids=None,
                cache: RWKV7State | None = None, use_cache: bool | None = None,
                labels=None, logits_to_keep: int | Tensor = 0, inputs_embeds=None,
                past_key_values: RWKV7State | None = None, **kwargs) -> CausalLMOutputWithPast:
        if cache is not None and past_key_values is not None and cache is not past_key_values:
            raise ValueError("RWKV-7: pass the state as cache or past_key_values, not both")
        given = cache if cache is not None else past_key_values
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training
        state = given
        if state is None and use_cache:
            state = RWKV7State(self.config.num_hidden_layers)
        if state is not None and not isinstance(state, RWKV7State):
            raise TypeError(f"RWKV-7 past_key_values must be an RWKV7State, got {type(state).__name__}")
        hidden, state = self.model(input_ids, attention_mask, state, inputs_embeds)
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden[:, keep])
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                   ignore_index=-100)
        state = state if (use_cache or given is not None) else None
        return CausalLMOutputWithPast(loss=loss, logits=logits, **{_OUT_CACHE: state})

    def prepare_inputs_for_generation(self, input_ids, cache=None, past_key_values=None,
                                      attention_mask=None, **kwargs):
        """``generate``: once the state has seen tokens only the newer ones are fed."""
        state = cache if cache is not None else past_key_values
        if state is not None and state.get_seq_length() > 0:
            input_ids = input_ids[:, state.get_seq_length():]
        return {"input_ids": input_ids, "attention_mask": attention_mask, "cache": state,
                "use_cache": kwargs.get("use_cache", True)}


# ------------------------------------------------------------------------------ family
def build_backbone(preset: str | Preset, vocab_size: int, **overrides) -> RWKV7ForCausalLM:
    """A freshly initialised RWKV-7 for ``vocab_size`` ids from a preset (``PRESETS``);
    ``overrides`` are extra :class:`RWKV7Config` fields. Raises ValueError for an unknown preset."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown rwkv7 preset {preset!r}; known: {sorted(PRESETS)}")
        preset = PRESETS[preset]
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    kw = dict(vocab_size=vocab_size, hidden_size=preset.hidden_size,
              num_hidden_layers=preset.num_hidden_layers, head_dim=preset.head_dim,
              intermediate_size=preset.intermediate_size)
    kw.update(overrides)
    return RWKV7ForCausalLM(RWKV7Config(**kw))


def from_config(cfg, vocab_size: int):
    """The ``rwkv7`` family's entry in ``BACKBONES``: ``cfg.path`` (a BlinkDL ``.pth`` file, an
    fla RWKV-7 directory or one of ours; ``models/rwkv7_convert.py``) when set, else a fresh
    model from ``cfg.preset``. A loaded model's vocabulary must cover ``vocab_size`` (or is
    grown with ``cfg.resize_embeddings``, as the hf family)."""
    if not cfg.path:
        return build_backbone(cfg.preset, vocab_size)
    from worldmodels.models.rwkv7_convert import load_rwkv7

    model = load_rwkv7(cfg.path)
    have = model.config.vocab_size
    if have < vocab_size:
        if not cfg.resize_embeddings:
            raise ValueError(f"model.path={cfg.path}: the backbone reads {have} token ids but the "
                             f"task needs {vocab_size}; pass model.resize_embeddings=true to grow "
                             f"its embeddings (the new rows start untrained)")
        model.resize_token_embeddings(vocab_size)
    return model


def register() -> None:
    """Register with transformers' Auto classes (``AutoModelForCausalLM`` reads our
    directories) and peft's default LoRA targets (r/k/v/o projections). Idempotent."""
    from transformers import AutoConfig, AutoModelForCausalLM

    AutoConfig.register(MODEL_TYPE, RWKV7Config, exist_ok=True)
    AutoModelForCausalLM.register(RWKV7Config, RWKV7ForCausalLM, exist_ok=True)
    try:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as M
    except Exception:  # peft not installed
        return
    M.setdefault(MODEL_TYPE, list(LORA_TARGETS))


register()

__all__ = ["LORA_TARGETS", "LoRA", "MODEL_TYPE", "PRESETS", "Preset", "RWKV7Config",
           "RWKV7ForCausalLM", "RWKV7Model", "RWKV7State", "build_backbone", "from_config",
           "register"]
