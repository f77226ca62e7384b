"""Metrics against closed forms and independent references (numpy SSIM, pass@k by enumeration).

Run: OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/test_metrics.py
"""

import math

import numpy as np
import pytest
import torch

from worldmodels import metrics


def _frames(*shape, seed=0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) * hi


# ------------------------------------------------------------------ closed forms


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (2, 4, 3, 16, 16)])
def test_identical_frames(shape):
    x = _frames(*shape)
    t = shape[1] if len(shape) == 5 else 1
    assert torch.equal(metrics.mse(x, x), torch.zeros(2))
    assert torch.equal(metrics.mae(x, x), torch.zeros(2))
    # the documented cap: 10*log10(1/(0+1e-8)) = 80 dB
    assert torch.allclose(metrics.psnr(x, x), torch.full((2,), 80.0))
    assert torch.allclose(metrics.ssim(x, x), torch.ones(2), atol=1e-6)
    assert metrics.psnr_per_frame(x, x).shape == (2, t)
    assert metrics.ssim_per_frame(x, x).shape == (2, t)


def test_constant_shift():
    target = _frames(3, 2, 3, 16, 16, hi=0.9)
    pred = target + 0.1
    assert torch.allclose(metrics.mae(pred, target), torch.full((3,), 0.1), atol=1e-6)
    assert torch.allclose(metrics.mse(pred, target), torch.full((3,), 0.01), atol=1e-6)
    assert torch.allclose(metrics.psnr(pred, target), torch.full((3,), 20.0), atol=1e-4)
    assert torch.allclose(metrics.mae_per_frame(pred, target), torch.full((3, 2), 0.1), atol=1e-6)


def test_psnr_is_mean_of_per_frame_not_of_mean_mse():
    target = torch.full((1, 2, 3, 16, 16), 0.5)
    pred = target.clone()
    pred[:, 1] += 0.1  # frame 0 exact (80 dB), frame 1 MSE 0.01 (20 dB)
    per_frame = metrics.psnr_per_frame(pred, target)
    assert torch.allclose(per_frame, torch.tensor([[80.0, 20.0]]), atol=1e-4)
    assert math.isclose(float(metrics.psnr(pred, target)), 50.0, abs_tol=1e-4)
    psnr_of_mean_mse = 10 * math.log10(1 / (0.005 + 1e-8))  # 23.01 dB
    assert abs(float(metrics.psnr(pred, target)) - psnr_of_mean_mse) > 20


def test_per_sample_values_are_independent():
    target = _frames(2, 3, 3, 16, 16, hi=0.8)
    pred = target.clone()
    pred[1] += 0.2
    assert torch.allclose(metrics.mae(pred, target), torch.tensor([0.0, 0.2]), atol=1e-6)


# ------------------------------------------------------------------ SSIM vs numpy


def _gauss(size=11, sigma=1.5):
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(img, g):
    """Separable 'valid' correlation of a (H,W) array with the 1-D kernel g in both axes."""
    k = len(g)
    rows = sum(g[i] * img[i : img.shape[0] - k + 1 + i, :] for i in range(k))
    return sum(g[j] * rows[:, j : rows.shape[1] - k + 1 + j] for j in range(k))


def _ssim_numpy(x, y, c1=0.01**2, c2=0.03**2):
    """Wang et al. Gaussian SSIM on (3,H,W) float64, valid window positions, mean over channels."""
    g = _gauss()
    vals = []
    for a, b in zip(x, y, strict=True):
        mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
        s_aa = _filter_valid(a * a, g) - mu_a**2
        s_bb = _filter_valid(b * b, g) - mu_b**2
        s_ab = _filter_valid(a * b, g) - mu_a * mu_b
        num = (2 * mu_a * mu_b + c1) * (2 * s_ab + c2)
        den = (mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2)
        vals.append((num / den).mean())
    return float(np.mean(vals))


def test_ssim_matches_independent_numpy():
    g = torch.Generator().manual_seed(3)
    # smooth-ish images (so SSIM is far from 0) plus noise of two strengths
    base = torch.nn.functional.interpolate(torch.rand(2, 3, 3, 8, 8, generator=g).flatten(0, 1), size=(24, 20),
                                           mode="bilinear", align_corners=False).reshape(2, 3, 3, 24, 20)
    noise = torch.randn(base.shape, generator=g) * torch.tensor([0.05, 0.2]).view(2, 1, 1, 1, 1)
    pred = (base + noise).clamp(0, 1)
    got = metrics.ssim_per_frame(pred, base)  # (2,3)
    want = torch.tensor([[_ssim_numpy(pred[b, t].double().numpy(), base[b, t].double().numpy())
                          for t in range(3)] for b in range(2)], dtype=torch.float32)
    assert torch.allclose(got, want, atol=2e-5), (got, want)
    assert float(got[0].mean()) > float(got[1].mean())  # more noise, lower SSIM
    assert torch.allclose(metrics.ssim(pred, base), want.mean(1), atol=2e-5)


def test_ssim_needs_window_sized_frames():
    x = _frames(1, 3, 8, 8)
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(x, x)


# ------------------------------------------------------------------ input validation


@pytest.mark.parametrize(
    "pred,target,err,match",
    [
        (torch.zeros(2, 3, 16, 16), torch.zeros(2, 2, 3, 16, 16), ValueError, "same shape"),
        (torch.zeros(2, 4, 16, 16), torch.zeros(2, 4, 16, 16), ValueError, r"\(B,3,H,W\)"),
        (torch.zeros(3, 16, 16), torch.zeros(3, 16, 16), ValueError, r"\(B,3,H,W\)"),
        (torch.zeros(2, 3, 16, 16, dtype=torch.uint8), torch.zeros(2, 3, 16, 16), TypeError, "float frames"),
        (torch.full((2, 3, 16, 16), 255.0), torch.zeros(2, 3, 16, 16), ValueError, r"\[0,1\]"),
        (np.zeros((2, 3, 16, 16)), torch.zeros(2, 3, 16, 16), TypeError, "torch.Tensor"),
    ],
)
def test_bad_inputs(pred, target, err, match):
    with pytest.raises(err, match=match):
        metrics.mse(pred, target)


def test_nan_frames_give_nan_not_error():
    target = _frames(2, 2, 3, 16, 16)
    pred = target.clone()
    pred[1, 0, 0, 0, 0] = float("nan")
    for fn in (metrics.mse, metrics.mae, metrics.psnr, metrics.ssim):
        out = fn(pred, target)
        assert torch.isfinite(out[0]) and torch.isnan(out[1])


# ------------------------------------------------------------------ repetition, best-of-n


def test_repetition_rate_constructed():
    a, b, c = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([9, 9, 9, 9, 9]), torch.tensor([1, 2, 3, 4, 6])
    tokens = torch.stack([
        torch.stack([b, a, a]),  # last two identical -> repeats
        torch.stack([a, a, b]),  # first two identical only -> no
        torch.stack([c, b, b]),  # repeats
        torch.stack([b, a, c]),  # last two differ in one token -> no
    ])  # (4,3,5)
    assert metrics.repeats(tokens).tolist() == [True, False, True, False]
    assert metrics.repetition_rate(tokens) == 0.5
    assert metrics.repetition_rate(tokens.reshape(4, 3, 1, 5)) == 0.5  # (B,T,h,w) grids work too
    assert metrics.repetition_rate(tokens[:1]) == 1.0
    with pytest.raises(ValueError, match="at least 2"):
        metrics.repetition_rate(tokens[:, :1])


def test_best_of_n_hand_example():
    v = torch.tensor([[1.0, 3.0, 2.0], [4.0, 0.0, 5.0]])
    hi = metrics.best_of_n(v, higher_is_better=True)
    assert hi["mean"] == pytest.approx(4.0)  # best per clip 3 and 5
    # per-clip unbiased std: 1.0 and sqrt(7); their mean
    assert hi["std"] == pytest.approx((1.0 + math.sqrt(7.0)) / 2)
    assert hi["std_of_best"] == pytest.approx(math.sqrt(2.0))  # std of [3, 5]
    lo = metrics.best_of_n(v, higher_is_better=False)
    assert lo["mean"] == pytest.approx(0.5)  # best per clip 1 and 0
    assert lo["std"] == pytest.approx(hi["std"])
    one = metrics.best_of_n(v[:, :1], higher_is_better=True)
    assert one == {"mean": 2.5, "std": 0.0, "std_of_best": pytest.approx(math.sqrt(4.5))}
    with pytest.raises(ValueError, match=r"\(B,n\)"):
        metrics.best_of_n(torch.zeros(3), True)


def test_summarize_plain_and_with_samples():
    target = _frames(2, 2, 3, 16, 16, hi=0.8)
    s = metrics.summarize(target + 0.1, target)
    assert set(s) == {"mae", "mse", "psnr", "ssim"}
    assert s["mae"] == pytest.approx(0.1, abs=1e-6) and s["psnr"] == pytest.approx(20.0, abs=1e-4)
    # 3 samples per clip with shifts 0.2, 0.05, 0.1 -> best MAE 0.05 per clip
    pred = torch.stack([target + 0.2, target + 0.05, target + 0.1], dim=1)  # (B,n,T,3,H,W)
    s = metrics.summarize(pred, target)
    assert s["mae"] == pytest.approx(0.05, abs=1e-6)
    assert s["mae_std"] == pytest.approx(float(torch.tensor([0.2, 0.05, 0.1]).std()), abs=1e-6)
    assert s["psnr"] == pytest.approx(10 * math.log10(1 / (0.0025 + 1e-8)), abs=1e-3)


# ------------------------------------------------------------------ low precision

LOW = pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])


@LOW
def test_low_precision_identical_frames_give_80_db(dtype):
    """In float16 the 1e-8 of 10*log10(1/(MSE+1e-8)) rounds away (inf); metrics compute in float32."""
    x = _frames(2, 3, 3, 16, 16).to(dtype)
    psnr = metrics.psnr(x, x)
    assert psnr.dtype == torch.float32 and psnr.tolist() == pytest.approx([80.0, 80.0], abs=1e-4)
    assert metrics.psnr_per_frame(x, x).flatten().tolist() == pytest.approx([80.0] * 6, abs=1e-4)
    assert metrics.mse(x, x).tolist() == [0.0, 0.0]


@LOW
def test_low_precision_frames_give_the_float64_answer(dtype):
    """fp16/bf16 frames: each metric equals the closed form on the same rounded values in
    float64 (numpy), to float32 tolerance, and comes back as float32."""
    target = _frames(2, 2, 3, 16, 16, seed=1, hi=0.9)
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(2)) * 0.02
    pred, target = (target + noise).clamp(0, 1).to(dtype), target.to(dtype)
    p, q = pred.double().numpy(), target.double().numpy()  # (B,T,3,H,W) exact copies
    mae = np.abs(p - q).reshape(2, 2, -1).mean(-1)
    mse = ((p - q) ** 2).reshape(2, 2, -1).mean(-1)
    psnr = 10 * np.log10(1 / (mse + 1e-8))
    ssim = np.array([[_ssim_numpy(p[b, t], q[b, t]) for t in range(2)] for b in range(2)])
    for fn, want, tol in [(metrics.mae_per_frame, mae, 1e-7), (metrics.mse_per_frame, mse, 1e-8),
                          (metrics.psnr_per_frame, psnr, 1e-4), (metrics.ssim_per_frame, ssim, 2e-5)]:
        got = fn(pred, target)
        assert got.dtype == torch.float32, fn.__name__
        assert np.allclose(got.numpy(), want, rtol=1e-5, atol=tol), (fn.__name__, got, want)
    assert metrics.psnr(pred, target).tolist() == pytest.approx(psnr.mean(1).tolist(), rel=1e-5)


def test_metrics_ignore_an_enclosing_bf16_autocast():
    """A bf16 autocast region (training code) must not lower SSIM's convolutions."""
    target = _frames(2, 3, 24, 24, seed=4)
    pred = (target + 0.05 * torch.randn(target.shape, generator=torch.Generator().manual_seed(5))).clamp(0, 1)
    plain = {fn.__name__: fn(pred, target) for fn in (metrics.ssim, metrics.psnr, metrics.mae)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for fn in (metrics.ssim, metrics.psnr, metrics.mae):
            got = fn(pred, target)
            assert got.dtype == torch.float32 and torch.allclose(got, plain[fn.__name__], rtol=1e-6, atol=1e-7)


def test_lpips_low_precision_returns_the_float32_value(tmp_path, monkeypatch):
    """Random stand-in SqueezeNet backbone (NOT real LPIPS): fp16 frames and a bf16 autocast
    region give the float32 value of the same rounded frames, as float32."""
    import torchvision

    from worldmodels import lpips_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    feats = torchvision.models.squeezenet1_1(weights=None).features.state_dict()
    path = lpips_weights.backbone_path("squeeze")
    path.parent.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in feats.items()}, path)
    lp = metrics.lpips_fn("squeeze")
    target = _frames(2, 3, 24, 24, seed=6).half()
    pred = (target.float() * 0.8 + 0.1).half()
    want = lp.per_frame(pred.float(), target.float())  # float32 reference on the same values
    got = lp.per_frame(pred, target)
    assert got.dtype == torch.float32 and torch.allclose(got, want, rtol=1e-6, atol=1e-7) and (want > 0).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = lp(pred.float(), target.float())
    assert got.dtype == torch.float32 and torch.allclose(got, want.mean(1), rtol=1e-6, atol=1e-7)
    lpips_weights.clear_cache()


def test_pass_at_k_matches_the_mean_over_all_k_subsets():
    """Independent reference: enumerate every k-subset of the n samples."""
    import itertools

    from worldmodels.metrics import pass_at_k, pass_at_k_ks

    g = torch.Generator().manual_seed(0)
    correct = (torch.rand(6, 7, generator=g) < torch.linspace(0, 1, 6)[:, None]).double()
    for k in range(1, 8):
        ref = [sum(any(row[i] for i in s) for s in itertools.combinations(range(7), k))
               / math.comb(7, k) for row in correct.tolist()]
        assert pass_at_k(correct, k).tolist() == pytest.approx(ref)
    assert pass_at_k(correct, 7).tolist() == correct.max(1).values.tolist()   # k = n: best of n
    assert pass_at_k(correct, 1).tolist() == pytest.approx(correct.mean(1).tolist())
    assert pass_at_k_ks(32) == [1, 2, 4, 8, 16, 32] and pass_at_k_ks(5) == [1, 2, 4, 5]
    assert pass_at_k_ks(1) == [1]


@pytest.mark.parametrize("bad,k", [(torch.ones(3), 1), (torch.ones(2, 3), 0), (torch.ones(2, 3), 4),
                                   (torch.full((2, 3), 0.5), 1)])
def test_pass_at_k_refuses_bad_input(bad, k):
    from worldmodels.metrics import pass_at_k

    with pytest.raises(ValueError, match="pass@k|correct"):
        pass_at_k(bad, k)
