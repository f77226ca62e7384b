"""Reward registry for RLVR: verifiable, higher-is-better scores of predictions.

A reward spec names registered rewards or user functions and their weights::

    mae                      # one reward, weight 1
    lpips+mae                # sum, weights 1 and 1 (RLVR-World's single-step video reward)
    lpips:1,mae:0.5          # weighted sum ('+' and ',' both separate terms)
    my_pkg.rewards:score     # a user function, imported with importlib
    mae+my_pkg.rewards:score:0.1

Built-in frame rewards (``predictions`` (B,T,3,H,W) or (B,3,H,W) in [0,1], or a mapping whose
``"frames"`` are, as a video task's ``decode`` returns, against
``items["target_frames"]`` of the same shape): ``mse``, ``mae``, ``lpips`` (= ``lpips_vgg``),
``lpips_alex``, ``lpips_squeeze``, ``stlpips`` (= ``stlpips_alex``, shift-tolerant LPIPS from the
``perceptual`` extra, :mod:`worldmodels.stlpips`), ``stlpips_vgg`` are negated losses; ``psnr``
and ``ssim`` are used as they are;
``readout_state`` (robot video, ``worldmodels.tasks.video_rewards``; needs ``options={"readout": DIR}``)
is minus the task-state error a state readout finds between predicted and true frames.
Each gives per-frame values (B,T) that are aggregated over frames by ``aggregate``:

- ``mean``: ``(1/T) * sum_t r_t``;
- ``last``: ``r_{T-1}`` (the last predicted frame);
- ``discount``: ``sum_t w_t r_t`` with ``w_t = gamma**t / sum_{s<T} gamma**s``, t = 0 for the
  first predicted frame (normalised, so the scale matches ``mean``; earlier frames weigh more).

Frame rewards clamp predictions to [0,1] first (as RLVR-World does after decoding) and compute
in float32 whatever the frames' dtype (:mod:`worldmodels.metrics`), so a perfect float16
prediction scores ``psnr`` 80, a finite, valid reward. A sample
whose predicted frames hold NaN/inf gets NaN frame-reward parts and a NaN total;
``__call__`` never raises for it. The caller excludes such samples with
:meth:`Reward.valid_mask` (the GRPO trainer leaves them out of advantages and loss).

New rewards (text-game, web, ...) register with the same decorator::

    @register_reward("exact_state", per_frame=False)
    def exact_state(predictions, items, **ctx) -> Tensor: ...   # (B,)

A user function by dotted path has the signature ``fn(predictions, items, **ctx) -> Tensor[B]``
(a list of floats also works; None entries become NaN) and is used as-is (no frame aggregation).

Example::

    from worldmodels.rewards import build_reward
    reward = build_reward("lpips+mae", aggregate="mean")   # LPIPSWeightsMissing here if absent
    total, parts = reward(pred_frames, {"target_frames": target_frames})
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from worldmodels import metrics

__all__ = [
    "AGGREGATES", "RegisteredReward", "Reward", "RewardComponent", "aggregate_frames",
    "build_reward", "get_reward", "register_reward", "registered_rewards",
]

AGGREGATES = ("mean", "last", "discount")


@dataclass(frozen=True)
class RegisteredReward:
    """A registry entry. ``fn(predictions, items, **ctx)`` returns (B,T) if ``per_frame`` else (B,).

    With ``factory=True`` the registered callable is called once, with the ``options`` dict
    given to :func:`build_reward`, when a reward is built and must return that ``fn`` (for
    rewards that load models: failing early; e.g. ``readout_state`` reads ``options["readout"]``).
    """

    name: str
    fn: Callable[..., Any]
    per_frame: bool = True
    factory: bool = False


_REGISTRY: dict[str, RegisteredReward] = {}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def register_reward(name: str, *, aliases: tuple[str, ...] = (), per_frame: bool = False, factory: bool = False):
    """Decorator registering ``fn`` under ``name`` (and ``aliases``); returns ``fn`` unchanged."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for key in (name, *aliases):
            if not _NAME_RE.match(key):
                raise ValueError(f"reward name {key!r} must match {_NAME_RE.pattern}")
            if key in _REGISTRY and _REGISTRY[key].fn is not fn:
                raise ValueError(f"reward {key!r} is already registered")
            _REGISTRY[key] = RegisteredReward(key, fn, per_frame, factory)
        return fn

    return deco


# Modules whose import registers more rewards (other modalities). Imported lazily, the first
# time a name is not found or the full list is asked for; a module that does not exist is skipped.
PLUGIN_MODULES: list[str] = ["worldmodels.tasks.text_game", "worldmodels.tasks.web", "worldmodels.tasks.web_rewards",
                              "worldmodels.tasks.video_rewards"]


def _load_plugins() -> None:
    for module in PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # skip absent plugin modules, not their broken imports
            if not (exc.name and (module == exc.name or module.startswith(exc.name + "."))):
                raise


def registered_rewards() -> list[str]:
    """Sorted names (aliases included) usable in a spec, plugin modules' rewards included."""
    _load_plugins()
    return sorted(_REGISTRY)


def get_reward(name: str) -> RegisteredReward:
    """Registry entry for ``name``; ValueError listing the registered names if unknown."""
    if name not in _REGISTRY:
        _load_plugins()
    if name not in _REGISTRY:
        raise ValueError(f"unknown reward {name!r}; registered rewards: {', '.join(registered_rewards())} "
                         f"(or give a dotted path 'pkg.module:function')")
    return _REGISTRY[name]


# ---------------------------------------------------------------- built-in frame rewards


def target_frames(items: dict) -> Tensor:
    """``items['target_frames']`` (B,T,3,H,W), or a KeyError naming what a frame reward needs.

    Public for plugin rewards (e.g. ``worldmodels.tasks.video_rewards``) so they fail the same way.
    """
    if not isinstance(items, dict) or "target_frames" not in items:
        keys = sorted(items) if isinstance(items, dict) else type(items).__name__
        raise KeyError(f"frame rewards need items['target_frames'] (B,T,3,H,W); got keys {keys}")
    return items["target_frames"]


def _frame_reward(metric: Callable[[Tensor, Tensor], Tensor], sign: float):
    def fn(predictions: Tensor, items: dict, **ctx) -> Tensor:
        return sign * metric(predictions, target_frames(items))  # (B,T)

    return fn


register_reward("mse", per_frame=True)(_frame_reward(metrics.mse_per_frame, -1.0))
register_reward("mae", per_frame=True)(_frame_reward(metrics.mae_per_frame, -1.0))
register_reward("psnr", per_frame=True)(_frame_reward(metrics.psnr_per_frame, 1.0))
register_reward("ssim", per_frame=True)(_frame_reward(metrics.ssim_per_frame, 1.0))


def _perceptual_factory(builder: str, net: str):
    """A reward factory for the perceptual distance ``metrics.<builder>(net)`` (``lpips_fn`` or
    ``stlpips_fn``): the reward is its negated per-frame distance, (B,T). The network is built
    when the reward is (a missing weight file or extra raises then, never mid-run)."""
    def make(options: dict):
        dist = getattr(metrics, builder)(net)

        def fn(predictions: Tensor, items: dict, **ctx) -> Tensor:
            return -dist.per_frame(predictions, target_frames(items))  # (B,T)

        return fn

    return make


register_reward("lpips_vgg", aliases=("lpips",), per_frame=True, factory=True)(_perceptual_factory("lpips_fn", "vgg"))
register_reward("lpips_alex", per_frame=True, factory=True)(_perceptual_factory("lpips_fn", "alex"))
register_reward("lpips_squeeze", per_frame=True, factory=True)(_perceptual_factory("lpips_fn", "squeeze"))


# ST-LPIPS (perceptual extra): its own names, never an alias of lpips. ``stlpips`` is the
# AlexNet trunk, as in the package's README and the faster of the two on CPU.
register_reward("stlpips_alex", aliases=("stlpips",), per_frame=True, factory=True)(_perceptual_factory("stlpips_fn", "alex"))
register_reward("stlpips_vgg", per_frame=True, factory=True)(_perceptual_factory("stlpips_fn", "vgg"))


# ---------------------------------------------------------------- aggregation and the Reward


def aggregate_frames(values: Tensor, aggregate: str = "mean", gamma: float = 0.9) -> Tensor:
    """(B,T) per-frame rewards -> (B,) by ``mean``, ``last`` or normalised ``discount`` (see module doc).

    Computed and returned in float32 (float64 for float64 values), whatever the input dtype;
    the discount weights are formed in float64. A non-finite value at a frame that counts makes
    only its own sample's result non-finite; a frame whose discount weight underflows to 0
    (``gamma**t`` below ~1e-308) counts for nothing, NaN or not (as earlier frames for ``last``).
    Raises ValueError for values that are not (B,T) or an unknown ``aggregate``.
    """
    if values.ndim != 2:
        raise ValueError(f"per-frame rewards must be (B,T), got {tuple(values.shape)}")
    v = values.to(metrics.compute_dtype(values.dtype))
    if aggregate == "mean":
        return v.mean(1)
    if aggregate == "last":
        return v[:, -1]
    if aggregate == "discount":
        t = torch.arange(v.shape[1], device=v.device, dtype=torch.float64)
        w = torch.as_tensor(float(gamma), dtype=torch.float64, device=v.device) ** t  # (T,)
        w = (w / w.sum()).to(v.dtype)
        return torch.where(w > 0, v * w, torch.zeros_like(v)).sum(1)  # select, never NaN * 0
    raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")


@dataclass
class RewardComponent:
    """One term of a spec: ``weight * aggregate(fn(predictions, items))``."""

    name: str
    weight: float
    fn: Callable[..., Any]
    per_frame: bool


def _as_vector(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        out = value
    else:
        out = torch.tensor([math.nan if v is None else float(v) for v in value], dtype=torch.float32)
    if out.ndim != 1:
        raise ValueError(f"reward {name!r} must return one value per sample, shape (B,), got {tuple(out.shape)}")
    return out.float()


def frames_of(predictions: Any) -> Any:
    """The frames a frame reward reads: ``predictions`` itself, or ``predictions["frames"]`` when
    a task's ``decode`` returns a mapping (a video task also returns the token ids)."""
    if isinstance(predictions, dict) and "frames" in predictions:
        return predictions["frames"]
    return predictions


def _sanitize_frames(predictions: Any) -> tuple[Tensor, Tensor]:
    """Frames for the metrics: NaN/inf replaced and clamped to [0,1]; plus (B,) bool of bad samples."""
    predictions = frames_of(predictions)
    if not isinstance(predictions, Tensor) or not predictions.is_floating_point() or predictions.ndim < 4:
        got = tuple(predictions.shape) if isinstance(predictions, Tensor) else type(predictions).__name__
        raise ValueError(f"frame rewards need float predictions (B,[T,]3,H,W) in [0,1], got {got}")
    bad = ~torch.isfinite(predictions).reshape(predictions.shape[0], -1).all(1)  # (B,)
    clean = torch.nan_to_num(predictions, nan=0.0, posinf=1.0, neginf=0.0).clamp(0.0, 1.0)
    return clean, bad


class Reward:
    """A weighted sum of reward components; ``reward(predictions, items) -> (total (B,), parts)``.

    ``parts[name]`` is the component's (B,) value after frame aggregation and *before* its
    weight, so logs show e.g. ``-mae`` directly; ``total = sum_i weight_i * parts[name_i]``.
    Non-finite totals (NaN/inf predictions, a user reward returning NaN) are not raised on:
    check :meth:`valid_mask` and exclude those samples.
    """

    def __init__(self, components: list[RewardComponent], aggregate: str = "mean", gamma: float = 0.9, spec: str = ""):
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        if not 0.0 < float(gamma) <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        if not components:
            raise ValueError("a Reward needs at least one component")
        self.components = components
        self.aggregate, self.gamma, self.spec = aggregate, float(gamma), spec

    @property
    def names(self) -> list[str]:
        """Component names in spec order (keys of ``parts``)."""
        return [c.name for c in self.components]

    @property
    def weights(self) -> dict[str, float]:
        return {c.name: c.weight for c in self.components}

    def __call__(self, predictions: Any, items: dict, **ctx) -> tuple[Tensor, dict[str, Tensor]]:
        frames, bad = None, None
        if any(c.per_frame for c in self.components):
            frames, bad = _sanitize_frames(predictions)
        parts: dict[str, Tensor] = {}
        total: Tensor | None = None
        with torch.no_grad():
            for comp in self.components:
                if comp.per_frame:  # built-in frame reward: (B,T) -> (B,); NaN/inf samples -> NaN
                    raw = comp.fn(frames, items, **ctx)
                    raw = raw if raw.ndim == 2 else raw.reshape(raw.shape[0], -1)
                    value = aggregate_frames(raw.float(), self.aggregate, self.gamma)
                    value = value.masked_fill(bad.to(value.device), math.nan)
                else:  # registered non-frame or user reward: raw predictions, used as-is
                    value = _as_vector(comp.fn(predictions, items, **ctx), comp.name)
                if total is not None:
                    if value.shape != total.shape:
                        raise ValueError(f"reward {comp.name!r} returned {tuple(value.shape)} values, "
                                         f"others {tuple(total.shape)}")
                    value = value.to(total.device)
                parts[comp.name] = value
                total = comp.weight * value if total is None else total + comp.weight * value
        assert total is not None
        return total, parts

    @staticmethod
    def valid_mask(total: Tensor) -> Tensor:
        """(B,) bool, True where the total reward is finite (use only those samples)."""
        return torch.isfinite(total)

    def __repr__(self) -> str:
        terms = ",".join(f"{c.name}:{c.weight:g}" for c in self.components)
        return f"Reward({terms}, aggregate={self.aggregate!r}, gamma={self.gamma})"


# ---------------------------------------------------------------- spec parsing

_DOTTED_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")


def _parse_term(term: str, spec: str) -> tuple[str, float]:
    """``name``, ``name:w``, ``pkg.mod:fn`` or ``pkg.mod:fn:w`` -> (name, weight)."""
    name, weight = term, 1.0
    head, sep, tail = term.rpartition(":")
    if sep:
        try:
            weight = float(tail)
            name = head.strip()
        except ValueError:
            pass  # "pkg.mod:fn" - the part after ':' is a function name, not a weight
    if not math.isfinite(weight):
        raise ValueError(f"malformed reward spec {spec!r}: weight of {name!r} must be finite, got {tail!r}")
    if not (_NAME_RE.match(name) or _DOTTED_RE.match(name)):
        raise ValueError(
            f"malformed reward spec {spec!r}: term {term!r} is not 'name', 'name:weight', "
            f"'pkg.module:function' or 'pkg.module:function:weight'"
        )
    return name, weight


def _import_user_reward(path: str, spec: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"reward {path!r} in spec {spec!r}: cannot import module {module_name!r} ({exc}); "
                         f"registered rewards: {', '.join(registered_rewards())}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"reward {path!r} in spec {spec!r}: module {module_name!r} has no callable {attr!r}")
    return fn


def build_reward(spec: str, aggregate: str = "mean", gamma: float = 0.9, options: dict | None = None) -> Reward:
    """Parse ``spec`` (see module doc) into a :class:`Reward`; model-backed rewards load now.

    ``options`` go to factory rewards (e.g. ``{"readout": "runs/readout"}`` for ``readout_state``).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"malformed reward spec {spec!r}: expected e.g. 'mae', 'lpips+mae' or 'lpips:1,mae:0.5'")
    terms = [t.strip() for t in re.split(r"[+,]", spec)]
    if any(not t for t in terms):
        raise ValueError(f"malformed reward spec {spec!r}: empty term (stray '+' or ',')")
    parsed = [_parse_term(term, spec) for term in terms]
    names = [name for name, _ in parsed]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"malformed reward spec {spec!r}: {name!r} appears twice")
    # resolve every name before loading anything, so a typo is reported before missing weights
    resolved = [None if ":" in name else get_reward(name) for name in names]
    components: list[RewardComponent] = []
    for (name, weight), entry in zip(parsed, resolved, strict=True):
        if entry is None:
            components.append(RewardComponent(name, weight, _import_user_reward(name, spec), per_frame=False))
        else:
            fn = entry.fn(dict(options or {})) if entry.factory else entry.fn
            components.append(RewardComponent(name, weight, fn, entry.per_frame))
    return Reward(components, aggregate=aggregate, gamma=gamma, spec=spec)
