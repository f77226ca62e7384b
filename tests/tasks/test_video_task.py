"""VideoTask: exact sequence layout + loss masks, action bins round-trip, data pipeline, decode."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from wm_fakes import FakeCompressiveTokenizer, FakeFrameTokenizer, make_episodes

from worldmodels.tasks.base import IGNORE_INDEX
from worldmodels.tasks.video import VideoSpec, VideoTask
from worldmodels.tasks.video_data import ActionCodec

V = 27  # fake tokenizer codes: action ids 27..282, BOS 283, EOS 284, PAD 285


def codec(A=2):
    return ActionCodec(np.full(A, -1.0), np.full(A, 1.0))


def test_vocab_offsets():
    t = VideoTask(FakeFrameTokenizer(), VideoSpec("single", 2, 1), codec())
    assert (t.action_offset, t.bos_id, t.eos_id, t.pad_id, t.vocab_size) == (27, 283, 284, 285, 286)


def test_single_step_layout_exact_positions():
    t = VideoTask(FakeFrameTokenizer(), VideoSpec("single", 2, 1), codec())
    N = 16
    frames = torch.stack([torch.full((N,), v) for v in (1, 2, 3)])[None]  # (1,3,16) frame t = t+1
    acts = torch.tensor([[[5, 6], [7, 8], [9, 10]]])
    ids, labels = t.build_sequence(frames, acts)
    expect = ([1] * N + [27 + 5, 27 + 6] + [2] * N + [27 + 7, 27 + 8] + [283] + [3] * N + [284])
    assert ids[0].tolist() == expect and ids.shape[1] == t.seq_len() == 2 * 18 + 18
    on = (labels[0] != IGNORE_INDEX).nonzero()[:, 0].tolist()
    assert on == list(range(36, 54))  # BOS, f2 (16 tokens), EOS
    assert labels[0, 36:].tolist() == [283] + [3] * N + [284]


def test_multi_step_layout_per_frame():
    t = VideoTask(FakeFrameTokenizer(), VideoSpec("multi", 1, 3), codec())
    N = 16
    frames = torch.stack([torch.full((N,), v) for v in (1, 2, 3, 4)])[None]
    acts = torch.tensor([[[0, 1], [2, 3], [4, 5], [6, 7]]])
    ids, labels = t.build_sequence(frames, acts)
    expect = [1] * N + [27, 28] + [2] * N + [29, 30] + [3] * N + [31, 32] + [4] * N
    assert ids[0].tolist() == expect and ids.shape[1] == t.seq_len()
    on = (labels[0] != IGNORE_INDEX).nonzero()[:, 0].tolist()
    assert on == list(range(18, 34)) + list(range(36, 52)) + list(range(54, 70))
    assert not ((labels[0] >= 27) & (labels[0] < 283)).any()  # actions never in the loss


def test_multi_step_layout_compressive_ctx_and_d1_given():
    t = VideoTask(FakeCompressiveTokenizer(), VideoSpec("multi", 1, 2), codec())
    ctx = torch.full((1, 16), 9)
    frames = torch.stack([torch.full((4,), v) for v in (1, 2, 3)])[None]
    acts = torch.tensor([[[0, 0], [1, 1], [2, 2]]])
    ids, labels = t.build_sequence(frames, acts, ctx)
    assert ids[0].tolist() == [9] * 16 + [1] * 4 + [27, 27] + [2] * 4 + [28, 28] + [3] * 4
    on = (labels[0] != IGNORE_INDEX).nonzero()[:, 0].tolist()
    assert on == list(range(22, 26)) + list(range(28, 32))


def test_rollout_request_prompt_is_sequence_prefix_and_forces_actions():
    t = VideoTask(FakeFrameTokenizer(), VideoSpec("multi", 2, 3), codec())
    g = torch.Generator().manual_seed(0)
    batch = {"frame_ids": torch.randint(0, V, (3, 5, 16), generator=g),
             "action_ids": torch.randint(0, 256, (3, 5, 2), generator=g)}
    ids, _ = t.build_sequence(batch["frame_ids"], batch["action_ids"])
    req = t.rollout_request(batch)
    prompt, segs = req.prompt_ids, req.segments
    assert torch.equal(prompt, ids[:, : prompt.shape[1]])
    assert [s.kind for s in segs] == ["generate", "force", "generate", "force", "generate"]
    # forced tokens are exactly the ground-truth action tokens at those places in the sequence
    completion = ids[:, prompt.shape[1]:]
    assert torch.equal(completion[:, 16:18], segs[1].tokens)
    assert torch.equal(completion[:, 34:36], segs[3].tokens)
    assert torch.equal(t.generated_frame_ids(completion, 3), batch["frame_ids"][:, 2:])


def test_frame_skip_layout_carries_every_action_in_one_slot():
    t = VideoTask(FakeFrameTokenizer(), VideoSpec("multi", 1, 2, frame_skip=3), codec())
    assert (t.action_dim, t.action_tokens) == (2, 6)
    N = 16
    frames = torch.stack([torch.full((N,), v) for v in (1, 2, 3)])[None]
    acts = torch.arange(18).reshape(1, 3, 6)  # slot t: the 3 actions (x 2 dims) after frame t
    ids, labels = t.build_sequence(frames, acts)
    expect = [1] * N + [27 + a for a in range(6)] + [2] * N + [27 + a for a in range(6, 12)] + [3] * N
    assert ids[0].tolist() == expect and ids.shape[1] == t.seq_len() == 3 * N + 2 * 6
    on = (labels[0] != IGNORE_INDEX).nonzero()[:, 0].tolist()
    assert on == list(range(22, 38)) + list(range(44, 60))
    prompt, segs = t.prompt_and_segments(frames[:, :1], acts, 2)
    assert [(s.kind, s.length) for s in segs] == [("generate", N), ("force", 6), ("generate", N)]
    assert torch.equal(segs[1].tokens, acts[:, 1] + 27)
    assert torch.equal(t.generated_frame_ids(ids[:, prompt.shape[1]:], 2), frames[:, 1:])


def task_on_episodes(tmp_path, tok, spec: VideoSpec, T: int) -> VideoTask:
    """A VideoTask over 6 synthetic episodes of T steps (4 train, 2 test), cache in tmp_path."""
    root = make_episodes(tmp_path / "data", n=6, T=T)
    return VideoTask(tok, spec, codec(), data_root=str(root), cache_dir=str(tmp_path / "cache"))


def test_frame_skip_dataset_slices_tokens_and_actions(tmp_path):
    tok = FakeFrameTokenizer()
    t = task_on_episodes(tmp_path, tok, VideoSpec("multi", 1, 2, frame_skip=4), T=10)
    ds = t.dataset("train", progress=False)
    assert len(ds) == 4 * (10 - 9 + 1)  # a window spans 2*4+1 = 9 of the 10 steps
    item = ds[1]
    e, s = ds.clips.index[1]
    ep = ds.clips.episodes[e]
    steps = [s, s + 4, s + 8]
    assert torch.equal(item["frame_ids"], tok.encode(item["frames"][None])[0].reshape(3, 16))
    assert torch.allclose(item["frames"][:, 0], torch.from_numpy(ep.image[steps]).permute(0, 3, 1, 2)[:, 0] / 255.0)
    raw = torch.from_numpy(ep.action[s : s + 8])  # the 8 executed actions between kept frames
    assert torch.equal(item["action_ids"][:2].reshape(8, 2), t.codec.encode(raw))
    batch = t.collate([ds[i] for i in range(3)])
    assert t.lm_batch(batch)["input_ids"].shape == (3, t.seq_len())


def test_compressive_dataset_tokenises_each_clip_with_its_own_context(tmp_path):
    tok = FakeCompressiveTokenizer()
    t = task_on_episodes(tmp_path, tok, VideoSpec("multi", 1, 2, frame_skip=2), T=40)
    ds = t.dataset("train", progress=False)
    assert len(ds) == 4 * (40 - 5 + 1) > 16  # more clips than one tokenising batch
    for i in (0, 17, len(ds) - 1):  # batched tokenising == encoding that clip alone
        item = ds[i]
        ctx, fut = tok.encode(item["frames"][:1], item["frames"][None])
        assert torch.equal(item["ctx_ids"], ctx[0]) and torch.equal(item["frame_ids"], fut[0])


def test_action_codec_encodes_groups_of_actions_per_slot():
    c = ActionCodec([-1.0, 0.0], [1.0, 10.0])
    slots = torch.tensor([[-1.0, 0.0, 1.0, 10.0, 0.0, 5.0]])  # 3 actions of 2 dims in one slot
    assert c.encode_groups(slots).tolist() == c.encode(slots.reshape(3, 2)).reshape(1, 6).tolist()
    assert c.encode_groups(slots)[0, :4].tolist() == [0, 0, 255, 255]
    with pytest.raises(ValueError, match="not a multiple"):
        c.encode_groups(torch.zeros(1, 5))


def test_action_codec_round_trip_within_one_bin():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(500, 3)).astype(np.float32) * np.array([1, 5, 0.1], np.float32)
    c = ActionCodec.fit(acts)
    bins = c.encode(torch.from_numpy(acts))
    assert bins.min() >= 0 and bins.max() <= 255 and bins.max() == 255 and bins.min() == 0
    back = c.decode(bins).numpy()
    width = (acts.max(0) - acts.min(0)) / 256
    assert (np.abs(back - acts) <= width * 0.5 + 1e-6).all()
    # the formula of ARCHITECTURE.md, computed independently
    ref = np.clip(np.floor(np.clip((acts - acts.min(0)) / (acts.max(0) - acts.min(0) + 1e-8), 0, 1)
                           * 256), 0, 255)
    assert (bins.numpy() == ref).all()
    assert c.encode(torch.tensor([[1e9, -1e9, 0.0]]))[0, :2].tolist() == [255, 0]  # out of range


def test_dataset_tokenises_once_and_caches(tmp_path):
    root = make_episodes(tmp_path / "data", n=6, T=8)
    tok = FakeFrameTokenizer()
    t = VideoTask(tok, VideoSpec("multi", 1, 3), codec(), data_root=str(root),
                  cache_dir=str(tmp_path / "cache"))
    ds = t.dataset("train", progress=False)
    assert len(ds) == 4 * (8 - 4 + 1)  # 4 train episodes (test_every=3 -> files 0, 3 test)
    item = ds[3]
    assert item["frame_ids"].shape == (4, 16) and item["action_ids"].shape == (4, 2)
    assert torch.equal(item["frame_ids"], tok.encode(item["frames"][None])[0].reshape(4, 16))
    assert len(list((tmp_path / "cache").glob("tokens-*.pt"))) == 1
    ds2 = t.dataset("train", progress=False)  # from the cache
    assert torch.equal(ds2[3]["frame_ids"], item["frame_ids"])
    batch = t.collate([ds[i] for i in range(5)])
    lm = t.lm_batch(batch)
    assert lm["input_ids"].shape == (5, t.seq_len()) and lm["input_ids"].max() < t.vocab_size
    target = t.reward_items(batch)["target_frames"]
    assert target.shape == (5, 3, 3, 16, 16)
    # decoding the ground-truth completion reproduces the tokenizer's reconstruction
    prompt = t.rollout_request(batch).prompt_ids
    recon = t.decode(batch, SimpleNamespace(completion_ids=lm["input_ids"][:, prompt.shape[1]:]))["frames"]
    ref = tok.decode(batch["frame_ids"][:, 1:].reshape(5, 3, 4, 4))
    torch.testing.assert_close(recon, ref)


def test_bad_specs_raise():
    with pytest.raises(ValueError, match="future_frames=1"):
        VideoSpec("single", 2, 3)
    with pytest.raises(ValueError, match="per-frame tokenizer"):
        VideoTask(FakeCompressiveTokenizer(), VideoSpec("single", 1, 1), codec())
    with pytest.raises(ValueError, match="expects 2"):
        codec().encode(torch.zeros(3, 5))


def test_cache_key_follows_tokenizer_content_not_path(tmp_path):
    from worldmodels.tasks.video_data import _cache_key

    ep = tmp_path / "ep.npz"
    ep.write_bytes(b"episode")
    a, b = tmp_path / "tok_a", tmp_path / "tok_b"
    for d in (a, b):
        d.mkdir()
        (d / "config.json").write_text('{"kind": "frame"}')
        (d / "model.safetensors").write_bytes(b"weights-1")
    (a / "log.jsonl").write_text("training log only the original run has")
    assert _cache_key(str(a), [ep], "x") == _cache_key(str(b), [ep], "x")  # a copy reuses
    (b / "model.safetensors").write_bytes(b"weights-2")
    assert _cache_key(str(a), [ep], "x") != _cache_key(str(b), [ep], "x")  # new weights do not
    assert _cache_key(str(a), [ep], "x") != _cache_key(str(a), [ep], "y")
