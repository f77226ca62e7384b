"""Frame and compressive tokenizers: shapes, ranges, token counts, gradients, save/load."""

import json

import pytest
import torch

from tokenizers_video import (
    CompressiveTokenizer,
    CompressiveTokenizerConfig,
    FrameTokenizer,
    FrameTokenizerConfig,
    load_tokenizer,
)


def tiny_frame(**kw) -> FrameTokenizer:
    torch.manual_seed(0)
    cfg = dict(image_size=32, block_out_channels=(8, 16), norm_num_groups=4, fsq_levels=(5, 3))
    cfg.update(kw)
    return FrameTokenizer(FrameTokenizerConfig(**cfg))


def tiny_compressive() -> CompressiveTokenizer:
    torch.manual_seed(0)
    return CompressiveTokenizer(CompressiveTokenizerConfig(
        image_size=32, context_channels=(8, 16), future_channels=(8, 16, 16), norm_num_groups=4,
        fsq_levels=(5, 3), xattn_heads=2))


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_frame_encode_decode_shapes_and_ranges(quantizer):
    tok = tiny_frame(quantizer=quantizer, vq_codebook_size=20, vq_dim=4).eval()
    frames = torch.rand(2, 3, 3, 32, 32)
    ids = tok.encode(frames)
    assert ids.shape == (2, 3, 16, 16) and ids.dtype == torch.int64
    assert tok.grid == (16, 16) and tok.tokens_per_frame == 256
    assert ids.min() >= 0 and ids.max() < tok.vocab_size
    assert tok.vocab_size == (15 if quantizer == "fsq" else 20)
    out = tok.decode(ids)
    assert out.shape == frames.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    # decode clamps out-of-range ids instead of failing (world-model samples may be invalid)
    assert tok.decode(ids + 10_000).shape == frames.shape


def test_presets_shapes():
    tiny = FrameTokenizer.from_preset("tiny")
    assert tiny.image_size == 64 and tiny.grid == (8, 8) and tiny.tokens_per_frame == 64
    assert FrameTokenizerConfig().downsample == 8
    from tokenizers_video import FRAME_PRESETS

    assert FRAME_PRESETS["rt1"].downsample == 16 and FRAME_PRESETS["rt1"].fsq_levels == (7, 5, 5, 5, 5)
    comp = CompressiveTokenizer.from_preset("tiny")
    assert comp.context_tokens == 64 and comp.tokens_per_future_frame == 16
    assert comp.tokens_per_future_frame * 4 <= tiny.tokens_per_frame


def test_frame_errors_name_the_shape():
    tok = tiny_frame()
    with pytest.raises(ValueError, match="B,T,3,H,W"):
        tok.encode(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="ids"):
        tok.decode(torch.zeros(2, 16, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="norm_num_groups"):
        FrameTokenizerConfig(block_out_channels=(6, 8), norm_num_groups=4)
    with pytest.raises(ValueError, match="unknown frame-tokenizer preset"):
        FrameTokenizer.from_preset("huge")


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_straight_through_gradients_reach_encoder(quantizer):
    tok = tiny_frame(quantizer=quantizer, vq_codebook_size=20, vq_dim=4).train()
    rec, tgt, aux = tok.reconstruct(torch.rand(2, 3, 32, 32))
    ((rec - tgt).abs().mean() + aux["loss"]).backward()
    g = tok.encoder.conv_in.weight.grad
    assert g is not None and g.abs().sum() > 0


def test_frame_save_load_bit_exact(tmp_path):
    tok = tiny_frame().eval()
    frames = torch.rand(1, 2, 3, 32, 32)
    tok.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["kind"] == "frame" and (tmp_path / "model.safetensors").is_file()
    back = load_tokenizer(tmp_path)
    assert isinstance(back, FrameTokenizer)
    for (k, a), (k2, b) in zip(tok.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    ids = tok.encode(frames)
    assert torch.equal(back.encode(frames), ids)
    assert torch.equal(back.decode(ids), tok.decode(ids))


def test_vq_save_load_keeps_codebook(tmp_path):
    tok = tiny_frame(quantizer="vq", vq_codebook_size=20, vq_dim=4).eval()
    tok.save_pretrained(tmp_path)
    back = FrameTokenizer.from_pretrained(tmp_path)
    assert torch.equal(back.quantizer.codebook, tok.quantizer.codebook)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_tokenizer(tmp_path)
    tiny_frame().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        CompressiveTokenizer.from_pretrained(tmp_path)


def test_compressive_shapes_token_counts_and_ranges():
    tok = tiny_compressive().eval()
    assert tok.context_tokens == 256 and tok.tokens_per_future_frame == 64
    ctx, fut = torch.rand(2, 3, 32, 32), torch.rand(2, 4, 3, 32, 32)
    cids, fids = tok.encode(ctx, fut)
    assert cids.shape == (2, 256) and fids.shape == (2, 4, 64)
    for ids in (cids, fids):
        assert ids.dtype == torch.int64 and ids.min() >= 0 and ids.max() < tok.vocab_size
    c, f = tok.decode(cids, fids)
    assert c.shape == ctx.shape and f.shape == fut.shape
    assert c.min() >= 0 and f.max() <= 1
    # future frames are decoded from the context: a different context changes them
    c2, f2 = tok.decode(torch.roll(cids, 7, dims=1), fids)
    assert not torch.allclose(f, f2)


def test_compressive_future_encoding_depends_on_context():
    tok = tiny_compressive().eval()
    fut = torch.rand(1, 2, 3, 32, 32)
    lat_a = tok._future_latent(fut[0], tok._context_encode(torch.zeros(1, 3, 32, 32))[1], 2)
    lat_b = tok._future_latent(fut[0], tok._context_encode(torch.ones(1, 3, 32, 32))[1], 2)
    assert not torch.allclose(lat_a, lat_b)


def test_compressive_gradients_and_save_load(tmp_path):
    tok = tiny_compressive().train()
    rec, tgt, aux = tok.reconstruct(torch.rand(2, 3, 3, 32, 32))
    assert rec.shape == tgt.shape == (6, 3, 32, 32)
    (rec - tgt).abs().mean().backward()
    assert tok.encoder.conv_in.weight.grad.abs().sum() > 0
    assert tok.context.encoder.conv_in.weight.grad.abs().sum() > 0
    assert next(iter(tok.enc_xattn.values())).attn.to_k.weight.grad.abs().sum() > 0
    assert next(iter(tok.dec_xattn.values())).attn.to_k.weight.grad.abs().sum() > 0
    tok.eval().save_pretrained(tmp_path)
    back = load_tokenizer(tmp_path)
    assert isinstance(back, CompressiveTokenizer)
    ctx, fut = torch.rand(1, 3, 32, 32), torch.rand(1, 2, 3, 32, 32)
    a, b = tok.encode(ctx, fut), back.encode(ctx, fut)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(tok.decode(*a)[1], back.decode(*b)[1])


def test_compressive_context_matches_frame_tokenizer_weights():
    """The context path is a FrameTokenizer: a trained one loads into it and gives equal ids."""
    comp = tiny_compressive().eval()
    frame = FrameTokenizer(comp.config.context_config()).eval()
    comp.context.load_state_dict(frame.state_dict())
    ctx = torch.rand(2, 3, 32, 32)
    cids, _ = comp.encode(ctx, torch.rand(2, 1, 3, 32, 32))
    assert torch.equal(cids, frame.encode(ctx.unsqueeze(1)).reshape(2, -1))


def test_compressive_config_validation():
    with pytest.raises(ValueError, match="more blocks"):
        CompressiveTokenizerConfig(context_channels=(8, 16), future_channels=(8, 16))


def test_future_path_warm_start_copies_matching_tensors():
    comp = tiny_compressive()
    n = comp.init_future_from_context()
    assert n > 10
    assert torch.equal(comp.encoder.conv_in.weight, comp.context.encoder.conv_in.weight)
    assert torch.equal(comp.decoder.conv_out.weight, comp.context.decoder.conv_out.weight)
    # context up-block 0 (first upsampling, at the context grid) -> future up-block 1
    a = comp.context.decoder.up_blocks[0].resnets[0].conv1.weight
    assert torch.equal(comp.decoder.up_blocks[1].resnets[0].conv1.weight, a)


def test_residual_compressive_starts_from_copy_of_context(tmp_path):
    torch.manual_seed(0)
    tok = CompressiveTokenizer(CompressiveTokenizerConfig(
        image_size=32, context_channels=(8, 16), future_channels=(8, 16, 16), norm_num_groups=4,
        fsq_levels=(5, 3), xattn_heads=2, residual=True))
    tok.init_future_from_context()  # must leave the zero output layer alone
    assert tok.decoder.conv_out.weight.abs().sum() == 0
    ctx, fut = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 3, 32, 32)
    c, f = tok.decode(*tok.encode(ctx, fut))
    torch.testing.assert_close(f, c.unsqueeze(1).expand_as(f))
    # after a training step the future frames differ from the context (the change is decoded)
    opt = torch.optim.SGD(tok.parameters(), lr=0.1)
    rec, tgt, _ = tok.train().reconstruct(torch.cat([ctx.unsqueeze(1), fut], 1))
    (rec - tgt).abs().mean().backward()
    opt.step()
    c, f = tok.eval().decode(*tok.encode(ctx, fut))
    assert not torch.allclose(f, c.unsqueeze(1).expand_as(f))
    tok.save_pretrained(tmp_path)
    assert load_tokenizer(tmp_path).config.residual is True


# --- strict loads (issue 17.4): weights that do not fit the config are an error naming the file --

def _edit_safetensors(path, edit):
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    edit(state)
    save_file(state, str(path))


TAMPER = [
    (lambda s: s.pop("encoder.conv_in.bias"), r"1 missing key\(s\): \['encoder\.conv_in\.bias'\]"),
    (lambda s: s.__setitem__("encoder.extra", torch.zeros(2)), r"1 unexpected key\(s\): \['encoder\.extra'\]"),
    (lambda s: s.__setitem__("encoder.conv_in.bias", torch.zeros(5)),
     r"encoder\.conv_in\.bias saved \(5,\) vs model \(8,\)"),
]


@pytest.mark.parametrize("edit,needle", TAMPER)
@pytest.mark.parametrize("make", [tiny_frame, tiny_compressive])
def test_load_tokenizer_rejects_tampered_weights(tmp_path, make, edit, needle):
    from tokenizers_video import WeightsMismatch

    make().save_pretrained(tmp_path)
    _edit_safetensors(tmp_path / "model.safetensors", edit)
    with pytest.raises(WeightsMismatch, match=needle) as e:
        load_tokenizer(tmp_path)
    assert str(tmp_path / "model.safetensors") in str(e.value)


def test_frame_weights_into_another_config_name_the_shapes(tmp_path):
    from tokenizers_video import WeightsMismatch

    tiny_frame().save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["block_out_channels"] = [8, 32]  # config edited, weights not
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsMismatch, match=r"shape mismatch\(es\)"):
        load_tokenizer(tmp_path)


@pytest.mark.parametrize("edit,needle", TAMPER)
def test_training_checkpoint_resume_rejects_tampered_weights(tmp_path, edit, needle):
    from tokenizers_video import WeightsMismatch
    from tokenizers_video import checkpoint as ckpt

    def parts():
        model, disc = tiny_frame(), torch.nn.Linear(2, 1)
        opt, dopt = torch.optim.AdamW(model.parameters()), torch.optim.AdamW(disc.parameters())
        return model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), disc, dopt

    d = ckpt.save(tmp_path, *parts(), step=4)
    model, opt, sched, disc, dopt = parts()
    assert ckpt.load(tmp_path, model, opt, sched, disc, dopt, "cpu") == 4  # untampered: loads
    _edit_safetensors(d / "model.safetensors", edit)
    with pytest.raises(WeightsMismatch, match=needle) as e:
        ckpt.load(tmp_path, *parts(), device="cpu")
    assert str(d / "model.safetensors") in str(e.value)
    # the discriminator is checked the same way, named by its entry in train_state.pt
    model, opt, sched, _, dopt = parts()
    ckpt.save(tmp_path, model, opt, sched, torch.nn.Linear(2, 1), dopt, step=5)
    disc = torch.nn.Linear(3, 1)
    with pytest.raises(WeightsMismatch, match=r"train_state\.pt \['disc'\].*weight saved \(1, 2\) vs model \(1, 3\)"):
        ckpt.load(tmp_path, model, opt, sched, disc, torch.optim.AdamW(disc.parameters()), "cpu")
