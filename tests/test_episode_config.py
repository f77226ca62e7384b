"""The shared ``episodes:`` section (issue 19): key map from a layout plus overrides, inheriting
what an input recorded, the three split rules, and user errors that name the file and the flag."""

import numpy as np
import pytest

from worldmodels.clips import ClipDataset, FrameDataset
from worldmodels.episode_config import EpisodeConfig, held_out_files, recorded_episodes
from worldmodels.episodes import LAYOUTS, EpisodeError, episode_files, load_episode, save_episode


def folder(root, names, T=6, size=8):
    for i, n in enumerate(names):
        (root / n).parent.mkdir(parents=True, exist_ok=True)
        img = np.full((T, size, size, 3), 10 * i, np.uint8)
        save_episode(root / n, img, np.full((T, 2), i, np.float32))
    return root


def test_keymap_is_the_layout_with_overrides():
    km = EpisodeConfig(layout="metaworld").keymap(64)
    assert (km.image_key, km.channels_first, km.frame_stack, km.size, km.crop) == (
        "observation", True, 3, 64, "center")
    km = EpisodeConfig(layout="metaworld", frame_stack=1, action_key="none", size=32).keymap(64)
    assert km.frame_stack == 1 and km.action_key is None and km.size == 32  # --size wins
    assert EpisodeConfig(resize=False).keymap(64).size is None  # refuse instead of resizing
    assert EpisodeConfig().keymap() == LAYOUTS["rlvr"]  # nothing given, no consumer size


def test_merged_takes_only_what_was_not_given():
    rec = EpisodeConfig(layout="metaworld", test_every=5, size=64).resolved(64)
    m = EpisodeConfig().merged(rec)
    assert m.keymap(64) == EpisodeConfig(layout="metaworld").keymap(64) and m.test_every == 5
    m = EpisodeConfig(held_out=["a"]).merged(rec)  # another split rule replaces the recorded one
    assert m.held_out == ["a"] and m.test_every is None
    m = EpisodeConfig(layout="bair").merged(rec)  # another layout: not the recorded layout's keys
    assert m.keymap().image_key == "image" and not m.keymap().channels_first
    assert EpisodeConfig(image_key="rgb").merged(rec).keymap().image_key == "rgb"


@pytest.mark.parametrize("kw, msg", [
    (dict(layout="rt2"), r"--layout\) 'rt2': unknown; known layouts: rlvr, bair, metaworld"),
    (dict(test_every=0), r"episodes.test_every \(--test-every\) must be an integer >= 1"),
    (dict(crop="left"), r"--crop\) must be 'center' or 'none'"),
    (dict(test_every=5, held_out=["a"]), "give one split rule"),
    (dict(held_out=["a"], test_tail=3), "give one split rule"),
])
def test_bad_values_name_the_field_and_flag(kw, msg):
    with pytest.raises(ValueError, match=msg):
        EpisodeConfig(**kw)


def test_split_rules(tmp_path):
    root = folder(tmp_path / "mw", ["door-lock/0.npz", "door-lock/1.npz", "push/0.npz", "push/1.npz"])
    (root / "meta.json").write_text('{"test_every": 2}')
    files = episode_files(root)
    assert EpisodeConfig().split(root, "test") == ([files[0], files[2]], None)  # meta.json's rule
    assert EpisodeConfig(test_every=4).split(root, "train")[0] == files[1:]
    test, _ = EpisodeConfig(held_out=["door-lock"]).split(root, "test")  # a sub-folder (a task)
    assert test == files[:2]
    assert EpisodeConfig(held_out=["push/1", "door-lock/0.npz"]).split(root, "train")[0] == [
        files[1], files[2]]
    assert held_out_files(root, files, ["0"]) == [files[0], files[2]]  # by stem
    with pytest.raises(EpisodeError, match=r"--held-out entry 'pull' names no episode file"):
        EpisodeConfig(held_out=["pull"]).split(root, "test")
    with pytest.raises(EpisodeError, match=r"1.npz: the train split is empty .*--test-tail N"):
        EpisodeConfig(test_every=99).split(root / "push" / "1.npz", "train")  # one file: all test


def test_test_tail_holds_out_the_last_steps(tmp_path):
    root = folder(tmp_path / "one", ["ep.npz"], T=10)
    ep = EpisodeConfig(test_tail=4)
    (files, train), (_, test) = ep.split(root, "train"), ep.split(root, "test")
    assert len(FrameDataset(files, steps=train)) == 6 and len(FrameDataset(files, steps=test)) == 4
    clips = ClipDataset(files, 3, steps=test)
    np.testing.assert_array_equal(clips.episodes[0].action, load_episode(files[0]).action[6:])
    assert len(clips) == 2  # windows of 3 in the last 4 steps


def test_missing_key_suggests_the_layout(tmp_path):
    obs = np.zeros((4, 9, 8, 8), np.uint8)
    np.savez(tmp_path / "mw.npz", observation=obs, action=np.zeros((4, 4), np.float32))
    with pytest.raises(EpisodeError, match=r"mw.npz: missing key 'image' \(has \['action', "
                                           r"'observation'\]\); pass --layout metaworld"):
        load_episode(tmp_path / "mw.npz")
    np.savez(tmp_path / "cam.npz", rgb=np.zeros((4, 8, 8, 3), np.uint8))
    with pytest.raises(EpisodeError, match="pass --image-key rgb"):
        FrameDataset([tmp_path / "cam.npz"])
    with pytest.raises(EpisodeError, match=r"has 9 channels; expected 3 .*pass --frame-stack 3"):
        load_episode(tmp_path / "mw.npz", EpisodeConfig(image_key="observation",
                                                        channels_first=True).keymap())
    with pytest.raises(EpisodeError, match=r"no actions \(no array 'action'\).*--action-key"):
        ClipDataset([tmp_path / "cam.npz"], 2, EpisodeConfig(image_key="rgb").keymap())


def test_one_cause_in_every_file_is_one_line(tmp_path):
    for i in range(3):
        np.savez(tmp_path / f"{i}.npz", observation=np.zeros((4, 9, 8, 8), np.uint8))
    with pytest.raises(EpisodeError) as e:
        FrameDataset(episode_files(tmp_path))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{tmp_path / '0.npz'}: missing key 'image'")
    assert msg.endswith("pass --layout metaworld (the same in 2 more of 3 episode files)")


def test_recorded_sections(tmp_path):
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "config.yaml").write_text("data: d\nepisodes: {layout: bair}\n")
    assert recorded_episodes(tmp_path / "tok") == ({"layout": "bair"}, "d")
    (tmp_path / "old").mkdir()  # a run written before the section: its layout
    (tmp_path / "old" / "config.yaml").write_text("data: d\nlayout: metaworld\n")
    assert recorded_episodes(tmp_path / "old") == ({"layout": "metaworld"}, "d")
    (tmp_path / "wm").mkdir()
    (tmp_path / "wm" / "worldmodel.json").write_text('{"kind": "video", "data_root": "r", '
                                                     '"episodes": {"test_tail": 3}}')
    assert recorded_episodes(tmp_path / "wm") == ({"test_tail": 3}, "r")
    assert recorded_episodes(tmp_path) == (None, None)
