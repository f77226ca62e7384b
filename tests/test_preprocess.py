"""Frame preprocessing (issue 19): the centre crop is centred, the resize antialiased (checked
against PIL's bilinear resize, an independent implementation of the same filter), and an
RT-1-shaped 256x320 episode goes through the 256 preset's tokenizer with the crop reported."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from worldmodels.episodes import KeyMap, load_episode, save_episode
from worldmodels.preprocess import crop_box, crop_resize, describe


def test_crop_box_is_centred():
    assert crop_box(256, 320, "center") == (0, 32, 256, 256)  # RT-1: 32 columns off each side
    assert crop_box(320, 256, "center") == (32, 0, 256, 256)
    assert crop_box(5, 8, "center") == (0, 1, 5, 5)  # odd margin: floor on the left/top
    assert crop_box(256, 320, "none") == (0, 0, 256, 320)
    with pytest.raises(ValueError, match="crop must be one of"):
        crop_box(4, 4, "left")


def test_centre_crop_keeps_the_middle_columns():
    img = np.zeros((2, 256, 320, 3), np.uint8)
    img[..., 0] = (np.arange(320) % 256).astype(np.uint8)[None, None, :]  # column index in red
    out = crop_resize(img, 256, "center")  # no resize needed after the crop
    assert out.shape == (2, 256, 256, 3)
    assert out[0, 0, 0, 0] == 32 and out[0, 0, -1, 0] == (32 + 255) % 256
    np.testing.assert_array_equal(out, img[:, :, 32:288])


def test_resize_is_antialiased_like_pil():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (3, 96, 128, 3), dtype=np.uint8)
    out = crop_resize(img, 24, "center")  # 96x96 centre square, then 4x down
    for t in range(3):
        square = Image.fromarray(img[t, :, 16:112])
        ref = np.asarray(square.resize((24, 24), Image.BILINEAR))  # PIL: antialiased triangle filter
        assert np.abs(out[t].astype(int) - ref.astype(int)).max() <= 1  # rounding only
    # stripes 2 bright, 2 dark columns: down 4x, plain bilinear samples between the two bright
    # columns of each period (255); the antialiased (triangle) filter averages the period (~128)
    stripes = np.where(np.arange(64) % 4 < 1, 0, np.where(np.arange(64) % 4 < 3, 255, 0))
    frame = np.broadcast_to(stripes.astype(np.uint8)[None, :, None], (64, 64, 3))
    grey = crop_resize(np.ascontiguousarray(frame[None]), 16)
    assert np.abs(grey[0, 2:-2, 2:-2].astype(int) - 128).max() <= 1  # away from the border
    aliased = torch.nn.functional.interpolate(torch.tensor(frame[None]).permute(0, 3, 1, 2).float(),
                                              size=16, mode="bilinear", antialias=False)
    assert float(aliased.min()) == 255  # what antialias=True avoids


def test_describe_says_what_happens():
    assert describe((256, 320), 64, "center") == ("256x320 -> centre crop 256x256 (offset 0,32) -> "
                                                  "resize 64x64 (bilinear, antialiased)")
    assert describe((256, 320), 256, "center") == "256x320 -> centre crop 256x256 (offset 0,32)"
    assert describe((64, 64), 64, "center") == "64x64 (as stored)"
    assert describe((256, 320), 64, "none") == "256x320 -> resize 64x64 (bilinear, antialiased)"


def rt1_episode(path, T=4):
    """An RT-1-shaped episode: (T,256,320,3) uint8 frames, (T,13) actions; a white bar marks the
    centre columns 144..175, black bars the 32-column margins the crop removes."""
    img = np.full((T, 256, 320, 3), 100, np.uint8)
    img[:, :, :32] = img[:, :, 288:] = 0
    img[:, :, 144:176] = 255
    save_episode(path, img, np.zeros((T, 13), np.float32))
    return img


def test_key_map_size_crops_and_resizes_on_load(tmp_path):
    img = rt1_episode(tmp_path / "ep.npz")
    ep = load_episode(tmp_path / "ep.npz", KeyMap(size=64))
    assert ep.image.shape == (4, 64, 64, 3) and ep.action.shape == (4, 13)
    np.testing.assert_array_equal(ep.image, crop_resize(img, 64, "center"))
    assert ep.image[0, :, 0].max() == 100  # the black margins were cropped away
    squashed = load_episode(tmp_path / "ep.npz", KeyMap(size=64, crop="none"))
    assert squashed.image[0, :, 0].max() == 0  # ... and are kept when the frame is squashed


def test_rt1_frames_through_the_256_preset_tokenizer(tmp_path):
    from worldmodels.cli import app

    data = tmp_path / "rt1"
    data.mkdir()
    for i in range(2):
        rt1_episode(data / f"ep_{i}.npz", T=2)
    out = tmp_path / "tok256"
    res = CliRunner().invoke(app, [
        "tokenizer", "train", "--preset", "256", "--data", str(data), "--out", str(out),
        "--steps", "1", "--batch-size", "2", "--test-every", "2", "--set", "perceptual=none",
        "--set", "train.progress=false", "--set", "train.save_every=1", "--set", "train.image_every=0"])
    assert res.exit_code == 0, res.output
    assert "frames: 256x320 -> centre crop 256x256 (offset 0,32)" in res.output
    rec = __import__("yaml").safe_load((out / "config.yaml").read_text())
    assert rec["episodes"]["size"] == 256 and rec["episodes"]["crop"] == "center"
    assert rec["model"]["image_size"] == 256 and rec["episodes"]["test_every"] == 2
    res = CliRunner().invoke(app, ["tokenizer", "eval", "--tokenizer", str(out), "--lpips", "none"])
    assert res.exit_code == 0, res.output  # data folder, crop and split from the run's record
    ev = json.loads((out / "eval_test.json").read_text())
    assert ev["frames"] == 2 and ev["tokens_per_frame"] == 256  # 16x16 tokens, RLVR-World's grid
    assert ev["episodes"]["crop"] == "center" and ev["data"] == str(data)
