"""load_checkpoint is strict: a saved model, optimizer or scheduler that does not fit is an error
naming the checkpoint path and the keys; only a truly tied lm_head may be absent (issue 17.4)."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from worldmodels.models import build_backbone
from worldmodels.strict_load import WeightsMismatch, load_state_dict_strict, mismatch_message
from worldmodels.train import checkpoint as ckpt


def backbone(tied: bool, seed: int = 0):
    torch.manual_seed(seed)
    return build_backbone("test", vocab_size=40, max_positions=32, tie_word_embeddings=tied).eval()


def logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def save(tmp_path, model, **kw):
    return ckpt.save_checkpoint(tmp_path, 1, {"model": model}, **kw)


def tamper(path, edit):
    f = path / "model.safetensors"
    state = load_file(str(f))
    edit(state)
    save_file(state, str(f))


def test_tied_checkpoint_into_untied_model_names_lm_head_and_dir(tmp_path):
    path = save(tmp_path, backbone(tied=True))
    assert "lm_head.weight" not in load_file(str(path / "model" / "model.safetensors"))  # the setup
    target = backbone(tied=False, seed=1)
    head_before = target.lm_head.weight.clone()
    with pytest.raises(WeightsMismatch) as e:
        ckpt.load_checkpoint(path, {"model": target})
    msg = str(e.value)
    assert "lm_head.weight" in msg and str(path / "model") in msg and "1 missing key" in msg
    assert torch.equal(target.lm_head.weight, head_before)  # nothing half-loaded


def test_tied_checkpoint_into_tied_model_gives_the_source_logits(tmp_path):
    src = backbone(tied=True)
    path = save(tmp_path, src)
    dst = backbone(tied=True, seed=1)
    ids = torch.randint(0, 40, (2, 7))
    assert not torch.allclose(logits(src, ids), logits(dst, ids))
    ckpt.load_checkpoint(path, {"model": dst})
    assert dst.lm_head.weight.data_ptr() == dst.model.embed_tokens.weight.data_ptr()
    torch.testing.assert_close(logits(dst, ids), logits(src, ids), rtol=0, atol=0)


def test_untied_checkpoint_into_tied_model_is_an_error(tmp_path):
    """Both keys are saved with different values; a tied model can hold only one of them, so
    loading would silently overwrite the embeddings with the head (or vice versa)."""
    path = save(tmp_path, backbone(tied=False))
    dst = backbone(tied=True, seed=1)
    emb_before = dst.model.embed_tokens.weight.clone()
    with pytest.raises(WeightsMismatch, match=r"untied lm_head\.weight.*ties them") as e:
        ckpt.load_checkpoint(path, {"model": dst})
    assert str(path / "model") in str(e.value)
    assert torch.equal(dst.model.embed_tokens.weight, emb_before)
    # a tied model's full state_dict (both keys, equal values) is fine
    src = backbone(tied=True, seed=2)
    load_state_dict_strict(dst, {k: v.clone() for k, v in src.state_dict().items()}, "sd")
    assert torch.equal(dst.lm_head.weight, src.model.embed_tokens.weight)
    assert dst.lm_head.weight.data_ptr() == dst.model.embed_tokens.weight.data_ptr()


def test_flag_alone_is_not_tying(tmp_path):
    """config.tie_word_embeddings=True while lm_head holds its own tensor: a missing
    lm_head.weight is still an error (the head would stay random)."""
    path = save(tmp_path, backbone(tied=True))
    dst = backbone(tied=False, seed=1)
    dst.config.tie_word_embeddings = True  # flag set, tensors still separate
    with pytest.raises(WeightsMismatch, match=r"lm_head\.weight"):
        ckpt.load_checkpoint(path, {"model": dst})


@pytest.mark.parametrize("edit,needle", [
    (lambda s: s.pop("model.layers.1.mlp.up_proj.weight"), r"1 missing key\(s\): \['model\.layers\.1\.mlp\.up_proj\.weight'\]"),
    (lambda s: s.__setitem__("model.extra.bias", torch.zeros(3)), r"1 unexpected key\(s\): \['model\.extra\.bias'\]"),
    (lambda s: s.__setitem__("model.norm.weight", torch.ones(7)), r"model\.norm\.weight saved \(7,\) vs model \(32,\)"),
])
def test_tampered_backbone_weights_name_key_and_dir(tmp_path, edit, needle):
    path = save(tmp_path, backbone(tied=False))
    tamper(path / "model", edit)
    with pytest.raises(WeightsMismatch, match=needle) as e:
        ckpt.load_checkpoint(path, {"model": backbone(tied=False, seed=1)})
    assert str(path / "model") in str(e.value)


def test_plain_module_tampered_and_absent(tmp_path):
    path = save(tmp_path, torch.nn.Linear(3, 2))
    tamper(path / "model", lambda s: s.pop("bias"))
    with pytest.raises(WeightsMismatch, match=r"missing key\(s\): \['bias'\]"):
        ckpt.load_checkpoint(path, {"model": torch.nn.Linear(3, 2)})
    with pytest.raises(FileNotFoundError, match=r"no saved model\(s\) \['value'\].*\['model'\]"):
        ckpt.load_checkpoint(path, {"value": torch.nn.Linear(3, 2)})


def test_optimizer_and_scheduler_files_missing_are_named(tmp_path):
    m = torch.nn.Linear(3, 2)
    path = save(tmp_path, m)  # saved without optimizer / scheduler
    opt = torch.optim.AdamW(m.parameters())
    with pytest.raises(FileNotFoundError, match="optimizer.pt: missing"):
        ckpt.load_checkpoint(path, {"model": m}, optimizer=opt)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    with pytest.raises(FileNotFoundError, match="scheduler.pt: missing"):
        ckpt.load_checkpoint(path, {"model": m}, scheduler=sched)


def _stepped_adam(*shapes):
    params = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    opt = torch.optim.AdamW(params)
    sum(p.sum() for p in params).backward()
    opt.step()
    return opt


def test_optimizer_that_does_not_fit_is_named(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, 1, {}, optimizer=_stepped_adam((2, 3), (2,)))
    with pytest.raises(WeightsMismatch, match="optimizer.pt: does not match"):  # group size differs
        ckpt.load_checkpoint(path, {}, optimizer=_stepped_adam((2, 3)))
    # same count, other shapes: torch accepts it; the moment buffers would not fit the params
    with pytest.raises(WeightsMismatch, match=r"optimizer.pt.*exp_avg saved \(2, 3\) vs param \(3, 2\)"):
        ckpt.load_checkpoint(path, {}, optimizer=_stepped_adam((3, 2), (2,)))
    ok = _stepped_adam((2, 3), (2,))
    ckpt.load_checkpoint(path, {}, optimizer=ok)  # the matching one loads
    assert ok.state[ok.param_groups[0]["params"][0]]["exp_avg"].shape == (2, 3)


def test_mismatch_message_counts_and_truncates():
    msg = mismatch_message("d/", "M", missing=[f"k{i}" for i in range(7)])
    assert msg == "d/: saved weights do not match M; 7 missing key(s): ['k0', 'k1', 'k2', 'k3', 'k4'] (+2 more)"
    assert mismatch_message("d/", "M") is None


def test_load_state_dict_strict_leaves_model_untouched_on_error():
    m = torch.nn.Linear(2, 2)
    before = m.weight.clone()
    with pytest.raises(WeightsMismatch, match=r"f\.bin: .*unexpected key\(s\): \['x'\]"):
        load_state_dict_strict(m, {"weight": torch.ones(2, 2), "bias": torch.ones(2), "x": torch.ones(1)}, "f.bin")
    assert torch.equal(m.weight, before)
