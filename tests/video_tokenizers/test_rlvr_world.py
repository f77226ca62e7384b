"""RLVR-World's CNNFSQModel256 tokenizer, read from a directory their own code saved
(``../shared/data/interop/rlvr_world_cnnfsq_tiny``): indices equal theirs exactly, decoded frames
to float tolerance; FSQ bound and index order by hand; files and errors."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open

from tokenizers_video import FSQ, WeightsMismatch, load_tokenizer
from tokenizers_video.rlvr_world import (
    CNNFSQConfig,
    RLVRWorldFSQ,
    RLVRWorldTokenizer,
    get_fsq_levels,
)
from worldmodels.tasks.video_data import load_video_tokenizer

SAMPLE = "interop/rlvr_world_cnnfsq_tiny"
DECODE_ATOL = 2e-5  # measured max |ours - theirs| 3.2e-6 on outputs up to |2.26| (fp32, CPU)


@pytest.fixture
def sample(shared_data):
    d = shared_data / SAMPLE
    ref = np.load(d / "reference_io.npz")
    return d, {k: torch.from_numpy(ref[k]) for k in ref.files}


def test_encode_equals_their_indices_exactly(sample):
    d, ref = sample
    tok = RLVRWorldTokenizer.from_pretrained(d)
    assert (tok.vocab_size, tok.grid, tok.image_size, tok.tokens_per_frame) == (1000, (16, 16), 64, 256)
    want = ref["indices"].long()  # (2,3,16,16), their encode(frames in [-1,1])
    assert torch.equal(tok.encode_signed(ref["frames"]), want)
    # our API takes [0,1] frames: x01 = (x + 1) / 2, mapped back with 2 * x01 - 1 inside encode
    ids = tok.encode((ref["frames"] + 1) / 2)
    assert ids.dtype == torch.int64 and torch.equal(ids, want)


def test_decode_equals_their_frames(sample):
    d, ref = sample
    tok = RLVRWorldTokenizer.from_pretrained(d)
    raw = tok.decode_signed(ref["indices"])  # their decode, [-1,1] units, unclamped
    assert raw.shape == ref["decoded"].shape == (2, 3, 3, 64, 64)
    torch.testing.assert_close(raw, ref["decoded"], atol=DECODE_ATOL, rtol=0)
    # our API: [0,1] frames = (their output + 1) / 2, clamped
    torch.testing.assert_close(tok.decode(ref["indices"]), ((ref["decoded"] + 1) / 2).clamp(0, 1),
                               atol=DECODE_ATOL, rtol=0)


def test_their_fsq_bound_and_index_order_by_hand():
    fsq = RLVRWorldFSQ([8, 5, 5, 5])
    # index = d0 + 8 d1 + 40 d2 + 200 d3 (first channel fastest); codes (d - L//2) / (L//2)
    ids = torch.tensor([3 + 8 * 2 + 40 * 4 + 200 * 1])
    assert fsq.indices_to_codes(ids).tolist() == [[-0.25, 0.0, 1.0, -0.5]]
    # a level-5 channel at z = atanh(0.75): theirs (1 + eps) bounds to 0.75 * 2.002 = 1.5015 -> 2
    # (digit 4); ours (1 - eps) to 0.75 * 1.998 = 1.4985 -> 1 (digit 3). Level 8 at z = 0 -> 0 (digit 4).
    z = torch.tensor([[0.0, 0.0, math.atanh(0.75), 0.0]])
    _, theirs, _ = fsq(z)
    _, ours, _ = FSQ([8, 5, 5, 5])(z)
    assert theirs.item() == 4 + 8 * 2 + 40 * 4 + 200 * 2
    assert ours.item() == 4 + 8 * 2 + 40 * 3 + 200 * 2


def test_get_fsq_levels_table():
    assert get_fsq_levels(8) == [8, 6, 5] and get_fsq_levels(10) == [8, 5, 5, 5]
    assert get_fsq_levels(12) == [7, 5, 5, 5, 5] and get_fsq_levels(14) == [8, 8, 8, 6, 5]
    assert get_fsq_levels(16) == [8, 8, 8, 5, 5, 5] and get_fsq_levels([3, 4]) == [3, 4]
    with pytest.raises(ValueError, match="fsq_levels: 9"):
        get_fsq_levels(9)


def test_their_rt1_config_defaults():
    """Their released RT-1 tokenizer's shape (class defaults): 4,375 codes, 16x16 at 256 px."""
    cfg = CNNFSQConfig()
    assert cfg.levels == [7, 5, 5, 5, 5] and math.prod(cfg.levels) == 4375
    assert cfg.downsample == 16 and cfg.resolution // cfg.downsample == 16


def test_save_load_round_trip_and_registries(sample, tmp_path):
    d, ref = sample
    tok = RLVRWorldTokenizer.from_pretrained(d)
    tok.save_pretrained(tmp_path / "copy")
    cfg = json.loads((tmp_path / "copy" / "config.json").read_text())
    theirs = json.loads((d / "config.json").read_text())
    assert cfg["kind"] == "rlvr_world_cnnfsq"
    assert {k: cfg[k] for k in theirs} == theirs  # their keys and values, unchanged
    with safe_open(str(d / "diffusion_pytorch_model.safetensors"), "pt") as f:
        their_keys = set(f.keys())
    with safe_open(str(tmp_path / "copy" / "model.safetensors"), "pt") as f:
        assert set(f.keys()) == their_keys  # their state-dict names
    x = (ref["frames"] + 1) / 2
    for loaded in (load_tokenizer(tmp_path / "copy"), load_video_tokenizer(tmp_path / "copy"),
                   load_video_tokenizer(d)):  # our copy by its kind; their directory as saved
        assert isinstance(loaded, RLVRWorldTokenizer)
        assert torch.equal(loaded.encode(x), ref["indices"].long())
        assert torch.equal(loaded.decode_signed(ref["indices"]), tok.decode_signed(ref["indices"]))


def _their_copy(d, tmp_path, **changes):
    out = tmp_path / "their"
    shutil.copytree(d, out)
    cfg = json.loads((out / "config.json").read_text())
    cfg.update(changes)
    (out / "config.json").write_text(json.dumps(cfg))
    return out


@pytest.mark.parametrize("changes, match", [
    ({"_class_name": "CompressiveVQModelFSQ"}, "compressive tokenizer is not readable"),
    ({"norm_type": "spatial"}, "norm_type: only 'group'"),
    ({"quant_channels": 4}, r"unknown CNNFSQModel256 field\(s\) \['quant_channels'\]"),
    ({"down_block_types": ["DownEncoderBlock2D"] * 2}, "down_block_types: expected 3"),
])
def test_bad_configs_name_the_file(sample, tmp_path, changes, match):
    d = _their_copy(sample[0], tmp_path, **changes)
    with pytest.raises(ValueError, match=match) as e:
        RLVRWorldTokenizer.from_pretrained(d)
    assert str(d / "config.json") in str(e.value)


def test_weights_that_do_not_fit_are_named(sample, tmp_path):
    d = _their_copy(sample[0], tmp_path, latent_channels=8)
    with pytest.raises(WeightsMismatch, match="diffusion_pytorch_model.safetensors.*shape mismatch"):
        RLVRWorldTokenizer.from_pretrained(d)
    (d / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights"):
        RLVRWorldTokenizer.from_pretrained(d)
