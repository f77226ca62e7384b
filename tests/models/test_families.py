"""Backbone families: the BACKBONES registry, BackboneConfig validation, the ``hf`` family
(any local HF causal LM, vocabulary coverage, no forced attention kernel), LoRA via make_backbone."""

import pytest
import torch

from worldmodels.models import (
    BACKBONES,
    BackboneConfig,
    LoRAConfig,
    build_backbone,
    load_backbone,
    make_backbone,
    register_backbone,
)


def same_params(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_llama_family_is_build_backbone():
    torch.manual_seed(0)
    a = make_backbone(BackboneConfig(family="llama", preset="test", max_positions=64), 50)
    torch.manual_seed(0)
    b = build_backbone("test", 50, 64)
    assert same_params(a, b) and a.config.max_position_embeddings == 64
    assert a.config._attn_implementation == "sdpa"  # null = the llama default


def test_registry_is_lazy_and_extensible(monkeypatch):
    import sys

    monkeypatch.setitem(BACKBONES, "toy", "tests_toy_family:build")
    assert "tests_toy_family" not in sys.modules  # registering imports nothing
    mod = type(sys)("tests_toy_family")
    mod.build = lambda cfg, vocab: build_backbone("test", vocab, 32)
    monkeypatch.setitem(sys.modules, "tests_toy_family", mod)
    assert make_backbone(BackboneConfig(family="toy"), 33).config.vocab_size == 33
    register_backbone("toy2", "tests_toy_family:build")
    assert BACKBONES.pop("toy2") == "tests_toy_family:build"
    with pytest.raises(ValueError, match="pkg.module:function"):
        register_backbone("bad", "no_colon")


@pytest.mark.parametrize("kw,needle", [
    (dict(family="nope"), "model.family must be one of"),
    (dict(family="llama", preset="huge"), "model.preset must be one of"),
    (dict(family="llama", path="x"), "model.path='x' is not used by family 'llama'"),
    (dict(family="hf"), "model.family=hf needs model.path"),
    (dict(max_positions=0), "model.max_positions must be >= 1"),
])
def test_backbone_config_rejects(kw, needle):
    with pytest.raises(ValueError, match=needle):
        BackboneConfig(**kw)


@pytest.mark.parametrize("kw,needle", [
    (dict(r=0), "model.lora.r must be >= 1"), (dict(lora_dropout=1.0), "lora_dropout must be in"),
    (dict(lora_alpha=float("nan")), "lora_alpha must be a finite number"),
    (dict(bias="some"), "bias must be none"), (dict(target_modules=[]), "target_modules must be"),
])
def test_lora_config_rejects(kw, needle):
    with pytest.raises(ValueError, match=needle):
        LoRAConfig(**kw)


def test_config_yaml_section_round_trip():
    from worldmodels.config import from_dict, to_dict

    cfg = BackboneConfig(family="hf", path="/x", lora=LoRAConfig(enabled=True, target_modules=["q_proj"]))
    assert from_dict(BackboneConfig, to_dict(cfg)) == cfg
    assert from_dict(BackboneConfig, {"preset": "test"}).lora.enabled is False  # old run configs


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    m = build_backbone("test", 40, 32).eval()
    m.save_pretrained(tmp_path / "lm")
    return m, tmp_path / "lm"


def test_hf_family_loads_the_directory_and_checks_the_vocabulary(saved):
    m, d = saved
    got = make_backbone(BackboneConfig(family="hf", path=str(d)), 37)  # a smaller task vocab fits
    assert same_params(got, m)
    with pytest.raises(ValueError, match=rf"model.path={d}: the backbone reads 40 token ids but the task needs 45; "
                                         r"pass model.resize_embeddings=true"):
        make_backbone(BackboneConfig(family="hf", path=str(d)), 45)
    grown = make_backbone(BackboneConfig(family="hf", path=str(d), resize_embeddings=True), 45)
    assert grown.get_input_embeddings().weight.shape[0] == 45
    assert grown.get_output_embeddings().weight.shape[0] == 45
    assert torch.equal(grown.get_input_embeddings().weight[:40], m.get_input_embeddings().weight)
    lora_off = LoRAConfig(enabled=True, target_modules=["q_proj"])
    with pytest.raises(ValueError, match="modules_to_save"):
        make_backbone(BackboneConfig(family="hf", path=str(d), resize_embeddings=True, lora=lora_off), 45)
    ok = LoRAConfig(enabled=True, target_modules=["q_proj"], modules_to_save=["embed_tokens", "lm_head"])
    pm = make_backbone(BackboneConfig(family="hf", path=str(d), resize_embeddings=True, lora=ok), 45)
    trainable = [n for n, p in pm.named_parameters() if p.requires_grad]
    assert any("embed_tokens" in n for n in trainable) and any("lm_head" in n for n in trainable)


def test_lora_via_make_backbone_freezes_the_base(saved):
    _, d = saved
    pm = make_backbone(BackboneConfig(family="hf", path=str(d), lora=LoRAConfig(enabled=True, r=2)), 40)
    trainable = {n for n, p in pm.named_parameters() if p.requires_grad}
    # peft's default Llama targets: q_proj and v_proj, A and B per layer (2 layers)
    assert len(trainable) == 8 and all(("q_proj" in n or "v_proj" in n) and "lora_" in n for n in trainable)


def test_hf_family_loads_a_model_without_attention(tmp_path, monkeypatch):
    """RWKV rejects attn_implementation="sdpa": load_backbone passes one only when asked."""
    from transformers import AutoModelForCausalLM, RwkvConfig, RwkvForCausalLM

    torch.manual_seed(0)
    cfg = RwkvConfig(vocab_size=40, context_length=32, hidden_size=32, num_hidden_layers=2,
                     attention_hidden_size=32, intermediate_size=64)
    ref = RwkvForCausalLM(cfg).eval()
    ref.save_pretrained(tmp_path / "rwkv")
    got = make_backbone(BackboneConfig(family="hf", path=str(tmp_path / "rwkv")), 40).eval()
    x = torch.randint(0, 40, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(got(x).logits, ref(x).logits, rtol=0, atol=0)
    with pytest.raises(ValueError, match="scaled_dot_product_attention"):  # what forcing would do
        load_backbone(tmp_path / "rwkv", attn_implementation="sdpa")
    seen = []
    real = AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **k: seen.append(k.get("attn_implementation", "-")) or real(*a, **k))
    load_backbone(tmp_path / "rwkv")
    load_backbone(tmp_path / "rwkv", attn_implementation="eager")
    assert seen == ["-", "eager"]
