"""Tokenizer training: exact resume, logs, checkpoints, sample grids, GAN/VQ/compressive paths."""

import json

import numpy as np
import pytest
import torch

from tokenizers_video import (
    CompressiveTokenizer,
    CompressiveTokenizerConfig,
    FrameTokenizer,
    FrameTokenizerConfig,
    TrainConfig,
    load_tokenizer,
    train,
)
from tokenizers_video.train import BatchOrder, lr_factor, motion_weights


def frames(n=24, size=32):
    g = torch.Generator().manual_seed(1)
    base = torch.rand(n, 3, 1, 1, generator=g) * torch.ones(n, 3, size, size)
    base[:, :, 8:16, 8:16] = torch.rand(n, 3, 1, 1, generator=g)  # a square on a plain background
    return [base[i] for i in range(n)]


def frame_model(quantizer="fsq"):
    torch.manual_seed(0)
    return FrameTokenizer(FrameTokenizerConfig(
        image_size=32, block_out_channels=(8, 16), norm_num_groups=4, fsq_levels=(5, 3),
        quantizer=quantizer, vq_codebook_size=16, vq_dim=4, vq_restart_threshold=0.5, vq_decay=0.5))


def cfg(**kw):
    base = dict(steps=6, batch_size=4, lr=3e-3, warmup_steps=2, log_every=1, save_every=3,
                image_every=0, progress=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def losses(out):
    return [json.loads(ln)["loss"] for ln in (out / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("quantizer,gan", [("fsq", 2), ("vq", -1)])
def test_resume_continues_the_same_loss_trajectory(tmp_path, quantizer, gan):
    ds = frames()
    full = train(frame_model(quantizer), ds, cfg(gan_start_step=gan), tmp_path / "a", log=lambda s: None)
    assert full["step"] == 6
    train(frame_model(quantizer), ds, cfg(gan_start_step=gan), tmp_path / "b", stop_at=3,
          log=lambda s: None)
    assert len(losses(tmp_path / "b")) == 3
    # a fresh model object (different init would not matter: weights come from the checkpoint)
    torch.manual_seed(123)
    train(frame_model(quantizer), ds, cfg(gan_start_step=gan), tmp_path / "b", resume=True,
          log=lambda s: None)
    a, b = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert len(a) == len(b) == 6
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    wa = load_tokenizer(tmp_path / "a").state_dict()
    wb = load_tokenizer(tmp_path / "b").state_dict()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=1e-6)


def test_training_reduces_loss_and_writes_run_files(tmp_path):
    out = tmp_path / "run"
    res = train(frame_model(), frames(4), cfg(steps=30, image_every=10, save_every=10, lr=5e-3),
                out, log=lambda s: None)  # one fixed batch: the loss must fall
    ls = losses(out)
    assert np.mean(ls[-5:]) < 0.6 * np.mean(ls[:3])
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert (out / "checkpoint" / "train_state.pt").is_file()
    assert not list(out.glob(".checkpoint-*"))  # no temp dirs left behind
    pngs = sorted((out / "samples").glob("step_*.png"))
    assert [p.name for p in pngs] == ["step_000010.png", "step_000020.png", "step_000030.png"]
    import imageio.v3 as iio

    img = iio.imread(pngs[0])
    assert img.shape == (4 * 32, 2 * 32, 3)  # 4 rows (batch) of input | reconstruction
    rec = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert {"l1", "psnr", "usage", "perplexity", "lr"} <= set(rec)
    assert res["frames_per_s"] > 0


def test_perceptual_callable_is_used(tmp_path):
    calls = []

    def perceptual(pred, target):
        calls.append(pred.shape)
        return (pred - target).pow(2).flatten(1).mean(1)

    train(frame_model(), frames(), cfg(steps=2), tmp_path, perceptual=perceptual, log=lambda s: None)
    assert calls == [(4, 3, 32, 32)] * 2
    assert "perceptual" in json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])


def test_compressive_trains_on_clips(tmp_path):
    torch.manual_seed(0)
    model = CompressiveTokenizer(CompressiveTokenizerConfig(
        image_size=32, context_channels=(8, 16), future_channels=(8, 16, 16), norm_num_groups=4,
        fsq_levels=(5, 3), xattn_heads=2))
    fr = frames(12)
    clips = [torch.stack([fr[i], fr[i + 1], fr[i + 2]]) for i in range(10)]
    res = train(model, [{"frames": c} for c in clips], cfg(steps=3, batch_size=2), tmp_path,
                log=lambda s: None)
    assert res["step"] == 3 and isinstance(load_tokenizer(tmp_path), CompressiveTokenizer)


def small_compressive():
    torch.manual_seed(0)
    return CompressiveTokenizer(CompressiveTokenizerConfig(
        image_size=32, context_channels=(8, 16), future_channels=(8, 16, 16), norm_num_groups=4,
        fsq_levels=(5, 3), xattn_heads=2))


def moving_clips():
    """(B=2, T=3) clips: future t moves a patch by 0.5 (motion) and dims another by 0.05
    (below the threshold); returns the clips and the expected (B*T,1,H,W) moving masks in
    reconstruct()'s target order [contexts, then futures item-major]."""
    g = torch.Generator().manual_seed(0)
    clips = torch.rand(2, 1, 3, 32, 32, generator=g).clamp(0.2, 0.8).repeat(1, 3, 1, 1, 1)
    masks = torch.zeros(2, 3, 1, 32, 32, dtype=torch.bool)
    for b in range(2):
        for t in (1, 2):
            rows = slice(4 * t + b, 4 * t + b + 3)
            clips[b, t, :, rows, 5:9] += 0.5 * (-1) ** b   # moved
            clips[b, t, 1, 20:24, 20:24] -= 0.05            # noise-level change: not motion
            masks[b, t, 0, rows, 5:9] = True
    order = torch.cat([masks[:, 0], masks[:, 1:].reshape(4, 1, 32, 32)])
    return clips.clamp(0, 1), order


def test_motion_weights_mark_what_moved_since_the_context_in_target_order():
    model = small_compressive()
    clips, expected = moving_clips()
    with torch.no_grad():
        _, target, _ = model.reconstruct(clips)
    assert torch.equal(model.target_contexts(clips)[:2], target[:2])  # contexts are their own
    w = motion_weights(model, clips, target, cfg(motion_weight=9.0))
    assert w.shape == (6, 1, 32, 32)
    assert torch.equal(w, 1 + 9.0 * expected.float())
    assert motion_weights(model, clips, target, cfg()) is None  # off by default


def test_motion_weighted_training_logs_the_moving_share_and_needs_a_context(tmp_path):
    clips, expected = moving_clips()
    items = [{"frames": c} for c in clips]
    res = train(small_compressive(), items, cfg(steps=1, batch_size=2, motion_weight=4.0), tmp_path,
                log=lambda s: None)
    assert res["last"]["moving_frac"] == pytest.approx(expected.float().mean().item())
    plain = train(small_compressive(), items, cfg(steps=1, batch_size=2), tmp_path / "plain",
                  log=lambda s: None)
    assert "moving_frac" not in plain["last"] and res["last"]["l1"] > plain["last"]["l1"]
    with pytest.raises(ValueError, match="compressive"):
        train(frame_model(), frames(), cfg(motion_weight=1.0), tmp_path / "f", log=lambda s: None)
    with pytest.raises(ValueError, match="motion"):
        TrainConfig(motion_weight=-1)
    with pytest.raises(ValueError, match="motion_threshold"):
        TrainConfig(motion_threshold=0)


def test_batch_order_is_a_permutation_per_epoch_and_split_across_ranks():
    o = BatchOrder(10, 4, seed=0)
    assert o.per_epoch == 2
    seen = o.indices(0) + o.indices(1)
    assert len(set(seen)) == 8
    r0, r1 = BatchOrder(10, 4, 0, rank=0, world=2), BatchOrder(10, 4, 0, rank=1, world=2)
    assert r0.indices(5) + r1.indices(5) == o.indices(5)


def test_schedule_and_config_validation():
    c = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, c) == pytest.approx(0.1) and lr_factor(9, c) == pytest.approx(1.0)
    assert lr_factor(100, c) == pytest.approx(0.1)
    assert 0.1 < lr_factor(55, c) < 1.0
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="gan_start_step"):
        TrainConfig(gan_start_step=-5)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="resume"):
        train(frame_model(), frames(), cfg(), tmp_path, resume=True, log=lambda s: None)


class _Sourced(list):
    """A list dataset that tells where each item comes from, as FrameDataset does."""

    def item_source(self, i):
        return f"file{i}.npz frame 0"


def test_mixed_frame_sizes_name_the_items_not_a_bare_stack_error(tmp_path):
    from tokenizers_video.train import check_first_item, stack_batch

    ds = _Sourced(frames(4, size=32))
    ds[2] = torch.zeros(3, 16, 16)
    with pytest.raises(ValueError, match=r"item 0 \(file0.npz frame 0\) is \(3, 32, 32\), but item 2 "
                                         r"\(file2.npz frame 0\) is \(3, 16, 16\)"):
        stack_batch(ds, [0, 1, 2, 3])
    assert stack_batch(ds, [0, 3]).shape == (2, 3, 32, 32)
    check_first_item(ds, 32)
    with pytest.raises(ValueError, match=r"item 0 \(file0.npz frame 0\) has frames of shape "
                                         r"\(3, 32, 32\); this tokenizer expects \(..., 3, 64, 64\)"):
        check_first_item(ds, 64)
    with pytest.raises(ValueError, match=r"item 0 has frames of shape \(3, 16, 16\).*\(..., 3, 32, 32\)"):
        train(frame_model(), [torch.zeros(3, 16, 16)] * 8, cfg(), tmp_path / "x", log=lambda s: None)
    assert not (tmp_path / "x" / "checkpoint").exists()


def test_tokenizer_train_command_names_the_odd_episode_file(tmp_path):
    from typer.testing import CliRunner

    from worldmodels.cli import app
    from worldmodels.episodes import EpisodeError

    d = tmp_path / "d"
    d.mkdir()
    for i in range(5):  # four (10,64,64,3) episodes and one (10,32,32,3)
        s = 32 if i == 3 else 64
        np.savez(d / f"ep_{i:06d}.npz", image=np.zeros((10, s, s, 3), np.uint8),
                 action=np.zeros((10, 2), np.float32))
    res = CliRunner().invoke(app, ["tokenizer", "train", "--kind", "frame", "--preset", "tiny",
                                   "--data", str(d), "--out", str(tmp_path / "tok"), "--steps", "1"])
    # a user error: one line naming the file (exit 2), not a traceback (issue 19); the odd
    # file is refused even though frames of one size would be resized to the tokenizer's
    assert res.exit_code == 2 and not isinstance(res.exception, EpisodeError), res.output
    assert (f"error: {d / 'ep_000003.npz'}: frames (H,W,C) = (32, 32, 3), expected (64, 64, 3)"
            in res.output)
