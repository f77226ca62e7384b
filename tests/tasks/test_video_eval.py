"""`wm eval video` on a tiny world model with the stand-in tokenizer: files, baselines, shapes."""

import json

import torch
from typer.testing import CliRunner
from wm_fakes import FakeFrameTokenizer, make_episodes

from worldmodels.models import build_backbone
from worldmodels.tasks.video import VideoSpec, VideoTask
from worldmodels.tasks.video_data import ActionCodec
from worldmodels.world_model import VideoWorldModel


def test_eval_video_cli(tmp_path):
    from worldmodels.commands.eval import app

    root = make_episodes(tmp_path / "data", n=6, T=10, test_every=2)
    task = VideoTask(FakeFrameTokenizer(), VideoSpec("multi", 1, 3), ActionCodec([-1, -1], [1, 1]))
    torch.manual_seed(0)
    wm = VideoWorldModel(build_backbone("test", task.vocab_size, 256), task)
    wm.save_pretrained(tmp_path / "wm")
    r = CliRunner().invoke(app, ["video", "--model", str(tmp_path / "wm"), "--data", str(root),
                                 "--samples", "2", "--clips", "5", "--gifs", "2", "--lpips", "none",
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "wm" / "eval" / "eval.json").read_text())
    assert res["clips"] == 5 and res["future_frames"] == 3  # of 3 test episodes x 2 windows of 4
    for k in ("single", "multi"):
        assert res[k]["mse"]["best_of_n"] <= res[k]["mse"]["mean"] + 1e-9
        assert res[k]["psnr"]["best_of_n"] >= res[k]["psnr"]["mean"] - 1e-9
        # the stand-in tokenizer's own reconstruction is much closer than a random model
        assert res[k]["tokenizer"]["mse"] < res[k]["mse"]["mean"]
    assert 0 <= res["multi"]["repetition_rate"] <= 1
    written = sorted((tmp_path / "wm" / "eval").glob("*.gif"))
    assert len(written) == 2 and sorted(res["gifs"]) == [str(p) for p in written]
    for gif in written:  # real GIF files, not empty placeholders
        assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a") and gif.stat().st_size > 100, gif
    assert "copy last frame" in (tmp_path / "wm" / "eval" / "eval.md").read_text()
    # per-item values name the episodes they came from, so `wm eval pool` can refuse to pool
    # two evaluations of the same held-out episodes
    items = json.loads((tmp_path / "wm" / "eval" / "eval_items.json").read_text())
    assert len(items["test_files"]) == 3 and len(items["metrics"]["mse"]) == 5
    assert items["baselines"]["copy_last"]["mse"] and "layout" in items["episodes"]
    r = CliRunner().invoke(app, ["pool", "--fold", str(tmp_path / "wm" / "eval"), "--metric", "mse"])
    assert r.exit_code == 0 and "over 1 folds, 5 items" in r.output, r.output
    items["model"] = "another model"  # another model evaluated on the same episodes
    (tmp_path / "other.json").write_text(json.dumps(items))
    r = CliRunner().invoke(app, ["pool", "--fold", str(tmp_path / "wm" / "eval"), "--fold",
                                 str(tmp_path / "other.json"), "--metric", "mse"])
    assert r.exit_code == 2 and "were evaluated on the same episodes" in r.output
