"""Building the task of a pretraining run: the tokenizer's recorded frame_skip is checked
against the world model's (a compressive tokenizer trained on 1-step futures erased the pusher
at frame_skip 6: docs/tokenizers.md)."""

import pytest
import yaml
from wm_fakes import FakeCompressiveTokenizer, FakeFrameTokenizer, make_episodes

from worldmodels.tasks.video_build import build_pretrain_task, tokenizer_frame_skip
from worldmodels.tasks.video_config import VideoTaskConfig
from worldmodels.tasks.video_spec import VideoSpec


def _tok(tmp_path, tok, skip):
    d = tmp_path / "tok"
    tok.save_pretrained(d)
    if skip is not None:
        (d / "config.yaml").write_text(yaml.safe_dump({"kind": "compressive", "frame_skip": skip}))
    return d


def test_compressive_tokenizer_trained_at_another_frame_skip_is_refused(tmp_path):
    root = make_episodes(tmp_path / "data", n=4, T=12)
    d = _tok(tmp_path, FakeCompressiveTokenizer(), skip=1)
    assert tokenizer_frame_skip(d) == 1
    cfg = VideoTaskConfig(root=str(root), tokenizer=str(d), layout=VideoSpec("multi", 1, 2, frame_skip=3))
    with pytest.raises(ValueError, match=r"frame_skip 1 .*layout.frame_skip 3"):
        build_pretrain_task(cfg)
    cfg.check_tokenizer_frame_skip = False
    assert build_pretrain_task(cfg).frame_skip == 3
    cfg.check_tokenizer_frame_skip, cfg.layout = True, VideoSpec("multi", 1, 2, frame_skip=1)
    assert build_pretrain_task(cfg).frame_skip == 1  # matching skips pass


def test_frame_tokenizer_and_unrecorded_skip_are_not_checked(tmp_path):
    root = make_episodes(tmp_path / "data", n=4, T=12)
    d = _tok(tmp_path, FakeFrameTokenizer(), skip=1)       # per-frame: the skip does not matter
    cfg = VideoTaskConfig(root=str(root), tokenizer=str(d), layout=VideoSpec("multi", 1, 2, frame_skip=3))
    assert build_pretrain_task(cfg).frame_skip == 3
    (d / "config.yaml").unlink()
    assert tokenizer_frame_skip(d) is None


def test_init_layout_takes_only_the_fields_set_away_from_the_defaults(capsys):
    from worldmodels.tasks.video_build import layout_overrides

    init = VideoSpec("multi", 2, 5, stride=3, frame_skip=1)
    assert layout_overrides(init, VideoSpec(), "runs/x") == init  # all defaults: the init's layout
    got = layout_overrides(init, VideoSpec(frame_skip=6), "runs/x")
    assert got == VideoSpec("multi", 2, 5, stride=3, frame_skip=6)
    assert "task.layout.frame_skip=6 overrides init=runs/x's 1" in capsys.readouterr().out
    # a field set to the init's own value is no change; one left at the default keeps the init's
    assert layout_overrides(init, VideoSpec(context_frames=2, future_frames=3), "r") == \
        VideoSpec("multi", 2, 3, stride=3, frame_skip=1)
