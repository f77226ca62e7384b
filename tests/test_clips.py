"""ClipDataset / FrameDataset windows and tensor conversions, on hand-built and real episodes."""

import numpy as np
import pytest
import torch

from worldmodels.clips import ClipDataset, FrameDataset, frames_to_tensor, tensor_to_frames
from worldmodels.episodes import LAYOUTS, EpisodeError, episode_files, save_episode


def write_episodes(root, lengths, H=8, A=2):
    """Episode e has pixel value (e*50 + t) at every pixel of frame t and action [e, t]."""
    files = []
    for e, T in enumerate(lengths):
        image = np.stack([np.full((H, H, 3), e * 50 + t, np.uint8) for t in range(T)])
        action = np.stack([[e, t] + [0] * (A - 2) for t in range(T)]).astype(np.float32)
        p = root / f"ep_{e:06d}.npz"
        save_episode(p, image, action)
        files.append(p)
    return files


def test_conversions_round_trip():
    img = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    t = frames_to_tensor(img)
    assert t.shape == (3, 3, 5, 7) and t.dtype == torch.float32
    assert abs(float(t[1, 2, 4, 6]) - img[1, 4, 6, 2] / 255.0) < 1e-6
    assert np.array_equal(tensor_to_frames(t), img)
    assert tensor_to_frames(torch.full((1, 3, 2, 2), 2.0)).max() == 255  # clamped
    assert tensor_to_frames(torch.full((1, 3, 2, 2), -1.0)).max() == 0


def test_clip_windows_cover_every_start(tmp_path):
    files = write_episodes(tmp_path, [10, 4, 6])
    ds = ClipDataset(files, clip_len=4)
    assert len(ds) == (10 - 4 + 1) + (4 - 4 + 1) + (6 - 4 + 1)
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        assert item["frames"].shape == (4, 3, 8, 8) and item["actions"].shape == (4, 2)
        e, t0 = item["actions"][0].tolist()
        # frames and actions come from the same episode and the same consecutive steps
        assert item["actions"][:, 1].tolist() == [t0 + k for k in range(4)]
        expect = torch.tensor([(e * 50 + t0 + k) / 255.0 for k in range(4)])
        assert torch.allclose(item["frames"][:, 0, 0, 0], expect)
        seen.add((e, t0))
    assert len(seen) == len(ds)


def test_stride_and_too_short(tmp_path):
    files = write_episodes(tmp_path, [10, 3])
    ds = ClipDataset(files, clip_len=4, stride=3)
    assert [ds[i]["actions"][0].tolist() for i in range(len(ds))] == [[0, 0], [0, 3], [0, 6]]
    with pytest.raises(EpisodeError, match="no clip of 11 frames.*longest has 10"):
        ClipDataset(files, clip_len=11)
    with pytest.raises(ValueError, match="clip_len"):
        ClipDataset(files, clip_len=0)
    with pytest.raises(ValueError, match="stride"):
        ClipDataset(files, clip_len=2, stride=0)


def test_frame_skip_keeps_every_sth_frame_and_groups_actions(tmp_path):
    files = write_episodes(tmp_path, [10, 6])
    ds = ClipDataset(files, clip_len=3, frame_skip=3)  # a window spans 2*3+1 = 7 recorded steps
    assert len(ds) == (10 - 7 + 1) + 0  # the 6-step episode is too short
    item = ds[2]  # episode 0, start 2: frames 2, 5, 8
    assert torch.allclose(item["frames"][:, 0, 0, 0], torch.tensor([2.0, 5.0, 8.0]) / 255.0)
    acts = item["actions"].reshape(3, 3, 2)  # (kept frame, action in its group, A)
    assert item["actions"].shape == (3, 6)
    assert acts[..., 1].tolist() == [[2, 3, 4], [5, 6, 7], [8, 9, 9]]  # last group edge-padded
    assert (acts[..., 0] == 0).all()
    with pytest.raises(EpisodeError, match="frame_skip 3: 19 recorded steps"):
        ClipDataset(files, clip_len=7, frame_skip=3)
    with pytest.raises(ValueError, match="frame_skip"):
        ClipDataset(files, clip_len=2, frame_skip=0)


def test_all_actions_and_frame_dataset(tmp_path):
    files = write_episodes(tmp_path, [5, 7])
    ds = ClipDataset(files, clip_len=2)
    acts = ds.all_actions()
    assert acts.shape == (12, 2) and acts[:, 0].tolist() == [0] * 5 + [1] * 7
    frames = FrameDataset(files)
    assert len(frames) == 12
    assert frames[6].shape == (3, 8, 8)
    assert torch.allclose(frames[6][0, 0, 0], torch.tensor((50 + 1) / 255.0))


def test_actions_required_unless_told(tmp_path):
    np.savez(tmp_path / "img_only.npz", image=np.zeros((5, 4, 4, 3), np.uint8))
    with pytest.raises(EpisodeError, match="img_only.npz: no actions"):
        ClipDataset([tmp_path / "img_only.npz"], clip_len=2)
    ds = ClipDataset([tmp_path / "img_only.npz"], clip_len=2, require_actions=False)
    assert "actions" not in ds[0] and len(ds) == 4
    with pytest.raises(EpisodeError, match="no episode in this dataset has actions"):
        ds.all_actions()


def test_clips_from_metaworld(shared_data):
    files = episode_files(shared_data / "robot" / "metaworld")[:2]
    ds = ClipDataset(files, clip_len=8, keymap=LAYOUTS["metaworld"], stride=10)
    item = ds[0]
    assert item["frames"].shape == (8, 3, 64, 64) and item["actions"].shape == (8, 4)
    assert 0.0 <= item["frames"].min() and item["frames"].max() <= 1.0
    assert len(ds) == 2 * len(range(0, 101 - 8 + 1, 10))


def test_clips_from_bair(shared_data):
    ds = ClipDataset([shared_data / "robot" / "bair_sample.npz"], clip_len=16, keymap=LAYOUTS["bair"])
    assert len(ds) == 30 - 16 + 1 and ds[3]["frames"].shape == (16, 3, 64, 64)


def test_non_overlapping_windows_share_no_recorded_frame(tmp_path):
    files = write_episodes(tmp_path, [20])
    ds = ClipDataset.non_overlapping(files, clip_len=3, frame_skip=3)  # each window spans 7 steps
    starts = [s for _, s in ds.index]
    assert starts == [0, 7]  # 14..20 would need step 20: out of the 20-step episode
    first = [int(round(float(ds[i]["frames"][0, 0, 0, 0]) * 255)) for i in range(len(ds))]
    assert first == [0, 7]


# ----------------------------------------------------------------------------- inconsistent folders
def write_folder(root, sizes=(64, 64, 64, 32, 64), dims=None, channels=None, T=10):
    """Episode i: (T, sizes[i], sizes[i], channels[i]) uint8 frames, (T, dims[i]) actions."""
    root.mkdir(parents=True, exist_ok=True)
    dims = dims or [2] * len(sizes)
    channels = channels or [3] * len(sizes)
    for i, (s, a, c) in enumerate(zip(sizes, dims, channels, strict=True)):
        np.savez(root / f"ep_{i:06d}.npz", image=np.full((T, s, s, c), i, np.uint8),
                 action=np.zeros((T, a), np.float32))
    return episode_files(root)


@pytest.mark.parametrize("make", [lambda f: ClipDataset(f, clip_len=4), lambda f: FrameDataset(f)])
def test_a_file_with_another_frame_size_is_named_up_front(tmp_path, make):
    files = write_folder(tmp_path / "d")  # four (10,64,64,3) episodes, ep_000003 (10,32,32,3)
    with pytest.raises(EpisodeError) as e:
        make(files)
    msg = str(e.value)
    assert msg.startswith(f"{files[3]}: frames (H,W,C) = (32, 32, 3), expected (64, 64, 3)")
    assert "(the frame size of 4 of 5 files)" in msg and "ep_000000" not in msg


def test_action_dim_and_channel_mismatches_are_named(tmp_path):
    files = write_folder(tmp_path / "a", sizes=(8,) * 5, dims=(2, 2, 2, 2, 7))
    with pytest.raises(EpisodeError, match=r"ep_000004.npz: actions \(T,A\) = \(10, 7\), expected "
                                           r"\(10, 2\)"):
        ClipDataset(files, clip_len=4)
    assert len(FrameDataset(files)) == 50  # a tokenizer does not use the actions
    files = write_folder(tmp_path / "c", sizes=(8,) * 5, channels=(3, 3, 1, 3, 3))
    for make in (lambda: ClipDataset(files, clip_len=4), lambda: FrameDataset(files)):
        with pytest.raises(EpisodeError, match=r"ep_000002.npz: 'image' of shape \(10, 8, 8, 1\) "
                                               r"has 1 channels; expected 3"):
            make()


def test_configured_sizes_and_item_sources(tmp_path):
    files = write_folder(tmp_path / "d", sizes=(8, 8))
    with pytest.raises(EpisodeError, match=r"ep_000000.npz: frames .* expected \(16, 16, 3\) "
                                           r"\(as configured\)"):
        FrameDataset(files, frame_size=(16, 16))
    with pytest.raises(EpisodeError, match=r"ep_000001.npz: actions .* expected \(10, 3\)"):
        ClipDataset(files, clip_len=2, action_dim=3)
    clips = ClipDataset(files, clip_len=3, frame_skip=2, frame_size=(8, 8), action_dim=2)
    e, s = clips.index[7]
    assert clips.item_source(7) == f"{files[e]} steps {s}..{s + 4}"
    assert FrameDataset(files).item_source(13) == f"{files[1]} frame 3"
