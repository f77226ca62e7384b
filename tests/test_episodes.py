"""Episode files: round-trip, foreign layouts (RLVR-World, BAIR, Meta-World), bad input, splits."""

import json
import zipfile

import numpy as np
import pytest

from worldmodels.episodes import (
    LAYOUTS,
    EpisodeError,
    KeyMap,
    dataset_split,
    episode_files,
    load_episode,
    read_meta,
    save_episode,
    split_files,
)


def make_episode(T=6, H=8, A=3, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (T, H, H, 3), dtype=np.uint8)
    action = rng.normal(size=(T, A)).astype(np.float32)
    return image, action


def test_save_load_round_trip(tmp_path):
    image, action = make_episode()
    state = np.arange(6 * 8, dtype=np.float32).reshape(6, 8)
    success = np.array([0, 0, 0, 1, 1, 1], bool)
    p = tmp_path / "ep_000000.npz"
    save_episode(p, image, action, state=state, success=success, task=np.array("push"))
    ep = load_episode(p)
    assert np.array_equal(ep.image, image) and ep.image.dtype == np.uint8
    assert np.array_equal(ep.action, action) and ep.action.dtype == np.float32
    assert np.array_equal(ep.state, state)
    assert np.array_equal(ep.success, success)
    assert ep.task == "push" and len(ep) == 6 and ep.path == p
    assert not list(tmp_path.glob(".tmp-*")), "atomic write must not leave temp files"


def test_save_rejects_bad_arrays(tmp_path):
    image, action = make_episode()
    with pytest.raises(EpisodeError, match="uint8"):
        save_episode(tmp_path / "a.npz", image.astype(np.float32), action)
    with pytest.raises(EpisodeError, match="T=6"):
        save_episode(tmp_path / "a.npz", image, action[:5])
    assert not list(tmp_path.iterdir())


def test_rlvr_style_npz_uint8_and_float(tmp_path):
    """RLVR-World's converter writes image (T,H,W,3) uint8 (or float in [0,1]) + action (T,13)."""
    rng = np.random.default_rng(1)
    img_u8 = rng.integers(0, 256, (5, 16, 20, 3), dtype=np.uint8)
    action = rng.normal(size=(5, 13))  # float64 on purpose
    np.savez(tmp_path / "u8.npz", image=img_u8, action=action)
    np.savez(tmp_path / "f32.npz", image=img_u8.astype(np.float32) / 255.0, action=action)
    a = load_episode(tmp_path / "u8.npz", LAYOUTS["rlvr"])
    b = load_episode(tmp_path / "f32.npz", LAYOUTS["rlvr"])
    assert a.image.shape == (5, 16, 20, 3)
    assert np.array_equal(a.image, img_u8) and np.array_equal(b.image, img_u8)
    assert a.action.dtype == np.float32 and np.allclose(a.action, action, atol=1e-6)
    assert a.state is None and a.success is None and a.task is None
    # image-only samples load with action None (unless actions are required)
    np.savez(tmp_path / "img_only.npz", image=img_u8)
    assert load_episode(tmp_path / "img_only.npz").action is None
    with pytest.raises(EpisodeError, match="img_only.npz.*missing key 'action'"):
        load_episode(tmp_path / "img_only.npz", KeyMap(require_actions=True))


def test_one_dim_actions_become_columns(tmp_path):
    image, _ = make_episode(T=4)
    np.savez(tmp_path / "a.npz", image=image, action=np.arange(4.0))
    assert load_episode(tmp_path / "a.npz").action.shape == (4, 1)


def test_bair_sample(shared_data):
    path = shared_data / "robot" / "bair_sample.npz"
    raw = np.load(path)
    ep = load_episode(path, LAYOUTS["bair"])
    assert raw["image"].dtype == np.int64
    assert ep.image.shape == (30, 64, 64, 3) and ep.image.dtype == np.uint8
    assert np.array_equal(ep.image, raw["image"])
    assert ep.action.shape == (30, 4) and np.allclose(ep.action, raw["action"], atol=1e-6)


def test_metaworld_samples(shared_data):
    files = episode_files(shared_data / "robot" / "metaworld")
    assert len(files) == 10
    for f in files[:3]:
        obs = np.load(f)["observation"]  # (101, 9, 64, 64): 3 stacked RGB frames
        ep = load_episode(f, LAYOUTS["metaworld"])
        assert ep.image.shape == (101, 64, 64, 3) and ep.action.shape == (101, 4)
        assert np.array_equal(ep.image, np.moveaxis(obs[:, 6:9], 1, -1))
        # independent check that the last 3 channels are the newest frame: the middle
        # slot at t+1 is the newest frame at t
        assert np.array_equal(ep.image[:-1], np.moveaxis(obs[1:, 3:6], 1, -1))
    with pytest.raises(EpisodeError, match="missing key 'image'.*observation"):
        load_episode(files[0])
    with pytest.raises(EpisodeError, match="channels.*--frame-stack"):
        load_episode(files[0], KeyMap(image_key="observation", channels_first=True))


# ----------------------------------------------------------------------------- bad input
def _valid(tmp_path, name="ok.npz"):
    image, action = make_episode(T=20, H=16)
    p = tmp_path / name
    save_episode(p, image, action)
    return p


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_npz(tmp_path, keep):
    p = _valid(tmp_path)
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(EpisodeError, match=f"{p.name}.*(corrupt|truncated)"):
        load_episode(p)


def test_corrupted_member_bytes(tmp_path):
    """A flipped byte inside the compressed data (zlib/CRC errors) is reported, too."""
    p = _valid(tmp_path)
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("image.npy")
    data = bytearray(p.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 20, start + 40):
        data[i] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(EpisodeError, match=f"{p.name}"):
        load_episode(p)


def test_not_a_zip_and_missing_file(tmp_path):
    p = tmp_path / "junk.npz"
    p.write_bytes(b"this is not an npz file at all")
    with pytest.raises(EpisodeError, match="junk.npz.*corrupt"):
        load_episode(p)
    with pytest.raises(EpisodeError, match="nope.npz: no such episode file"):
        load_episode(tmp_path / "nope.npz")


def test_missing_image_key(tmp_path):
    np.savez(tmp_path / "m.npz", frames=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(EpisodeError, match=r"m.npz: missing key 'image' \(has \['frames'\]\)"):
        load_episode(tmp_path / "m.npz")


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((4, 8, 8), np.uint8), "expected 4 dims"),
        (np.zeros((4, 8, 8, 4), np.uint8), "4 channels; expected 3"),
        (np.zeros((4, 8, 8, 3), bool), "dtype bool"),
        (np.full((4, 8, 8, 3), 1.5, np.float32), r"must lie in \[0,1\]"),
        (np.full((4, 8, 8, 3), np.nan, np.float32), r"must lie in \[0,1\]"),
        (np.full((4, 8, 8, 3), 300, np.int64), "0..255"),
        (np.full((4, 8, 8, 3), -1, np.int16), "0..255"),
    ],
)
def test_wrong_image_dtype_or_shape(tmp_path, image, match):
    p = tmp_path / "bad_image.npz"
    np.savez(p, image=image, action=np.zeros((4, 2), np.float32))
    with pytest.raises(EpisodeError, match=f"bad_image.npz.*{match}"):
        load_episode(p)


@pytest.mark.parametrize(
    "action, match",
    [
        (np.zeros((5, 2), np.float32), "4 frames but 5 actions"),
        (np.zeros((4, 2, 2), np.float32), r"expected \(T,A\)"),
        (np.array([["a", "b"]] * 4), r"expected \(T,A\) numbers"),
        (np.array([[0.0, np.inf]] * 4), "NaN or inf"),
    ],
)
def test_bad_actions(tmp_path, action, match):
    p = tmp_path / "bad_action.npz"
    np.savez(p, image=np.zeros((4, 8, 8, 3), np.uint8), action=action)
    with pytest.raises(EpisodeError, match=f"bad_action.npz.*{match}"):
        load_episode(p)


@pytest.mark.parametrize("key, value", [("state", np.zeros((3, 8))), ("success", np.zeros(5, bool))])
def test_state_and_success_length_checked(tmp_path, key, value):
    p = tmp_path / "bad_extra.npz"
    np.savez(p, image=np.zeros((4, 8, 8, 3), np.uint8), action=np.zeros((4, 2)), **{key: value})
    with pytest.raises(EpisodeError, match=f"bad_extra.npz.*'{key}'"):
        load_episode(p)


def test_keymap_validation():
    with pytest.raises(ValueError, match="frame_stack"):
        KeyMap(frame_stack=0)


def test_episode_files_and_meta_errors(tmp_path):
    with pytest.raises(EpisodeError, match="no such data folder"):
        episode_files(tmp_path / "missing")
    with pytest.raises(EpisodeError, match="no .npz episodes"):
        episode_files(tmp_path)
    assert read_meta(tmp_path) == {}
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(EpisodeError, match="meta.json: not valid JSON"):
        read_meta(tmp_path)


# ----------------------------------------------------------------------------- splits
def test_split_is_deterministic_and_partitions(tmp_path):
    names = [tmp_path / f"ep_{i:06d}.npz" for i in range(25)]
    shuffled = list(np.random.default_rng(0).permutation(names))
    test = split_files(shuffled, "test", 10)
    train = split_files(names, "train", 10)
    assert test == [names[0], names[10], names[20]]
    assert sorted(test + train) == names and not set(test) & set(train)
    assert split_files(names, "all", 10) == names
    with pytest.raises(ValueError, match="split"):
        split_files(names, "val", 10)
    with pytest.raises(ValueError, match="test_every"):
        split_files(names, "test", 0)


def test_dataset_split_reads_test_every_from_meta(tmp_path):
    image, action = make_episode(T=2, H=4)
    for i in range(12):
        save_episode(tmp_path / f"ep_{i:06d}.npz", image, action)
    (tmp_path / ".tmp-leftover.npz").write_bytes(b"partial")  # interrupted write: ignored
    assert len(dataset_split(tmp_path, "test")) == 1  # default 100
    (tmp_path / "meta.json").write_text(json.dumps({"test_every": 5}))
    assert [p.name for p in dataset_split(tmp_path, "test")] == [
        "ep_000000.npz", "ep_000005.npz", "ep_000010.npz"]
    assert len(dataset_split(tmp_path, "train")) == 9
    assert len(dataset_split(tmp_path, "test", test_every=4)) == 3


# ----------------------------------------------------------------------------- headers, agreement
def write_folder(root, sizes=(64, 64, 64, 32, 64), dims=None, channels=None, T=10):
    """Episode i: (T, sizes[i], sizes[i], channels[i]) uint8 frames, (T, dims[i]) actions."""
    root.mkdir(parents=True, exist_ok=True)
    dims = dims or [2] * len(sizes)
    channels = channels or [3] * len(sizes)
    files = []
    for i, (s, a, c) in enumerate(zip(sizes, dims, channels, strict=True)):
        p = root / f"ep_{i:06d}.npz"
        np.savez(p, image=np.full((T, s, s, c), i, np.uint8), action=np.zeros((T, a), np.float32))
        files.append(p)
    return files


def test_read_episode_shape_reads_headers_only(tmp_path):
    from worldmodels.episodes import read_episode_shape

    p = tmp_path / "ep.npz"
    np.savez(p, image=np.zeros((7, 12, 16, 3), np.uint8), action=np.zeros((7, 5), np.float32))
    s = read_episode_shape(p)
    assert (s.steps, s.frame, s.action_dim, s.image_shape) == (7, (12, 16, 3), 5, (7, 12, 16, 3))
    # wreck the pixel bytes (np.savez stores them uncompressed): the header still reads, a full
    # load does not -- so the header read decompresses no pixel
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("image.npy")
    data = bytearray(p.read_bytes())
    end = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size
    data[end - 100 : end] = b"\xff" * 100
    p.write_bytes(bytes(data))
    assert read_episode_shape(p).frame == (12, 16, 3)
    with pytest.raises(EpisodeError, match="ep.npz.*corrupt"):
        load_episode(p)
    # channels-first, stacked frames (Meta-World's layout) and (T,) actions
    np.savez(tmp_path / "mw.npz", observation=np.zeros((4, 9, 8, 6), np.uint8), action=np.zeros(4))
    s = read_episode_shape(tmp_path / "mw.npz", LAYOUTS["metaworld"])
    assert (s.steps, s.frame, s.action_dim) == (4, (8, 6, 9), 1)


@pytest.mark.parametrize(
    "image, action, match",
    [
        (np.zeros((4, 8, 8, 4), np.uint8), np.zeros((4, 2)), r"\(4, 8, 8, 4\) has 4 channels; expected 3"),
        (np.zeros((4, 8, 8), np.uint8), np.zeros((4, 2)), "expected 4 dims"),
        (np.zeros((4, 8, 8, 3), bool), np.zeros((4, 2)), "dtype bool"),
        (np.zeros((4, 8, 8, 3), np.uint8), np.zeros((5, 2)), "4 frames but 5 actions"),
        (np.zeros((4, 8, 8, 3), np.uint8), np.zeros((4, 2), bool), r"expected \(T,A\) numbers"),
    ],
)
def test_read_episode_shape_checks_what_headers_tell(tmp_path, image, action, match):
    from worldmodels.episodes import read_episode_shape

    p = tmp_path / "bad.npz"
    np.savez(p, image=image, action=action)
    with pytest.raises(EpisodeError, match=f"bad.npz.*{match}"):
        read_episode_shape(p)
    with pytest.raises(EpisodeError, match=f"bad.npz.*{match}"):  # the same rule as a full load
        load_episode(p)


def test_scan_names_the_file_whose_frame_size_differs(tmp_path):
    from worldmodels.episodes import check_episodes, scan_episodes

    files = write_folder(tmp_path / "d")  # four 64x64 episodes, ep_000003 32x32
    shapes, problems = scan_episodes(files)
    assert len(shapes) == 5 and len(problems) == 1
    assert problems[0] == (f"{files[3]}: frames (H,W,C) = (32, 32, 3), expected (64, 64, 3) "
                           f"(the frame size of 4 of 5 files); image (10, 32, 32, 3)")
    with pytest.raises(EpisodeError, match=r"ep_000003.npz: frames \(H,W,C\) = \(32, 32, 3\), "
                                           r"expected \(64, 64, 3\)"):
        check_episodes(files)
    # a configured size wins over the majority, and says where it comes from
    _, problems = scan_episodes(files, frame_size=(32, 32), expected_from="the tokenizer's image_size")
    assert len(problems) == 4 and all("expected (32, 32, 3) (the tokenizer's image_size)" in p
                                      for p in problems)
    assert {p.split(":")[0] for p in problems} == {str(files[i]) for i in (0, 1, 2, 4)}
    # a tie goes to the earliest file's size
    _, problems = scan_episodes(write_folder(tmp_path / "t", sizes=(16, 8, 8, 16)))
    assert [p.split(":")[0].rsplit("_", 1)[1] for p in problems] == ["000001.npz", "000002.npz"]
    assert "expected (16, 16, 3) (the frame size of 2 of 4 files (a tie: the first file's))" in problems[0]


def test_scan_names_action_dim_and_channel_mismatches(tmp_path):
    from worldmodels.episodes import check_episodes, scan_episodes

    files = write_folder(tmp_path / "a", sizes=(8,) * 4, dims=(2, 2, 4, 2))
    _, problems = scan_episodes(files)
    assert problems == [f"{files[2]}: actions (T,A) = (10, 4), expected (10, 2) "
                        f"(the action dim of 3 of 4 files)"]
    files = write_folder(tmp_path / "c", sizes=(8,) * 4, channels=(3, 4, 3, 3))
    with pytest.raises(EpisodeError, match=r"ep_000001.npz: 'image' of shape \(10, 8, 8, 4\) has 4 "
                                           r"channels; expected 3"):
        check_episodes(files)
    # several problems: one error listing each file
    files = write_folder(tmp_path / "m", sizes=(8, 8, 4, 8), dims=(2, 3, 2, 2))
    with pytest.raises(EpisodeError, match=r"2 problems in 4 episode files:\n  .*ep_000002.npz: "
                                           r"frames.*\n  .*ep_000001.npz: actions"):
        check_episodes(files)


@pytest.mark.parametrize("meta, field", [({"test_every": "10"}, "test_every"),
                                         ({"test_every": 0}, "test_every"),
                                         ({"image_size": True}, "image_size"),
                                         ([1, 2], None)])
def test_read_meta_checks_the_fields_loaders_use(tmp_path, meta, field):
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    match = f"meta.json: field '{field}' is" if field else "meta.json: expected a JSON object, got list"
    with pytest.raises(EpisodeError, match=match):
        read_meta(tmp_path)
