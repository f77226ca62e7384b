"""Reward registry: spec parsing, weights, aggregation, user rewards, NaN handling.

Run: OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/test_rewards.py
"""

import math
import sys
import textwrap

import pytest
import torch

from worldmodels import lpips_weights, metrics, rewards
from worldmodels.rewards import Reward, build_reward, register_reward


def _clip(b=2, t=3, seed=0, hi=0.6):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, t, 3, 16, 16, generator=g) * hi  # (B,T,3,H,W)


def _shifted(target, shifts):
    """pred = target + shifts[t] on frame t, so per-frame MAE is exactly shifts[t]."""
    s = torch.tensor(shifts, dtype=target.dtype).view(1, -1, 1, 1, 1)
    return target + s


@pytest.fixture(autouse=True)
def no_plugins(monkeypatch):
    """Keep other modalities' (possibly in-progress) plugin modules out of these tests."""
    monkeypatch.setattr(rewards, "PLUGIN_MODULES", [])


@pytest.fixture
def isolated_registry(monkeypatch):
    monkeypatch.setattr(rewards, "_REGISTRY", dict(rewards._REGISTRY))


def test_builtins_registered():
    names = rewards.registered_rewards()
    for n in ("mse", "mae", "psnr", "ssim", "lpips", "lpips_vgg", "lpips_alex", "lpips_squeeze"):
        assert n in names


def test_single_and_signs():
    target = _clip()
    pred = _shifted(target, [0.1, 0.1, 0.1])
    items = {"target_frames": target}
    for spec, want in [("mae", -0.1), ("mse", -0.01), ("psnr", 20.0)]:
        r = build_reward(spec)
        total, parts = r(pred, items)
        assert r.names == [spec] and total.shape == (2,)
        assert torch.allclose(total, torch.full((2,), want), atol=1e-4), spec
        assert torch.equal(parts[spec], total)
    total, _ = build_reward("ssim")(target, items)
    assert torch.allclose(total, torch.ones(2), atol=1e-6)  # higher is better, 1 for a perfect frame


def test_weights_and_combinations_exact():
    target = _clip()
    pred = _shifted(target, [0.1, 0.2, 0.3])
    items = {"target_frames": target}
    mae = -metrics.mae(pred, target)
    mse = -metrics.mse(pred, target)
    r = build_reward("mae+mse")
    assert r.names == ["mae", "mse"] and r.weights == {"mae": 1.0, "mse": 1.0}
    total, parts = r(pred, items)
    assert torch.allclose(parts["mae"], mae) and torch.allclose(parts["mse"], mse)
    assert torch.allclose(total, mae + mse)
    r = build_reward("mse:1,mae:0.5")
    assert r.weights == {"mse": 1.0, "mae": 0.5}
    total, parts = r(pred, items)
    assert torch.allclose(parts["mae"], mae)  # parts are unweighted
    assert torch.allclose(total, mse + 0.5 * mae)
    total, _ = build_reward(" mae : 0.5 ")(pred, items)
    assert torch.equal(total, 0.5 * parts["mae"])  # scaling is exact
    assert build_reward("mae:2e-1").weights == {"mae": 0.2}


@pytest.mark.parametrize(
    "aggregate,want",
    [
        ("mean", -(0.1 + 0.2 + 0.3) / 3),
        ("last", -0.3),
        # w_t = 0.9**t / (1 + 0.9 + 0.81)
        ("discount", -(0.1 * 1 + 0.2 * 0.9 + 0.3 * 0.81) / 2.71),
    ],
)
def test_frame_aggregation(aggregate, want):
    target = _clip()
    total, _ = build_reward("mae", aggregate=aggregate, gamma=0.9)(_shifted(target, [0.1, 0.2, 0.3]), {"target_frames": target})
    assert torch.allclose(total, torch.full((2,), want), atol=1e-6)


def test_discount_gamma_one_is_mean_and_bad_settings():
    v = torch.tensor([[1.0, 2.0, 6.0]])
    assert torch.allclose(rewards.aggregate_frames(v, "discount", 1.0), torch.tensor([3.0]))
    with pytest.raises(ValueError, match="aggregate"):
        build_reward("mae", aggregate="median")
    with pytest.raises(ValueError, match="gamma"):
        build_reward("mae", aggregate="discount", gamma=0.0)


def test_single_frame_predictions():
    target = _clip(t=1)[:, 0]  # (B,3,H,W)
    total, _ = build_reward("mae", aggregate="last")(target + 0.05, {"target_frames": target})
    assert torch.allclose(total, torch.full((2,), -0.05), atol=1e-6)


def test_nan_and_inf_predictions_are_masked_not_raised():
    target = _clip(b=3)
    pred = _shifted(target, [0.1, 0.1, 0.1])
    pred[1, 2, 0, 3, 3] = float("nan")
    pred[2, 0, 1, 0, 0] = float("inf")
    r = build_reward("mae+psnr+ssim", aggregate="discount")
    total, parts = r(pred, {"target_frames": target})
    assert Reward.valid_mask(total).tolist() == [True, False, False]
    assert math.isclose(float(total[0]), float(build_reward("mae+psnr+ssim", aggregate="discount")(
        pred[:1], {"target_frames": target[:1]})[0][0]), rel_tol=1e-6)
    for name in r.names:
        assert torch.isfinite(parts[name][0]) and torch.isnan(parts[name][1:]).all()
    # out-of-range (but finite) predictions are clamped to [0,1] as after decoding
    total, _ = build_reward("mae")(target + 2.0, {"target_frames": target})
    assert torch.allclose(total, -(1 - target).flatten(1).mean(1), atol=1e-6)


def test_user_reward_by_dotted_path(tmp_path, monkeypatch):
    pkg = tmp_path / "wm_test_userpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "rewards.py").write_text(textwrap.dedent("""
        import torch
        CALLS = []
        def score(predictions, items, **ctx):
            CALLS.append(ctx)
            return predictions.flatten(1).mean(1) * 0 + items["bonus"]
        def as_list(predictions, items, **ctx):
            return [1.0, None]
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    target = _clip()
    pred = _shifted(target, [0.1, 0.1, 0.1])
    items = {"target_frames": target, "bonus": torch.tensor([3.0, 5.0])}
    r = build_reward("wm_test_userpkg.rewards:score", aggregate="last")
    assert r.names == ["wm_test_userpkg.rewards:score"]
    total, parts = r(pred, items, step=7)
    assert torch.equal(total, torch.tensor([3.0, 5.0]))  # used as-is, no aggregation
    assert sys.modules["wm_test_userpkg.rewards"].CALLS[-1] == {"step": 7}
    total, parts = build_reward("mae+wm_test_userpkg.rewards:score:0.5")(pred, items)
    assert torch.allclose(total, torch.tensor([-0.1 + 1.5, -0.1 + 2.5]), atol=1e-6)
    assert set(parts) == {"mae", "wm_test_userpkg.rewards:score"}
    total, _ = build_reward("wm_test_userpkg.rewards:as_list")(pred, items)
    assert total[0] == 1.0 and Reward.valid_mask(total).tolist() == [True, False]
    with pytest.raises(ValueError, match="no callable 'missing'"):
        build_reward("wm_test_userpkg.rewards:missing")
    with pytest.raises(ValueError, match="cannot import module 'wm_no_such_pkg.rewards'"):
        build_reward("wm_no_such_pkg.rewards:score")


def test_register_non_frame_reward(isolated_registry):
    @register_reward("test_exact_match")
    def exact(predictions, items, **ctx):
        return torch.tensor([float(p == g) for p, g in zip(predictions, items["gold"], strict=True)])

    r = build_reward("test_exact_match:2")
    total, parts = r(["a", "b"], {"gold": ["a", "c"]})
    assert total.tolist() == [2.0, 0.0] and parts["test_exact_match"].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="already registered"):
        register_reward("test_exact_match")(lambda p, i: None)
    with pytest.raises(ValueError, match="must match"):
        register_reward("Bad-Name")(lambda p, i: None)


def test_plugin_module_registers_on_first_miss(isolated_registry, tmp_path, monkeypatch):
    (tmp_path / "wm_test_reward_plugin.py").write_text(textwrap.dedent("""
        import torch
        from worldmodels.rewards import register_reward

        @register_reward("test_plugin_len")
        def plugin_len(predictions, items, **ctx):
            return torch.tensor([float(len(p)) for p in predictions])
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(rewards, "PLUGIN_MODULES", ["wm_test_no_such_plugin", "wm_test_reward_plugin"])
    total, _ = build_reward("test_plugin_len")(["ab", "abcd"], {})
    assert total.tolist() == [2.0, 4.0]


def test_unknown_name_lists_registered():
    with pytest.raises(ValueError) as info:
        build_reward("lpips+maee")
    msg = str(info.value)
    assert "'maee'" in msg and "mae" in msg and "lpips_alex" in msg and "ssim" in msg


@pytest.mark.parametrize("spec", ["", "  ", "mae+", "+mae", "mae,,mse", "mae:", "mae::0.5", "mae:1:2", "mae+mae",
                                  "mae:nan", "m-ae", "pkg.mod:"])
def test_malformed_spec_quotes_it(spec):
    with pytest.raises(ValueError) as info:
        build_reward(spec)
    assert repr(spec) in str(info.value)


def test_missing_targets_is_a_clear_error():
    with pytest.raises(KeyError, match="target_frames"):
        build_reward("mae")(_clip(), {"frames": _clip()})


def test_lpips_reward_without_weights_fails_at_build(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for spec, file in [("lpips+mae", "vgg16-397923af.pth"), ("lpips_alex", "alexnet-owt-7be5be79.pth"),
                       ("mae:1,lpips_squeeze:0.5", "squeezenet1_1-b8a52dc0.pth")]:
        with pytest.raises(metrics.LPIPSWeightsMissing, match=file):
            build_reward(spec)


def test_lpips_plus_mae_with_local_random_backbone(tmp_path, monkeypatch):
    """Random stand-in backbone (NOT real LPIPS): checks wiring, sign and weights only."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    feats = torchvision.models.squeezenet1_1(weights=None).features.state_dict()
    path = lpips_weights.backbone_path("squeeze")
    path.parent.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in feats.items()}, path)
    target = _clip(b=2, t=2, hi=0.8)
    target = torch.nn.functional.interpolate(target.flatten(0, 1), size=(24, 24)).reshape(2, 2, 3, 24, 24)
    pred = _shifted(target, [0.1, 0.2])
    r = build_reward("lpips_squeeze+mae:0.5", aggregate="last")
    assert r.weights == {"lpips_squeeze": 1.0, "mae": 0.5}
    total, parts = r(pred, {"target_frames": target})
    lp = metrics.lpips_fn("squeeze").per_frame(pred, target)[:, -1]
    assert torch.allclose(parts["lpips_squeeze"], -lp, atol=1e-6) and (lp > 0).all()
    assert torch.allclose(total, -lp - 0.5 * 0.2, atol=1e-5)
    total, _ = r(target, {"target_frames": target})
    assert torch.allclose(total, torch.zeros(2), atol=1e-6)


def test_psnr_reward_of_a_perfect_fp16_prediction_is_80_and_kept_in_its_group():
    """A perfect float16 prediction scores psnr 80 (not inf): valid, and not dropped by GRPO."""
    from worldmodels.train.grpo_loss import group_advantages

    target = torch.full((3, 2, 3, 16, 16), 0.5, dtype=torch.float16)  # one prompt, 3 samples
    pred = target.clone()
    pred[1] += 0.25  # MSE 0.0625 exactly (0.75 is a float16)
    pred[2, 1] += 0.125  # frame 0 perfect, frame 1 MSE 0.015625
    total, parts = build_reward("psnr")(pred, {"target_frames": target})
    p80, p1, p2 = 80.0, 10 * math.log10(1 / (0.0625 + 1e-8)), 10 * math.log10(1 / (0.015625 + 1e-8))
    want = [p80, p1, (p80 + p2) / 2]
    assert total.dtype == torch.float32 and total.tolist() == pytest.approx(want, abs=1e-4)
    assert Reward.valid_mask(total).tolist() == [True, True, True]
    adv, valid, stats = group_advantages(total, 3, "group")
    assert valid.tolist() == [True, True, True] and stats["invalid_rewards"] == 0
    mean = sum(want) / 3
    std = math.sqrt(sum((r - mean) ** 2 for r in want) / 2)
    assert adv.tolist() == pytest.approx([(r - mean) / (std + 1e-6) for r in want], rel=1e-5)


def test_aggregate_frames_in_float32_and_selects_counted_frames():
    """fp16 per-frame values aggregate in float32; NaN only where a frame counts."""
    v = torch.tensor([[80.0, 20.0, 60.0], [-0.1, -0.2, -0.3]], dtype=torch.float16)
    vv = v.double().tolist()  # the float16 values, exactly
    w = [0.9**t / 2.71 for t in range(3)]
    for aggregate, want in [("mean", [sum(r) / 3 for r in vv]), ("last", [r[-1] for r in vv]),
                            ("discount", [sum(a * b for a, b in zip(r, w, strict=True)) for r in vv])]:
        got = rewards.aggregate_frames(v, aggregate, 0.9)
        assert got.dtype == torch.float32 and got.tolist() == pytest.approx(want, rel=1e-6), aggregate
    # gamma**t underflows (float64) beyond t ~ 161 for gamma 0.01: such a frame counts for
    # nothing, so a NaN there must not turn the sample's reward into NaN (NaN * 0 = NaN)
    v = torch.ones(2, 200)
    v[0, 199] = float("nan")
    v[1, 1] = float("nan")  # a frame that counts: only this sample is NaN
    got = rewards.aggregate_frames(v, "discount", 0.01)
    assert got[0].item() == pytest.approx(1.0, rel=1e-6) and math.isnan(got[1].item())


def test_readout_state_reward_reads_low_precision_frames_in_float32(tmp_path, isolated_registry):
    """An (untrained, stand-in) state readout scores fp16 frames, also inside a bf16 autocast
    region, exactly as the float32 copies of the same frames, and returns float32."""
    from worldmodels.envs.robot_readout import StateReadout
    from worldmodels.tasks import video_rewards as readout_reward

    # the plugin registers on first import; register again here (same fn: a no-op) in case
    # another test imported it into an isolated registry
    register_reward("readout_state", per_frame=True, factory=True)(readout_reward._readout_state_factory)
    torch.manual_seed(0)
    StateReadout(image_size=16, width=4).save(tmp_path / "ro")
    reward = build_reward("readout_state", options={"readout": str(tmp_path / "ro")})
    target = _clip(b=2, t=2, seed=1).half()
    pred = _clip(b=2, t=2, seed=2).half()
    want, _ = reward(pred.float(), {"target_frames": target.float()})
    assert (want < 0).all()
    got, _ = reward(pred, {"target_frames": target})
    assert got.dtype == torch.float32 and torch.allclose(got, want, rtol=1e-6, atol=1e-7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = reward(pred.float(), {"target_frames": target.float()})
    assert got.dtype == torch.float32 and torch.allclose(got, want, rtol=1e-6, atol=1e-7)
