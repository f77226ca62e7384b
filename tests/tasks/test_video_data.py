"""The world model's token-clip dataset: episodes checked against the tokenizer and the action
codec (the file named), and a token cache that does not fit is reported and rebuilt."""

import logging
import re

import numpy as np
import pytest
import torch
from wm_fakes import FakeCompressiveTokenizer, FakeFrameTokenizer, make_episodes

from worldmodels.episodes import EpisodeError
from worldmodels.tasks.video import VideoSpec, VideoTask
from worldmodels.tasks.video_data import ActionCodec


def task(root, tok=None, A=2, cache=None, spec=None):
    return VideoTask(tok or FakeFrameTokenizer(), spec or VideoSpec("multi", 1, 3),
                     ActionCodec(np.full(A, -1.0), np.full(A, 1.0)), data_root=str(root),
                     cache_dir=str(cache) if cache else None)


def test_five_episode_folder_with_one_odd_frame_size_names_the_file(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    for i in range(5):  # four (10,16,16,3) episodes and ep_000003 (10,8,8,3)
        s = 8 if i == 3 else 16
        np.savez(root / f"ep_{i:06d}.npz", image=np.zeros((10, s, s, 3), np.uint8),
                 action=np.zeros((10, 2), np.float32))
    with pytest.raises(EpisodeError) as e:
        task(root, cache=tmp_path / "c").dataset("all", progress=False)
    assert str(e.value).startswith(f"{root / 'ep_000003.npz'}: frames (H,W,C) = (8, 8, 3), "
                                   f"expected (16, 16, 3) (the frame size of 4 of 5 files)")


def test_episodes_must_fit_the_tokenizer_and_the_codec(tmp_path):
    root = make_episodes(tmp_path / "small", n=3, T=6, size=12)  # the fake tokenizer wants 16x16
    with pytest.raises(EpisodeError, match=r"3 problems in 3 episode files:\n  .*ep_000.npz: frames "
                                           r"\(H,W,C\) = \(12, 12, 3\), expected \(16, 16, 3\) "
                                           r"\(the tokenizer's image_size\)"):
        task(root).dataset("all", progress=False)
    root = make_episodes(tmp_path / "a2", n=3, T=6)  # 2-D actions, a codec for 3
    with pytest.raises(EpisodeError, match=r"ep_000.npz: actions \(T,A\) = \(6, 2\), expected "
                                           r"\(6, 3\) \(the action dimensions of the model's codec\)"):
        task(root, A=3).dataset("all", progress=False)


@pytest.mark.parametrize("spoil, reason", [
    (lambda p, t: p.write_bytes(b"not a torch file"), "unreadable"),
    (lambda p, t: torch.save({"episodes": t["episodes"][:2]}, p), "2 episodes of ids, expected 4"),
    (lambda p, t: torch.save({"episodes": [x + 100 for x in t["episodes"]]}, p), r"ids outside \[0, 27\)"),
    (lambda p, t: torch.save({"episodes": [x[1:] for x in t["episodes"]]}, p), r"expected \(8, N\)"),
    (lambda p, t: torch.save([1, 2], p), r"expected a dict with keys \['episodes'\]"),
])
def test_a_token_cache_that_does_not_fit_is_named_and_rebuilt(tmp_path, caplog, spoil, reason):
    root = make_episodes(tmp_path / "data", n=6, T=8)
    t = task(root, cache=tmp_path / "cache")
    first = t.dataset("train", progress=False)
    (path,) = (tmp_path / "cache").glob("tokens-*.pt")
    spoil(path, first.tokens)
    with caplog.at_level(logging.WARNING, logger="worldmodels.tasks.video_data"):
        again = t.dataset("train", progress=False)
    assert f"token cache {path}" in caplog.text and "tokenising again" in caplog.text
    assert re.search(reason, caplog.text), caplog.text
    assert all(torch.equal(a, b) for a, b in zip(again.tokens["episodes"], first.tokens["episodes"],
                                                 strict=True))
    assert torch.load(path, weights_only=True)["episodes"][0].shape == (8, 16)  # rewritten
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="worldmodels.tasks.video_data"):
        t.dataset("train", progress=False)  # the rewritten cache is used without a word
    assert not caplog.records


def test_a_compressive_cache_of_other_clips_is_rebuilt(tmp_path, caplog):
    root = make_episodes(tmp_path / "data", n=6, T=8)
    t = task(root, tok=FakeCompressiveTokenizer(), cache=tmp_path / "cache",
             spec=VideoSpec("multi", 1, 2))
    first = t.dataset("train", progress=False)
    (path,) = (tmp_path / "cache").glob("tokens-*.pt")
    torch.save({"ctx": first.tokens["ctx"][:3], "fut": first.tokens["fut"][:3]}, path)
    with caplog.at_level(logging.WARNING, logger="worldmodels.tasks.video_data"):
        again = t.dataset("train", progress=False)
    n = len(first)
    assert f"ctx (3, 16) / fut (3, 3, 4), expected ({n}, Nc) / ({n}, 3, Nf)" in caplog.text
    assert torch.equal(again.tokens["fut"], first.tokens["fut"])
