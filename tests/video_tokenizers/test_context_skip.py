"""Compressive tokenizer with spatially aligned context skips (``context_skip_max_res``)."""

import json

import pytest
import torch

from tokenizers_video import CompressiveTokenizer, CompressiveTokenizerConfig, load_tokenizer
from tokenizers_video.compressive import ContextFuse

TINY = dict(image_size=32, context_channels=(8, 16), future_channels=(8, 16, 16), norm_num_groups=4,
            fsq_levels=(5, 3), xattn_heads=2, xattn_max_res=16)


def tiny(skip: int = 32, **kw) -> CompressiveTokenizer:
    torch.manual_seed(0)
    return CompressiveTokenizer(CompressiveTokenizerConfig(**{**TINY, "context_skip_max_res": skip, **kw}))


def clips(b=2, t=3):
    torch.manual_seed(1)
    return torch.rand(b, 3, 32, 32), torch.rand(b, t, 3, 32, 32)


def test_skip_layers_sit_at_aligned_levels_above_xattn():
    tok = tiny()
    # encoder: only the conv_in stem is at 32 (> xattn_max_res 16); decoder: the two 32 levels,
    # future level i <-> context level i - 1 (one extra block), same side and channels
    assert {k: j for k, (j, _) in tok._enc_s.items()} == {-1: -1}
    assert {k: j for k, (j, _) in tok._dec_s.items()} == {2: 1, 3: 2}
    assert set(tok.enc_skip) == {"-1"} and set(tok.dec_skip) == {"2", "3"}
    assert tok.dec_skip["3"].mix.in_channels == 8 + 8
    assert not tiny(0).enc_skip and not tiny(0).dec_skip


def test_skip_shapes_and_ranges():
    tok = tiny().eval()
    ctx, fut = clips()
    cids, fids = tok.encode(ctx, fut)
    assert cids.shape == (2, 256) and fids.shape == (2, 3, 64)
    c, f = tok.decode(cids, fids)
    assert c.shape == (2, 3, 32, 32) and f.shape == (2, 3, 3, 32, 32)
    assert 0 <= f.min() and f.max() <= 1


@pytest.mark.parametrize("residual", [False, True])
def test_skip_is_identity_at_init(residual):
    """A warm-started model with skips on decodes exactly like the same weights with skips off."""
    off = tiny(0, residual=residual)
    off.init_future_from_context()
    on = tiny(32, residual=residual)
    missing, unexpected = on.load_state_dict(off.state_dict(), strict=False)
    assert not unexpected and missing and all(k.split(".")[0] in ("enc_skip", "dec_skip") for k in missing)
    ctx, fut = clips()
    ids_off, ids_on = off.eval().encode(ctx, fut), on.eval().encode(ctx, fut)
    assert all(torch.equal(a, b) for a, b in zip(ids_off, ids_on, strict=True))
    for a, b in zip(off.decode(*ids_off), on.decode(*ids_on), strict=True):
        assert torch.equal(a, b)


def test_gradients_reach_fuse_layers():
    tok = tiny().train()
    ctx, fut = clips()
    frames = torch.cat([ctx.unsqueeze(1), fut], 1)
    rec, tgt, _ = tok.reconstruct(frames)
    (rec - tgt).abs().mean().backward()
    fuses = list(tok.enc_skip.values()) + list(tok.dec_skip.values())
    for m in fuses:  # the zero-initialised output conv gets a gradient at step 0
        assert m.out.weight.grad is not None and m.out.weight.grad.abs().sum() > 0
    opt = torch.optim.SGD(tok.parameters(), lr=0.1)
    opt.step()
    opt.zero_grad()
    rec, tgt, _ = tok.reconstruct(frames)
    (rec - tgt).abs().mean().backward()
    for m in fuses:  # once it is non-zero, the inner 3x3 mix conv learns too
        assert m.mix.weight.grad.abs().sum() > 0


def test_skip_save_load_bit_exact(tmp_path):
    tok = tiny(residual=True)
    with torch.no_grad():  # non-trivial skip weights
        for m in list(tok.enc_skip.values()) + list(tok.dec_skip.values()):
            m.out.weight.normal_(0, 0.1)
    tok.eval()
    ctx, fut = clips()
    ids = tok.encode(ctx, fut)
    out = tok.decode(*ids)
    tok.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["context_skip_max_res"] == 32
    back = load_tokenizer(tmp_path)
    assert back.config == tok.config
    for a, b in zip(back.encode(ctx, fut), ids, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(back.decode(*ids), out, strict=True):
        assert torch.equal(a, b)


def test_config_without_skip_key_loads_with_skip_off(tmp_path):
    """Run directories written before the option existed still load (skips off)."""
    tiny(0).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    del cfg["context_skip_max_res"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    back = load_tokenizer(tmp_path)
    assert back.config.context_skip_max_res == 0 and not back.dec_skip


@pytest.mark.parametrize("bad", [-1, 8, 16, 64])
def test_skip_config_validation(bad):
    with pytest.raises(ValueError, match="context_skip_max_res"):
        CompressiveTokenizerConfig(**{**TINY, "context_skip_max_res": bad})


def test_context_fuse_identity_then_copies():
    fuse = ContextFuse(4, 4)
    x, c = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    assert torch.equal(fuse(x, c), x)
    with torch.no_grad():  # the linear path can express "take the context's features"
        w = torch.zeros(4, 12, 1, 1)
        w[:, :4, 0, 0] = -torch.eye(4)
        w[:, 4:8, 0, 0] = torch.eye(4)
        fuse.out.weight.copy_(w)
    torch.testing.assert_close(fuse(x, c), c)


def test_tiny_preset_has_skips_at_32_and_64():
    tok = CompressiveTokenizer.from_preset("tiny")
    assert tok.config.context_skip_max_res == 64 and tok.config.residual is False
    assert set(tok.enc_skip) == {"-1", "0"} and set(tok.dec_skip) == {"3", "4", "5"}
    assert tok.tokens_per_future_frame == 16


def test_context_fuse_per_clip_equals_concat_over_repeated_context():
    """The per-clip split of the convs equals the plain concat form on a context copied to
    every frame (the formula in the class docstring), with non-zero weights."""
    torch.manual_seed(0)
    fuse = ContextFuse(4, 6)
    with torch.no_grad():
        fuse.out.weight.normal_()
        fuse.out.bias.normal_()
    b, t = 2, 3
    x, ctx = torch.randn(b * t, 4, 5, 5), torch.randn(b, 6, 5, 5)
    rep = ctx.repeat_interleave(t, dim=0)  # (B*t,Cc,r,r): clip i's context for its t frames
    xc = torch.cat([x, rep], 1)
    ref = x + fuse.out(torch.cat([xc, torch.nn.functional.silu(fuse.mix(xc))], 1))
    torch.testing.assert_close(fuse(x, ctx, t), ref, rtol=1e-5, atol=1e-5)
