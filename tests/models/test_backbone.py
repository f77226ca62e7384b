"""Backbone presets, save/load round trip, attention fallback; world-model directory round trip."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))
from wm_fakes import FakeCompressiveTokenizer, FakeFrameTokenizer  # noqa: E402

from worldmodels.models import build_backbone, count_params, load_backbone  # noqa: E402
from worldmodels.tasks.video import VideoSpec, VideoTask  # noqa: E402
from worldmodels.tasks.video_data import ActionCodec  # noqa: E402
from worldmodels.world_model import VideoWorldModel  # noqa: E402


def test_presets_sizes_and_untied():
    tiny = build_backbone("tiny", 1259, 1024)
    assert 1e6 <= count_params(tiny) <= 5e6
    assert tiny.lm_head.weight.data_ptr() != tiny.model.embed_tokens.weight.data_ptr()
    cfg = build_backbone("small", 100, 64).config  # tiny vocab: only check the shape
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size) == (
        768, 12, 12, 3072)
    with pytest.raises(ValueError, match="unknown backbone preset"):
        build_backbone("huge", 10)


def test_wm_triton_falls_back_to_sdpa_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CPU-only check")
    m = build_backbone("test", 50, 64, attn_implementation="wm_triton")
    assert m.config._attn_implementation == "sdpa"


def test_save_load_round_trip(tmp_path):
    m = build_backbone("test", 77, 64).eval()
    m.save_pretrained(tmp_path / "b")
    m2 = load_backbone(tmp_path / "b").eval()
    x = torch.randint(0, 77, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(m(x).logits, m2(x).logits, atol=0, rtol=0)
    with pytest.raises(FileNotFoundError, match="no backbone here"):
        load_backbone(tmp_path / "missing")


@pytest.mark.parametrize("tok_cls", [FakeFrameTokenizer, FakeCompressiveTokenizer])
def test_world_model_dir_round_trip_and_predict(tmp_path, tok_cls):
    codec = ActionCodec([-1.0, -2.0], [1.0, 2.0])
    task = VideoTask(tok_cls(), VideoSpec("multi", 2, 3), codec)
    torch.manual_seed(0)
    wm = VideoWorldModel(build_backbone("test", task.vocab_size, 256), task)
    wm.save_pretrained(tmp_path / "wm")
    wm2 = VideoWorldModel.from_pretrained(tmp_path / "wm", device="cpu")
    assert wm2.task.layout() == task.layout()
    assert torch.equal(wm2.task.codec.high, codec.high)
    frames, actions = torch.rand(2, 2, 3, 16, 16), torch.rand(2, 1 + 4, 2)
    a = wm.predict(frames, actions, n_samples=2, generator=torch.Generator().manual_seed(1))
    b = wm2.predict(frames, actions, n_samples=2, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 2, 4, 3, 16, 16) and torch.equal(a, b)
    with pytest.raises(ValueError, match="actions must be"):
        wm.predict(frames, actions[:, :1], 1)
    with pytest.raises(FileNotFoundError, match="not a world model directory"):
        VideoWorldModel.from_pretrained(tmp_path, device="cpu")


def test_single_step_model_predicts_several_frames_by_sliding(tmp_path):
    task = VideoTask(FakeFrameTokenizer(), VideoSpec("single", 2, 1), ActionCodec([-1, -1], [1, 1]))
    wm = VideoWorldModel(build_backbone("test", task.vocab_size, 256), task)
    out = wm.predict(torch.rand(1, 3, 3, 16, 16), torch.rand(1, 2 + 3, 2), n_samples=2)
    assert out.shape == (1, 2, 3, 3, 16, 16)


def test_frame_skip_model_takes_actions_at_the_environment_rate(tmp_path):
    task = VideoTask(FakeFrameTokenizer(), VideoSpec("multi", 1, 3, frame_skip=2),
                     ActionCodec([-1, -1], [1, 1]))
    wm = VideoWorldModel(build_backbone("test", task.vocab_size, 256), task)
    wm.save_pretrained(tmp_path / "wm")
    assert VideoWorldModel.from_pretrained(tmp_path / "wm", device="cpu").frame_skip == 2
    frames, actions = torch.rand(2, 1, 3, 16, 16), torch.rand(2, 6, 2)  # 3 frames x 2 actions
    g = torch.Generator().manual_seed(3)
    out = wm.predict(frames, actions, n_samples=2, generator=g)
    assert out.shape == (2, 2, 3, 3, 16, 16)
    # the same as token-level predict with the actions grouped two per model step
    g2 = torch.Generator().manual_seed(3)
    ids = task.predict_ids(lambda req: wm.generate(req, generator=g2),
                           task.tokenizer.encode(frames).reshape(2, 1, 16).repeat_interleave(2, 0),
                           task.codec.encode(actions).reshape(2, 3, 4).repeat_interleave(2, 0), 3)
    torch.testing.assert_close(out.reshape(4, 3, 3, 16, 16), task.decode_ids(ids))
    with pytest.raises(ValueError, match=r"\(k-1\+N\)\*2"):
        wm.predict(frames, actions[:, :5])


def test_generate_passes_the_sampler_to_the_rollout_engine():
    """``WorldModel.generate(..., sampler=...)`` draws as ``rollout(..., sampler=...)`` does from
    the same generator seed; "multinomial" (the draws of runs before 2026-11-30) differs from the
    default, and an unknown sampler is refused."""
    from worldmodels.train.rollout import RolloutRequest, Segment, rollout
    task = VideoTask(FakeFrameTokenizer(), VideoSpec("single", 2, 1), ActionCodec([-1, -1], [1, 1]))
    wm = VideoWorldModel(build_backbone("test", task.vocab_size, 256), task)
    req = RolloutRequest(torch.randint(0, task.vocab_size, (3, 5)), [Segment("generate", 12)])
    out = {}
    for sampler in ("multinomial", "inverse_cdf"):
        got = wm.generate(req, generator=torch.Generator().manual_seed(4), sampler=sampler)
        want = rollout(wm.model, req, generator=torch.Generator().manual_seed(4), sampler=sampler)
        assert torch.equal(got.completion_ids, want.completion_ids)
        out[sampler] = got.completion_ids
    assert not torch.equal(out["multinomial"], out["inverse_cdf"])
    with pytest.raises(ValueError, match="sampler must be one of"):
        wm.generate(req, sampler="gumbel")


# --- strict load_backbone (issue 17.4): nothing may stay at random init silently ---------------

def _saved(tmp_path, tied: bool, name: str = "b"):
    torch.manual_seed(0)
    m = build_backbone("test", 40, 32, tie_word_embeddings=tied).eval()
    m.save_pretrained(tmp_path / name)
    return m, tmp_path / name


def _edit_config(d, **kw):
    import json

    cfg = json.loads((d / "config.json").read_text())
    cfg.update(kw)
    (d / "config.json").write_text(json.dumps(cfg))


def _edit_weights(d, edit):
    from safetensors.torch import load_file, save_file

    state = load_file(str(d / "model.safetensors"))
    edit(state)
    save_file(state, str(d / "model.safetensors"), metadata={"format": "pt"})


@pytest.mark.parametrize("edit,needle", [
    (lambda s: s.pop("model.layers.0.mlp.up_proj.weight"), r"1 missing key\(s\): \['model\.layers\.0\.mlp\.up_proj\.weight'\]"),
    (lambda s: s.__setitem__("model.extra.bias", torch.zeros(3)), r"1 unexpected key\(s\): \['model\.extra\.bias'\]"),
    (lambda s: s.__setitem__("model.norm.weight", torch.ones(7)), r"model\.norm\.weight saved \(7,\) vs model \(32,\)"),
])
def test_load_backbone_rejects_tampered_weights_naming_key_and_dir(tmp_path, edit, needle):
    from worldmodels.strict_load import WeightsMismatch

    _, d = _saved(tmp_path, tied=False)
    _edit_weights(d, edit)
    with pytest.raises(WeightsMismatch, match=needle) as e:
        load_backbone(d)
    assert str(d) in str(e.value)


def test_load_backbone_tied_weights_under_untied_config_name_lm_head(tmp_path):
    from worldmodels.strict_load import WeightsMismatch

    _, d = _saved(tmp_path, tied=True)
    _edit_config(d, tie_word_embeddings=False)  # transformers would init lm_head at random
    with pytest.raises(WeightsMismatch, match=r"missing key\(s\): \['lm_head\.weight'\]") as e:
        load_backbone(d)
    assert str(d) in str(e.value)


def test_load_backbone_tied_round_trip_and_untied_files_under_tying_config(tmp_path):
    x = torch.randint(0, 40, (2, 9))
    tied, d = _saved(tmp_path, tied=True)
    got = load_backbone(d).eval()
    assert got.lm_head.weight.data_ptr() == got.model.embed_tokens.weight.data_ptr()
    with torch.no_grad():
        torch.testing.assert_close(got(x).logits, tied(x).logits, atol=0, rtol=0)
    # files with a distinct lm_head.weight, config claiming tying: loaded untied, as saved
    untied, d2 = _saved(tmp_path, tied=False, name="u")
    _edit_config(d2, tie_word_embeddings=True)
    got = load_backbone(d2).eval()
    assert torch.equal(got.model.embed_tokens.weight, untied.model.embed_tokens.weight)
    assert torch.equal(got.lm_head.weight, untied.lm_head.weight)
    with torch.no_grad():
        torch.testing.assert_close(got(x).logits, untied(x).logits, atol=0, rtol=0)


def test_world_model_dir_with_tampered_backbone_names_it(tmp_path):
    from worldmodels.strict_load import WeightsMismatch

    task = VideoTask(FakeFrameTokenizer(), VideoSpec("multi", 2, 3), ActionCodec([-1.0], [1.0]))
    VideoWorldModel(build_backbone("test", task.vocab_size, 256), task).save_pretrained(tmp_path / "wm")
    _edit_weights(tmp_path / "wm" / "backbone", lambda s: s.pop("lm_head.weight"))
    with pytest.raises(WeightsMismatch, match=r"backbone: .*missing key\(s\): \['lm_head\.weight'\]"):
        VideoWorldModel.from_pretrained(tmp_path / "wm", device="cpu")
