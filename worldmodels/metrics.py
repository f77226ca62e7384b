"""Video prediction metrics as RLVR-World / iVideoGPT compute them.

All metrics take float frames in [0, 1], ``pred`` and ``target`` of shape ``(B,3,H,W)`` (one
frame per sample) or ``(B,T,3,H,W)``, and return one value per sample, shape ``(B,)``: the
per-frame value averaged over the T frames. ``*_per_frame`` variants return ``(B,T)``.

Precision: every metric computes in float32 whatever the frames' dtype (float16 and bfloat16
frames are upcast first; float64 stays float64) and returns float32 (float64 for float64
input). In float16 the PSNR epsilon 1e-8 rounds away and identical frames would give ``inf``
instead of 80 dB; LPIPS also runs with autocast disabled.

- ``mae``/``mse``: mean absolute / squared error over C,H,W of each frame.
- ``psnr``: per frame ``10*log10(1 / (MSE + 1e-8))`` (data range 1), then the mean over frames
  (which is not the PSNR of the mean MSE). Identical frames give the cap
  ``10*log10(1e8) = 80 dB`` implied by the 1e-8.
- ``ssim``: per frame, torchmetrics' Gaussian SSIM (window 11, sigma 1.5, K1 0.01, K2 0.03,
  data range 1), averaged over the *valid* window positions (the 5-pixel border whose window
  would leave the image is cropped, as piqa's SSIM used by RLVR-World does), then over frames.
  Needs H, W >= 11.
- ``lpips``: ``lpips`` package, inputs scaled to [-1, 1], spatial mean; backbone weights must
  be in the local torch hub cache (:mod:`worldmodels.lpips_weights`), else
  :class:`LPIPSWeightsMissing`.
- ``stlpips``: shift-tolerant LPIPS (Ghildyal & Liu, ECCV 2022), ``alex`` or ``vgg``, from the
  complete networks the ``stlpips-pytorch`` package ships (extra ``perceptual``; nothing is
  downloaded, :mod:`worldmodels.stlpips`), inputs scaled to [-1, 1], spatial mean; else
  :class:`STLPIPSUnavailable`. A separate metric, never a stand-in for ``lpips``.
- ``repetition_rate``: fraction of samples whose last two predicted frames have identical tokens.
- ``best_of_n``: with n samples per clip, the best per clip averaged over clips, with the std.
- ``pass_at_k``: for 0/1 metrics (a text answer right or wrong), the unbiased pass@k per item.

Example::

    from worldmodels import metrics
    metrics.summarize(pred, target)                # {"mae":..., "mse":..., "psnr":..., "ssim":...}
    metrics.summarize(pred, target, lpips="vgg")   # + "lpips" (needs vgg16-397923af.pth)
    metrics.summarize(pred, target, stlpips="alex")  # + "stlpips" (needs the perceptual extra)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from worldmodels import stlpips as _st
from worldmodels.lpips_weights import MIN_SIZE, LPIPSWeightsMissing, canonical_net, load_lpips
from worldmodels.stlpips import STLPIPSUnavailable

__all__ = [
    "LPIPSWeightsMissing", "PSNR_EPS", "compute_dtype", "mae", "mae_per_frame", "mse", "mse_per_frame", "psnr",
    "psnr_per_frame", "ssim", "ssim_per_frame", "lpips", "lpips_per_frame", "lpips_fn",
    "LPIPSMetric", "STLPIPSMetric", "STLPIPSUnavailable", "stlpips", "stlpips_per_frame", "stlpips_fn",
    "repetition_rate", "repeats", "best_of_n", "pass_at_k", "pass_at_k_ks", "summarize",
]

PSNR_EPS = 1e-8  # RLVR-World's epsilon; caps PSNR at 80 dB for identical frames
SSIM_SIGMA, SSIM_WINDOW = 1.5, 11
_RANGE_TOL = 1e-4  # values may overshoot [0,1] by this much (float error) before we complain


def _as_frames(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor, int, int]:
    """Validate and flatten to (B*T,3,H,W) frames in :func:`compute_dtype`; returns (pred, target, B, T)."""
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must hold float frames in [0,1], got dtype {x.dtype}")
        if x.ndim not in (4, 5) or x.shape[-3] != 3:
            raise ValueError(f"{name} must have shape (B,3,H,W) or (B,T,3,H,W), got {tuple(x.shape)}")
        # NaN compares False, so NaN frames pass here and give NaN metrics (rewards rely on it).
        if bool(((x < -_RANGE_TOL) | (x > 1 + _RANGE_TOL)).any()):
            lo, hi = float(torch.nan_to_num(x, nan=0.5).min()), float(torch.nan_to_num(x, nan=0.5).max())
            raise ValueError(f"{name} must be frames in [0,1]; found values in [{lo:.4g}, {hi:.4g}]")
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    b = pred.shape[0]
    t = pred.shape[1] if pred.ndim == 5 else 1
    dtype = compute_dtype(pred.dtype, target.dtype)
    return (pred.reshape(b * t, *pred.shape[-3:]).to(dtype), target.reshape(b * t, *target.shape[-3:]).to(dtype),
            b, t)


def compute_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """The dtype metrics compute in: float32, or float64 when an input is float64 (never fp16/bf16)."""
    out = torch.float32
    for d in dtypes:
        out = torch.promote_types(out, d)
    return out


def _full_precision(x: Tensor):
    """Context that switches autocast off on ``x``'s device (a bf16 region must not lower metrics)."""
    return torch.autocast(x.device.type, enabled=False)


def _per_frame(fn: Callable[[Tensor, Tensor], Tensor], pred: Tensor, target: Tensor) -> Tensor:
    p, q, b, t = _as_frames(pred, target)  # (B*T,3,H,W) in float32 (float64 stays)
    with _full_precision(p):
        return fn(p, q).reshape(b, t)  # (B,T)


def mae_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """Mean |pred - target| over C,H,W of each frame -> (B,T)."""
    return _per_frame(lambda p, q: (p - q).abs().flatten(1).mean(1), pred, target)


def mse_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """Mean (pred - target)^2 over C,H,W of each frame -> (B,T)."""
    return _per_frame(lambda p, q: (p - q).square().flatten(1).mean(1), pred, target)


def psnr_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """``10*log10(1/(MSE+1e-8))`` per frame -> (B,T); 80 dB for identical frames."""
    return -10.0 * torch.log10(mse_per_frame(pred, target) + PSNR_EPS)


def _ssim_frames(p: Tensor, q: Tensor) -> Tensor:
    """(N,3,H,W) -> (N,) Gaussian SSIM averaged over valid window positions."""
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    h, w = p.shape[-2:]
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} (its window), got {h}x{w}")
    _, full = tm_ssim(
        p, q, gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_WINDOW, data_range=1.0,
        reduction="none", return_full_image=True,
    )  # full: (N,3,H,W) SSIM map computed on a reflect-padded image
    pad = (SSIM_WINDOW - 1) // 2  # positions whose window stays inside the image
    return full[..., pad : h - pad, pad : w - pad].flatten(1).mean(1)


def ssim_per_frame(pred: Tensor, target: Tensor) -> Tensor:
    """Gaussian SSIM (11, sigma 1.5, data range 1) per frame -> (B,T); 1 for identical frames."""
    return _per_frame(_ssim_frames, pred, target)


def mae(pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample MAE (mean over frames) -> (B,)."""
    return mae_per_frame(pred, target).mean(1)


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample MSE (mean over frames) -> (B,)."""
    return mse_per_frame(pred, target).mean(1)


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample PSNR: mean over frames of per-frame PSNR -> (B,)."""
    return psnr_per_frame(pred, target).mean(1)


def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample SSIM: mean over frames of per-frame SSIM -> (B,)."""
    return ssim_per_frame(pred, target).mean(1)


class LPIPSMetric:
    """LPIPS with a fixed backbone; ``metric(pred, target) -> (B,)``, ``metric.per_frame -> (B,T)``.

    Built by :func:`lpips_fn`, which checks the weights at construction. Differentiable w.r.t.
    ``pred`` (usable as a training loss); wrap in ``torch.no_grad()`` for evaluation.
    ``chunk`` bounds how many frame pairs go through the backbone at once.
    """

    def __init__(self, net: str = "vgg", device: str | torch.device | None = None, chunk: int = 64):
        self.net = canonical_net(net)
        self.chunk = int(chunk)
        load_lpips(self.net, device or "cpu")  # raises LPIPSWeightsMissing now, not mid-run

    def per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        """(B,[T,]3,H,W) in [0,1] (any float dtype) -> (B,T) float32 LPIPS distances."""
        p, q, b, t = _as_frames(pred, target)  # (B*T,3,H,W)
        if min(p.shape[-2:]) < MIN_SIZE[self.net]:
            raise ValueError(f"LPIPS({self.net}) needs frames of at least {MIN_SIZE[self.net]}x{MIN_SIZE[self.net]}, "
                             f"got {p.shape[-2]}x{p.shape[-1]}")
        model = load_lpips(self.net, p.device)  # cached per (net, device); float32 weights
        dtype, p, q = p.dtype, p.float(), q.float()
        with _full_precision(p):
            outs = [
                model(p[i : i + self.chunk] * 2 - 1, q[i : i + self.chunk] * 2 - 1).flatten(1).mean(1)
                for i in range(0, p.shape[0], self.chunk)
            ]
        return torch.cat(outs).reshape(b, t).to(dtype)  # float32 (float64 for float64 frames)

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.per_frame(pred, target).mean(1)

    def __repr__(self) -> str:
        return f"LPIPSMetric(net={self.net!r})"


def lpips_fn(net: str = "vgg", device: str | torch.device | None = None) -> LPIPSMetric:
    """LPIPS metric callable for ``net`` in {vgg, alex, squeeze}; raises LPIPSWeightsMissing if absent."""
    return LPIPSMetric(net, device)


def lpips_per_frame(pred: Tensor, target: Tensor, net: str = "vgg") -> Tensor:
    """LPIPS per frame -> (B,T)."""
    return LPIPSMetric(net, pred.device).per_frame(pred, target)


def lpips(pred: Tensor, target: Tensor, net: str = "vgg") -> Tensor:
    """Per-sample LPIPS (mean over frames) -> (B,)."""
    return lpips_per_frame(pred, target, net).mean(1)


class STLPIPSMetric:
    """Shift-tolerant LPIPS with a fixed net (``alex`` | ``vgg``); ``metric(pred, target) -> (B,)``,
    ``metric.per_frame -> (B,T)``.

    Built by :func:`stlpips_fn`, which loads the network at construction (raising
    :class:`STLPIPSUnavailable` now, not mid-run). Frames in [0,1] are scaled to [-1,1] and
    go through ``stlpips_pytorch``'s ``LPIPS(variant="shift_tolerant")`` network in float32
    with autocast off (fp16/bf16 frames give the float32 value); ``chunk`` bounds how many
    frame pairs go through the trunk at once, and within a chunk each distinct frame goes
    through it once (:func:`worldmodels.stlpips.distance`). Differentiable w.r.t. ``pred``.
    Not an :class:`LPIPSMetric` (a different network and value scale).
    """

    def __init__(self, net: str = "alex", device: str | torch.device | None = None, chunk: int = 64):
        self.net = _st.canonical_net(net)
        self.chunk = int(chunk)
        if self.chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        _st.load_stlpips(self.net, device or "cpu")  # raises STLPIPSUnavailable now

    def per_frame(self, pred: Tensor, target: Tensor) -> Tensor:
        """(B,[T,]3,H,W) in [0,1] (any float dtype) -> (B,T) float32 ST-LPIPS distances
        (float64 for float64 frames, computed in float32). ValueError when H or W < MIN_SIZE."""
        p, q, b, t = _as_frames(pred, target)  # (B*T,3,H,W)
        lo = _st.MIN_SIZE[self.net]
        if min(p.shape[-2:]) < lo:
            raise ValueError(f"ST-LPIPS({self.net}) needs frames of at least {lo}x{lo}, got {p.shape[-2]}x{p.shape[-1]}")
        model = _st.load_stlpips(self.net, p.device)  # cached per (net, device); float32 weights
        dtype, p, q = p.dtype, p.float(), q.float()
        with _full_precision(p):
            outs = [_st.distance(model, p[i : i + self.chunk] * 2 - 1, q[i : i + self.chunk] * 2 - 1)
                    for i in range(0, p.shape[0], self.chunk)]
        return torch.cat(outs).reshape(b, t).to(dtype)

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.per_frame(pred, target).mean(1)

    def __repr__(self) -> str:
        return f"STLPIPSMetric(net={self.net!r})"


def stlpips_fn(net: str = "alex", device: str | torch.device | None = None) -> STLPIPSMetric:
    """ST-LPIPS metric callable for ``net`` in {alex, vgg}; raises STLPIPSUnavailable if the
    ``perceptual`` extra (stlpips-pytorch) is not installed."""
    return STLPIPSMetric(net, device)


def stlpips_per_frame(pred: Tensor, target: Tensor, net: str = "alex") -> Tensor:
    """ST-LPIPS per frame -> (B,T)."""
    return STLPIPSMetric(net, pred.device).per_frame(pred, target)


def stlpips(pred: Tensor, target: Tensor, net: str = "alex") -> Tensor:
    """Per-sample ST-LPIPS (mean over frames) -> (B,)."""
    return stlpips_per_frame(pred, target, net).mean(1)


def repeats(frame_tokens: Tensor) -> Tensor:
    """(B,T,N) or (B,T,h,w) token ids of predicted frames -> (B,) bool: last two frames identical."""
    if not isinstance(frame_tokens, Tensor) or frame_tokens.ndim < 3:
        shape = tuple(frame_tokens.shape) if isinstance(frame_tokens, Tensor) else type(frame_tokens).__name__
        raise ValueError(f"frame_tokens must be a tensor (B,T,N) or (B,T,h,w), got {shape}")
    if frame_tokens.shape[1] < 2:
        raise ValueError(f"repetition needs at least 2 predicted frames, got T={frame_tokens.shape[1]}")
    last, prev = frame_tokens[:, -1].flatten(1), frame_tokens[:, -2].flatten(1)  # (B,N)
    return (last == prev).all(dim=1)


def repetition_rate(frame_tokens: Tensor) -> float:
    """Fraction of samples whose last two predicted frames have identical tokens (RLVR-World)."""
    return float(repeats(frame_tokens).float().mean())


def best_of_n(values: Tensor, higher_is_better: bool) -> dict[str, float]:
    """Best-of-n per clip, as RLVR-World's evaluator reports it.

    ``values`` (B,n): one per-sample metric value (already averaged over frames) for each of
    n samples of each of B clips. Returns:

    - ``mean``: mean over clips of the per-clip best (max if ``higher_is_better`` else min);
    - ``std``: mean over clips of the *unbiased* std of that clip's n values (the spread
      between samples of one clip; RLVR-World's ``return_std``); 0 when n == 1;
    - ``std_of_best``: unbiased std over clips of the per-clip best (0 when B == 1).
    """
    if not isinstance(values, Tensor) or values.ndim != 2 or values.shape[1] < 1 or values.shape[0] < 1:
        raise ValueError(f"values must be a (B,n) tensor, got {getattr(values, 'shape', type(values).__name__)}")
    v = values.double()
    best = v.max(1).values if higher_is_better else v.min(1).values  # (B,)
    spread = v.std(1, unbiased=True) if v.shape[1] > 1 else torch.zeros_like(best)
    std_best = best.std(unbiased=True) if best.numel() > 1 else torch.zeros(())
    return {"mean": float(best.mean()), "std": float(spread.mean()), "std_of_best": float(std_best)}


def pass_at_k(correct: Tensor, k: int) -> Tensor:
    """Unbiased pass@k per item from n samples of which c are right (Chen et al. 2021, "Evaluating
    large language models trained on code", eq. 1): ``1 - C(n-c, k) / C(n, k)``, the chance that k
    samples drawn without replacement from the n hold at least one right one.

    ``correct`` (B,n): 0/1 per sample. Returns (B,) float64. Exact (Python integers); k = 1 gives the
    per-item share of right samples, k = n the best-of-n. Raises ValueError when ``correct`` is not
    a (B,n) tensor of 0/1 values or k is not in [1, n]. Used to see how far RLVR's sharpening can go:
    it mostly moves pass@1 towards what pass@k at larger k already finds (Yue et al. 2025).
    """
    if not isinstance(correct, Tensor) or correct.ndim != 2 or correct.shape[1] < 1:
        raise ValueError(f"correct must be a (B,n) tensor, got {getattr(correct, 'shape', type(correct).__name__)}")
    n = correct.shape[1]
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n = {n}, got k = {k}")
    if not bool(((correct == 0) | (correct == 1)).all()):
        raise ValueError("pass@k needs 0/1 values per sample")
    total = math.comb(n, k)
    c = correct.round().long().sum(1).tolist()
    return torch.tensor([1.0 - math.comb(n - ci, k) / total for ci in c], dtype=torch.float64)


def pass_at_k_ks(n: int) -> list[int]:
    """The k reported for n samples: powers of two below n, then n (1, 2, 4, …, n)."""
    ks = [1 << i for i in range(max(n, 1).bit_length()) if (1 << i) < n]
    return ks + [n]


_HIGHER = {"mae": False, "mse": False, "psnr": True, "ssim": True, "lpips": False, "stlpips": False}


@torch.no_grad()
def summarize(pred: Tensor, target: Tensor, lpips: str | LPIPSMetric | None = None,
              stlpips: str | STLPIPSMetric | None = None) -> dict[str, float]:
    """Batch means of mae, mse, psnr, ssim (and lpips / stlpips when given a net name or metric).

    ``pred`` may carry a samples axis: ``(B,n,T,3,H,W)`` against ``target`` ``(B,T,3,H,W)``;
    then each metric is best-of-n per clip (:func:`best_of_n`) and ``<name>_std`` is added.
    """
    fns: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"mae": mae, "mse": mse, "psnr": psnr, "ssim": ssim}
    if lpips is not None:
        fns["lpips"] = lpips if isinstance(lpips, LPIPSMetric) else LPIPSMetric(lpips, pred.device)
    if stlpips is not None:
        fns["stlpips"] = stlpips if isinstance(stlpips, STLPIPSMetric) else STLPIPSMetric(stlpips, pred.device)
    if pred.ndim == target.ndim + 1:  # samples axis
        b, n = pred.shape[:2]
        tgt = target.unsqueeze(1).expand_as(pred).reshape(b * n, *target.shape[1:])
        flat = pred.reshape(b * n, *pred.shape[2:])
        out: dict[str, float] = {}
        for name, fn in fns.items():
            stats = best_of_n(fn(flat, tgt).reshape(b, n), _HIGHER[name])
            out[name], out[f"{name}_std"] = stats["mean"], stats["std"]
        return out
    return {name: float(fn(pred, target).mean()) for name, fn in fns.items()}
