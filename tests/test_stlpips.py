"""ST-LPIPS (shift-tolerant LPIPS, issue 19.5): the offline perceptual metric and reward.

References: the stlpips-pytorch package's own ``LPIPS(variant="shift_tolerant")`` loading its
own weights (independent loading path), real BAIR frames from ../shared/data, hand-built cases.

    OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/test_stlpips.py
"""

import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from worldmodels import metrics as M
from worldmodels import stlpips as ST
from worldmodels.rewards import Reward, build_reward, get_reward

pytest.importorskip("stlpips_pytorch", reason="the 'perceptual' extra (stlpips-pytorch) is not installed")

sys.path.insert(0, str(Path(__file__).resolve().parent / "tasks"))
from wm_fakes import FakeFrameTokenizer, make_episodes  # noqa: E402

runner = CliRunner()


def smooth_frames(b=2, t=2, size=32, seed=0):
    """(b,t,3,size,size) in [0,1]: random noise blurred (image-like, not white noise)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b * t, 3, size // 4, size // 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    return x.clamp(0, 1).reshape(b, t, 3, size, size)


def package_reference(net):
    """The package's own ST-LPIPS: its constructor loads its weight file itself (pretrained=True)."""
    return ST.import_stlpips().LPIPS(net=net, variant="shift_tolerant", verbose=False).eval()


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_equals_the_package_own_lpips(net):
    pred, target = smooth_frames(seed=1), smooth_frames(seed=2)
    ours = M.stlpips_fn(net).per_frame(pred, target)  # (2,2)
    with torch.no_grad():
        ref = package_reference(net)(pred.flatten(0, 1), target.flatten(0, 1), normalize=True).reshape(2, 2)
    assert ours.dtype == torch.float32 and ours.shape == (2, 2)
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-7), (ours, ref)
    assert (ours > 0.01).all()  # different images: clearly non-zero


def test_repeated_frames_through_the_trunk_once_give_the_package_value():
    """GRPO-like batch: 3 targets each repeated 4 times, predictions with repeats; the deduplicated
    trunk pass equals the package's forward on the full batch (and counts 3 + 5 frames)."""
    targets = smooth_frames(b=3, t=1, size=24, seed=10)[:, 0].repeat_interleave(4, 0)  # (12,3,24,24)
    preds = smooth_frames(b=5, t=1, size=24, seed=11)[:, 0][torch.tensor([0, 0, 1, 2, 2, 2, 3, 4, 4, 1, 0, 3])]
    model = ST.load_stlpips("alex")
    seen = []
    hook = model.net.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    try:
        ours = M.stlpips_fn("alex").per_frame(preds, targets)[:, 0]
    finally:
        hook.remove()
    assert sorted(seen) == [3, 5]
    with torch.no_grad():
        ref = package_reference("alex")(preds, targets, normalize=True).flatten()
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-7), (ours, ref)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_every_tensor_comes_from_the_shipped_file_nothing_downloaded(net, tmp_path, monkeypatch):
    """Complete trained networks: every parameter/buffer equals the package's file (no random or
    torchvision trunk); an empty TORCH_HOME stays empty (nothing fetched)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    ST.clear_cache()
    model = ST.load_stlpips(net)
    state = torch.load(ST.weights_path(net), map_location="cpu", weights_only=True)
    own = model.state_dict()
    assert set(state) == {k for k in own if not k.startswith("lins.")}
    for k, v in own.items():  # lins.<i>.* are the lin<i> modules under a second name
        assert torch.equal(v, state[re.sub(r"^lins\.(\d+)\.", r"lin\1.", k)]), k
    assert not (tmp_path / "th").exists()
    assert ST.load_stlpips(net) is model  # cached
    assert not any(p.requires_grad for p in model.parameters()) and not model.training


def test_unused_imports_are_stubbed_only_during_the_import():
    ST.import_stlpips()
    for name in ("IPython", "torchsummary"):
        if importlib.util.find_spec(name) is None:  # the stub was removed after the import
            assert name not in sys.modules


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_identical_frames_score_zero(net):
    x = smooth_frames(b=3, t=2, size=24)
    d = M.stlpips_fn(net).per_frame(x, x.clone())
    assert d.shape == (3, 2) and d.dtype == torch.float32
    assert torch.all(d.abs() < 1e-6), d


def _noisy_with_mse(ref, target_mse, seed=0):
    """ref + Gaussian noise rescaled (after clamping to [0,1]) so each frame's MSE equals target_mse."""
    noise = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed))
    s = target_mse.sqrt().view(-1, 1, 1, 1)
    for _ in range(30):
        y = (ref + s * noise).clamp(0, 1)
        s = s * (target_mse / M.mse_per_frame(y, ref)[:, 0]).sqrt().view(-1, 1, 1, 1)
    return y


def _check_shift_beats_noise(frames, margin):
    """frames (N,3,H,W+1): a one-pixel horizontal shift vs noise of the same per-frame MSE;
    ST-LPIPS of the shift must be below ``margin`` times that of the noise."""
    ref, shifted = frames[..., :-1], frames[..., 1:]
    mse = M.mse_per_frame(shifted, ref)[:, 0]
    noisy = _noisy_with_mse(ref, mse)
    assert torch.allclose(M.mse_per_frame(noisy, ref)[:, 0], mse, rtol=1e-3)  # MSE cannot tell them apart
    for net in ("alex", "vgg"):
        st = M.stlpips_fn(net)
        d_shift, d_noise = st.per_frame(shifted, ref)[:, 0], st.per_frame(noisy, ref)[:, 0]
        assert (d_shift < margin * d_noise).all(), (net, d_shift, d_noise)


def blocks(n=4, h=32, w=33, seed=0):
    """(n,3,h,w) scenes of 6 flat-coloured rectangles (sharp edges, as objects in robot video)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 3, h, w), 0.2)
    for i in range(n):
        for _ in range(6):
            y0, x0 = torch.randint(0, h - 6, (2,), generator=g).tolist()
            hh, ww = torch.randint(4, 12, (2,), generator=g).tolist()
            x[i, :, y0 : y0 + hh, x0 : x0 + ww] = torch.rand(3, 1, 1, generator=g)
    return x


def test_one_pixel_shift_scores_lower_than_equal_mse_noise_synthetic():
    # measured: shift 0.004-0.009 (alex) / 0.015-0.019 (vgg), noise 0.07-0.45 / 0.46-0.50
    _check_shift_beats_noise(blocks(seed=0), margin=0.2)


def test_one_pixel_shift_scores_lower_than_equal_mse_noise_bair(shared_data):
    import numpy as np

    img = np.load(shared_data / "robot" / "bair_sample.npz")["image"][:6]  # (6,64,64,3) 0..255
    frames = torch.tensor(img, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    # measured: shift 0.007-0.016 (alex) / 0.015-0.017 (vgg), noise 0.24-0.33 / 0.50-0.56
    _check_shift_beats_noise(frames, margin=0.1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_frames_give_the_float32_value(dtype):
    pred, target = smooth_frames(seed=3, size=24), smooth_frames(seed=4, size=24)
    p, q = pred.to(dtype), target.to(dtype)
    st = M.stlpips_fn("alex")
    want = st.per_frame(p.float(), q.float())  # the same (rounded) frames in float32
    got = st.per_frame(p, q)
    assert got.dtype == torch.float32 and torch.equal(got, want)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # an enclosing bf16 region does not lower it
        assert torch.equal(st.per_frame(p, q), want)
    assert M.stlpips_fn("alex").per_frame(pred.double(), target.double()).dtype == torch.float64


def test_bad_inputs_and_unknown_nets_are_named():
    with pytest.raises(ValueError, match="squeeze"):
        M.stlpips_fn("squeeze")
    assert ST.canonical_net("AlexNet") == "alex" and ST.canonical_net("vgg16") == "vgg"
    with pytest.raises(ValueError, match="at least 21x21"):
        M.stlpips_fn("alex")(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\[0,1\]"):
        M.stlpips_fn("alex")(torch.rand(1, 3, 24, 24) * 2, torch.rand(1, 3, 24, 24))


def test_differentiable_wrt_prediction():
    pred = smooth_frames(b=1, t=1, size=24, seed=5).requires_grad_(True)
    M.stlpips_fn("alex")(pred, smooth_frames(b=1, t=1, size=24, seed=6)).sum().backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_strict_load_names_a_missing_or_corrupt_file(tmp_path):
    model = ST.import_stlpips().LPIPS(pretrained=False, net="alex", variant="shift_tolerant", verbose=False)
    state = torch.load(ST.weights_path("alex"), map_location="cpu", weights_only=True)
    del state["lin3.model.1.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(ST.STLPIPSUnavailable, match="missing lin3.model.1.weight"):
        ST._load_weights(model, tmp_path / "partial.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ST.STLPIPSUnavailable, match="could not read"):
        ST._load_weights(model, tmp_path / "bad.pth")
    with pytest.raises(ST.STLPIPSUnavailable, match="reinstall"):
        ST._load_weights(model, tmp_path / "absent.pth")


def test_summarize_reports_stlpips():
    x = smooth_frames(b=2, t=1, size=24)
    s = M.summarize(x, x, stlpips="alex")
    assert s["stlpips"] == pytest.approx(0.0, abs=1e-6) and "lpips" not in s


# ---------------------------------------------------------------- rewards


def test_rewards_registered_negated_and_never_lpips(tmp_path, monkeypatch):
    pred, target = smooth_frames(seed=7, size=24), smooth_frames(seed=8, size=24)
    r = build_reward("stlpips+mae")
    total, parts = r(pred, {"target_frames": target})
    want = -M.stlpips_fn("alex")(pred, target)  # stlpips = stlpips_alex, mean over frames
    assert torch.allclose(parts["stlpips"], want, atol=1e-7)
    assert torch.allclose(total, want - M.mae(pred, target), atol=1e-6)
    _, parts = build_reward("stlpips_vgg")(pred, {"target_frames": target})
    assert torch.allclose(parts["stlpips_vgg"], -M.stlpips_fn("vgg")(pred, target), atol=1e-7)
    assert get_reward("stlpips").fn is get_reward("stlpips_alex").fn
    assert get_reward("lpips").fn is not get_reward("stlpips").fn
    # lpips without its ImageNet backbone still fails; ST-LPIPS is never substituted for it
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(M.LPIPSWeightsMissing):
        build_reward("lpips+mae")


def test_nan_frames_give_nan_reward_masked():
    target = smooth_frames(b=3, t=2, size=24)
    pred = smooth_frames(b=3, t=2, size=24, seed=9)
    pred[1, 1, 0, 2, 2] = float("nan")
    r = build_reward("stlpips+mae")
    total, parts = r(pred, {"target_frames": target})
    assert Reward.valid_mask(total).tolist() == [True, False, True]
    assert torch.isnan(parts["stlpips"][1]) and torch.isfinite(parts["stlpips"][[0, 2]]).all()


def test_grpo_trainer_excludes_nan_stlpips_rewards():
    """A stand-in task whose decoded frames are NaN for some prompts: the trainer counts them as
    invalid rewards, gives them no advantage and no loss, and the step stays finite."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from worldmodels.tasks.base import RolloutRequest, Segment, Task
    from worldmodels.train.grpo import GRPOTrainer
    from worldmodels.train.grpo_config import GRPOConfig

    class FrameTask(Task):
        name, vocab_size = "frames", 16

        def __init__(self):
            self.prompts = torch.randint(0, 8, (16, 3), generator=torch.Generator().manual_seed(0))
            self.nan_rows = []

        def dataset(self, split):
            return [{"prompt": p} for p in self.prompts]

        def rollout_request(self, batch):
            return RolloutRequest(batch["prompt"], [Segment("generate", 4, allowed=(8, 16))])

        def decode(self, batch, output):  # 4 tokens -> the brightness of 4 quadrants, 24x24
            v = (output.completion_ids.float() - 8) / 7  # (B,4)
            frames = v.reshape(-1, 1, 1, 2, 2).repeat_interleave(12, -2).repeat_interleave(12, -1)
            frames = frames.expand(-1, 1, 3, 24, 24).clone()
            bad = batch["prompt"][:, 0] < 4
            frames[bad] = float("nan")
            self.nan_rows.append(bad)
            return frames

        def reward_items(self, batch):
            return {"target_frames": torch.full((len(batch["prompt"]), 1, 3, 24, 24), 0.5)}

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=16, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=16, tie_word_embeddings=False))
    task = FrameTask()
    cfg = GRPOConfig(num_generations=4, prompts_per_step=4, mini_batch_prompts=2, learning_rate=1e-3,
                     beta=0.0, max_steps=1, device="cpu", eval_steps=0, save_steps=0)
    tr = GRPOTrainer(cfg, task, model, build_reward("stlpips+mae"))
    m = tr.train_step()
    bad = torch.cat(task.nan_rows)
    assert 0 < int(bad.sum()) < len(bad)  # this seed gives both kinds
    assert m["invalid_rewards"] == int(bad.sum())
    assert torch.equal(torch.cat([c.valid for c in tr._last_chunks]), ~bad)
    for c in tr._last_chunks:
        assert not c.loss_mask[~c.valid.to(c.loss_mask.device)].any()
        assert (c.advantages[~c.valid] == 0).all()
    assert all(math.isfinite(v) for k, v in m.items() if isinstance(v, float))
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ---------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def world_model(tmp_path_factory):
    """A tiny world model over a 24x24 stand-in tokenizer (ST-LPIPS alex needs >= 21 pixels)."""
    import numpy as np

    from worldmodels.clips import ClipDataset
    from worldmodels.episodes import dataset_split
    from worldmodels.models import build_backbone
    from worldmodels.tasks.video import VideoSpec, VideoTask
    from worldmodels.tasks.video_data import ActionCodec
    from worldmodels.world_model import export_backbone, write_world_model_meta

    root = tmp_path_factory.mktemp("wm24")
    data = make_episodes(root / "data", n=6, T=8, size=24, test_every=3)
    tok = FakeFrameTokenizer(image_size=24, grid=4)
    tok.save_pretrained(root / "tok")
    acts = ClipDataset(dataset_split(data, "train"), 1).all_actions()
    task = VideoTask(tok, VideoSpec("multi", 1, 3), ActionCodec.fit(np.asarray(acts, np.float32)),
                     data_root=str(data), tokenizer_dir=str(root / "tok"))
    torch.manual_seed(0)
    out = root / "wm_video"
    write_world_model_meta(out, task)
    export_backbone(out, build_backbone("test", task.vocab_size, 128))
    return out


def test_rlvr_video_with_stlpips_mae(world_model, tmp_path):
    from worldmodels.cli import app

    out = tmp_path / "rlvr"
    r = runner.invoke(app, ["rlvr", "video", "--init", str(world_model), "--reward", "stlpips+mae",
                            "--out", str(out), "--preset", "tiny", "--steps", "1",
                            "--set", "grpo.prompts_per_step=2", "--set", "grpo.mini_batch_prompts=2",
                            "--set", "grpo.num_generations=2", "--set", "grpo.eval_steps=0",
                            "--set", "grpo.save_steps=1", "--set", "grpo.device=cpu"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    step = next(x for x in rows if "reward" in x)
    assert step["reward/stlpips"] <= 0 and step["reward/mae"] <= 0
    assert step["reward"] == pytest.approx(step["reward/stlpips"] + step["reward/mae"], abs=1e-5)


def test_eval_video_reports_stlpips(world_model, tmp_path):
    from worldmodels.commands.eval import app

    r = runner.invoke(app, ["video", "--model", str(world_model), "--data", str(world_model.parent / "data"),
                            "--out", str(tmp_path / "ev"),
                            "--samples", "2", "--clips", "3", "--gifs", "0", "--lpips", "none",
                            "--stlpips", "alex", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert res["stlpips_net"] == "alex" and "lpips" not in res["single"]
    for block in ("single", "multi"):
        v = res[block]["stlpips"]
        assert 0 <= v["best_of_n"] <= v["mean"] + 1e-9  # lower is better: best is the min
        for base in ("copy_last", "copy_last_tokens", "tokenizer"):
            assert math.isfinite(res[block][base]["stlpips"])
    assert "ST-LPIPS(alex)" in (tmp_path / "ev" / "eval.md").read_text()


@pytest.fixture
def package_absent(monkeypatch):
    """As if stlpips-pytorch were not installed."""
    real = importlib.util.find_spec
    for name in [m for m in sys.modules if m == "stlpips_pytorch" or m.startswith("stlpips_pytorch.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.split(".")[0] == "stlpips_pytorch" else real(name, *a))
    ST.clear_cache()
    yield
    ST.clear_cache()


def test_missing_package_one_message_naming_the_extra(package_absent, tmp_path):
    with pytest.raises(ST.STLPIPSUnavailable, match=r"\.\[perceptual\]"):
        M.stlpips_fn("alex")
    with pytest.raises(ST.STLPIPSUnavailable, match="perceptual"):
        build_reward("stlpips+mae")
    from worldmodels.cli import app

    r = runner.invoke(app, ["rlvr", "video", "--init", str(tmp_path / "nope"), "--reward", "stlpips+mae",
                            "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "perceptual" in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "x").exists()
    r = runner.invoke(app, ["eval", "video", "--model", str(tmp_path / "nope"), "--stlpips", "alex"])
    assert r.exit_code == 2 and "perceptual" in r.output and "Traceback" not in r.output, r.output
